"""One VM's QEMU process: start it (as another user, dying with its parent), know when its guest is ready,
stop it."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import grp
import os
import pwd
import signal
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from syringe.errors import VmFailed
from syringe.qemu.command import READY_LINE, VmSpec, qemu_command


def choose_accel(wanted: Literal["auto", "kvm", "tcg"]) -> Literal["kvm", "tcg"]:
    """KVM where it really works: /dev/kvm usable and a CPU with hardware virtualisation. Some machines
    offer a paravirtual /dev/kvm on which a stock kernel never boots; TCG works everywhere."""
    if wanted != "auto":
        return wanted
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return "tcg"
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "tcg"
    return "kvm" if (" vmx" in flags or " svm" in flags) else "tcg"


def _child_setup(user: str | None) -> Callable[[], None]:
    """What the child does before exec: become ``user`` (looked up now, not in the child), then ask to
    be killed when Syringe ends, however it ends. In that order: a change of credentials clears the
    parent-death signal."""
    account = pwd.getpwnam(user) if user else None
    groups = [g.gr_gid for g in grp.getgrall() if g.gr_name == "kvm"]  # /dev/kvm, where KVM works

    def setup() -> None:
        os.umask(0o077)  # what QEMU makes (a saved state, its control socket) is for its own user alone
        if account is not None:
            os.setgroups(groups)
            os.setgid(account.pw_gid)
            os.setuid(account.pw_uid)
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG

    return setup


# The console lives in a directory of the VM's user: Syringe (maybe root) never follows a link there, nor
# opens a FIFO or a device someone put in its place.
_CONSOLE_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_CONSOLE_READ = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC


def _prepare_console(path: Path, user: str | None) -> None:
    """An empty console file, 0600, owned by QEMU's user; whatever had its name (a link too) is removed."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    fd = os.open(path, _CONSOLE_CREATE, 0o600)
    try:
        if user is not None:
            account = pwd.getpwnam(user)
            os.fchown(fd, account.pw_uid, account.pw_gid)
    finally:
        os.close(fd)


def _read_console_tail(path: str, limit: int) -> str:
    try:
        fd = os.open(path, _CONSOLE_READ)
    except OSError:
        return ""
    with open(fd, "rb") as console:
        found = os.fstat(fd)
        if not stat.S_ISREG(found.st_mode) or found.st_nlink != 1:
            return ""
        console.seek(max(0, found.st_size - limit))
        return console.read(limit).decode(errors="replace")


class VmProcess:
    """One VM's QEMU. ``user``: run QEMU as this user (the local runtime, running as root, never runs a VM
    as root; the wrapper launcher passes none: its container is the VM's sandbox). The switch happens
    before exec, not with QEMU's -runas: a change of credentials after the parent-death signal is set would
    clear it."""

    def __init__(self, spec: VmSpec, binary: str, user: str | None = None) -> None:
        self.spec = spec
        self.user = user
        self.argv = qemu_command(spec, binary)
        self.process: asyncio.subprocess.Process | None = None
        self.stderr = b""

    async def start(self) -> None:
        if self.spec.console:
            await asyncio.to_thread(_prepare_console, Path(self.spec.console), self.user)
        self.process = await asyncio.create_subprocess_exec(
            *self.argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            preexec_fn=_child_setup(self.user),
            start_new_session=True,
        )

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.returncode is None

    def is_running(self) -> bool:
        """``running`` as a callable, for waits that must stop when QEMU does."""
        return self.running

    def console_tail(self, limit: int = 600) -> str:
        """The last ``limit`` bytes of the serial console: read from the end, so a chatty guest's long
        console costs no more than a quiet one's."""
        if not self.spec.console:
            return ""
        try:
            return _read_console_tail(self.spec.console, limit)
        except OSError:
            return ""

    async def ended_with(self) -> str | None:
        """What QEMU said as it ended (its status and last words), or None while it runs."""
        if self.process is None or self.process.returncode is None:
            return None
        return await self._failure()

    async def _failure(self) -> str:
        assert self.process is not None and self.process.stderr is not None
        with contextlib.suppress(TimeoutError):
            self.stderr = await asyncio.wait_for(self.process.stderr.read(), 2)
        said = self.stderr.decode(errors="replace").strip() or self.console_tail().strip()
        return f"qemu exited with status {self.process.returncode}: {said[-600:]}"

    async def wait_ready(self, timeout: float, ready_line: str | None = READY_LINE) -> float:
        """Until the guest prints ``ready_line`` on its console (or, with none, until QEMU has stayed up
        briefly). Returns the seconds waited. Raises VmFailed when QEMU ends first or the timeout passes."""
        assert self.process is not None
        loop = asyncio.get_running_loop()
        started = loop.time()
        deadline = started + (timeout if ready_line else 1.0)
        while loop.time() < deadline:
            if self.process.returncode is not None:
                raise VmFailed(await self._failure())
            if ready_line and ready_line in self.console_tail(4096):
                return loop.time() - started
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self.process.wait()), 0.05)
        if ready_line:
            raise VmFailed(f"the guest printed no ready line within {timeout:.0f}s; console: {self.console_tail()}")
        return loop.time() - started

    async def wait(self) -> int:
        assert self.process is not None
        return await self.process.wait()

    async def stop(self, grace: float = 3.0) -> None:
        if not self.running:
            return
        assert self.process is not None
        with contextlib.suppress(ProcessLookupError):
            self.process.terminate()
        try:
            await asyncio.wait_for(self.process.wait(), grace)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
            await self.process.wait()
