"""This machine's side of the local runtime's VMs: free ports for their links and forwards, QEMU names that
say which Syringe process owns each VM, and the VMs a crashed Syringe left behind."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
from collections.abc import Iterator
from pathlib import Path

NAME_PREFIX = "syringe."  # every VM's -name starts with this, then the instance and live lesson


def vm_name(namespace: str, endpoint: str) -> str:
    """QEMU's -name: says which instance, live lesson and endpoint, and which Syringe process owns it."""
    return f"{NAME_PREFIX}{namespace}.{endpoint}@{os.getpid()}"


def free_port(kind: int = socket.SOCK_STREAM, host: str = "127.0.0.1") -> int:
    """A port nothing listens on now. QEMU binds it a moment later; a lost race makes its start fail,
    and the caller retries with new ports."""
    with socket.socket(socket.AF_INET, kind) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def processes() -> Iterator[tuple[int, list[str]]]:
    """Every process of the machine: (pid, argv)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\x00")
        except OSError:
            continue
        yield int(entry.name), [part.decode(errors="replace") for part in argv]


def leftover_vms(instance: str) -> list[int]:
    """QEMU processes of this Syringe instance whose owning Syringe process is gone: left by a crash."""
    found = []
    for pid, argv in processes():
        with contextlib.suppress(ValueError, IndexError):
            name = argv[argv.index("-name") + 1]
            if not name.startswith(f"{NAME_PREFIX}{instance}-"):
                continue
            owner = int(name.rsplit("@", 1)[1]) if "@" in name else 0
            if owner <= 0 or not Path(f"/proc/{owner}").exists():
                found.append(pid)
    return found


def end_leftovers(instance: str) -> list[int]:
    ended = leftover_vms(instance)
    for pid in ended:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    return ended
