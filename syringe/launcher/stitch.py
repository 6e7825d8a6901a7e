"""Stitching a pod interface to a VM's tap device with tc: every frame in on one goes out of the other.

No bridge, so nothing is learned, filtered or consumed on the way: LACP, STP and LLDP frames reach the VM
and leave it as they came.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path


class StitchError(RuntimeError):
    """An interface could not be stitched; the message has the command and what it said."""


def _run(*command: str) -> None:
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise StitchError(f"{' '.join(command)}: {(done.stderr or done.stdout).strip()}")


def interface_exists(name: str) -> bool:
    return Path("/sys/class/net", name).exists()


def wait_for_interfaces(names: list[str], timeout: float, poll: float = 0.1) -> list[str]:
    """Wait until every interface exists (CNI plugins add them as the pod starts). Returns the missing ones
    when the timeout passes, else an empty list."""
    deadline = time.monotonic() + timeout
    while True:
        missing = [name for name in names if not interface_exists(name)]
        if not missing or time.monotonic() >= deadline:
            return missing
        time.sleep(poll)


def _mirror(source: str, target: str) -> None:
    _run("tc", "qdisc", "replace", "dev", source, "handle", "ffff:", "ingress")
    if _has_filters(source):  # stitching again replaces, never doubles, the redirect
        _run("tc", "filter", "del", "dev", source, "parent", "ffff:")
    _run(
        "tc", "filter", "add", "dev", source, "parent", "ffff:", "protocol", "all", "u32", "match", "u8", "0", "0",
        "action", "mirred", "egress", "redirect", "dev", target,
    )  # fmt: skip


def _has_filters(device: str) -> bool:
    done = subprocess.run(
        ["tc", "filter", "show", "dev", device, "parent", "ffff:"], capture_output=True, text=True, check=False
    )
    return bool(done.stdout.strip())


def stitch(interface: str, tap: str) -> None:
    """Create ``tap`` (if needed) and redirect frames both ways between it and ``interface``. Idempotent."""
    if not interface_exists(tap):
        _run("ip", "tuntap", "add", "dev", tap, "mode", "tap")
    mtu = Path("/sys/class/net", interface, "mtu").read_text().strip()
    _run("ip", "link", "set", "dev", tap, "mtu", mtu, "up")
    # The planned address belongs to the guest: the pod's interface, which static IPAM gave it, lets it go.
    _run("ip", "-4", "addr", "flush", "dev", interface)
    # Frames for the VM's MAC, not the pod interface's, must be taken in.
    _run("ip", "link", "set", "dev", interface, "promisc", "on", "up")
    _mirror(interface, tap)
    _mirror(tap, interface)


def unstitch(tap: str) -> None:
    if interface_exists(tap):
        subprocess.run(["ip", "link", "del", "dev", tap], capture_output=True, check=False)
