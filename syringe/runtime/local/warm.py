"""Warm boots of the tiny VM: boot once per shape, save the booted VM's state, restore it per endpoint.

A tiny VM boots in about 4 s of CPU under TCG; restoring a saved state takes a fraction of a second, so
several VMs of a lesson no longer queue for the machine's cores. A template is booted with
`syringe.template=1`: its /init loads modules, brings up management networking, prints
SYRINGE-VM-TEMPLATE and waits. Syringe then saves its state (QMP: stop, migrate to a file). An endpoint
restores that state in a new QEMU with the same devices (its own links, forwards and lesson share) and an
fw_cfg file carrying its identity; the guest reads it, then names itself, addresses its NICs (setting their
own MACs), mounts the lesson share and starts sshd. vmgenid makes the restored guest reseed its RNG, so
no two endpoints share random state. The shape is what QEMU needs to match: data NIC count and memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from syringe.errors import QemuSpecError, VmFailed, WarmBootFailed
from syringe.qemu.command import (
    IDENTITY,
    TINY_KERNEL_PARAMETERS,
    DataNic,
    KernelBoot,
    Share,
    UdpLink,
    VmSpec,
    mac_address,
)
from syringe.qemu.process import VmProcess
from syringe.runtime.local.host import free_port
from syringe.runtime.local.state import Account, fresh_directory, own_directory, private_file
from syringe.runtime.local.tinylinux import TinyLinux

log = logging.getLogger(__name__)

IDENTITY_BYTES = 4096  # the guest sees the size the template had: every identity is padded to it
TEMPLATE_LINE = "SYRINGE-VM-TEMPLATE"
TEMPLATE_APPEND = f"{TINY_KERNEL_PARAMETERS} syringe.template=1"
TEMPLATE_SEED = "syringe-template"
QMP_TIMEOUT = 10.0  # QEMU makes its control socket as it starts


@dataclass(frozen=True)
class Shape:
    nics: int
    memory_mib: int
    flavour: str = "base"


def template_mac(index: int) -> str:
    return mac_address(TEMPLATE_SEED, index)


def identity_file(path: Path, parameters: str, owner: Account | None) -> None:
    """Write a guest identity padded to the template's size, readable only by ``owner`` (QEMU's user): it
    holds the login's password. Raises WarmBootFailed when it cannot fit."""
    data = parameters.encode()
    if len(data) >= IDENTITY_BYTES:
        raise WarmBootFailed(f"identity of {len(data)} bytes does not fit in {IDENTITY_BYTES}")
    private_file(path, data + b" " * (IDENTITY_BYTES - len(data)), owner)


class Qmp:
    """The few QMP commands warm boots need, over QEMU's unix socket."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def connect(cls, path: str, timeout: float, alive: Callable[[], bool] = lambda: True) -> Qmp:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            try:
                reader, writer = await asyncio.open_unix_connection(path)
                break
            except OSError:
                if loop.time() > deadline or not alive():
                    raise WarmBootFailed(f"no QMP socket at {path}") from None
                await asyncio.sleep(0.02)
        qmp = cls(reader, writer)
        await asyncio.wait_for(reader.readline(), timeout)  # the greeting
        await qmp.execute("qmp_capabilities")
        return qmp

    async def execute(self, command: str, **arguments: Any) -> Any:
        message = {"execute": command, **({"arguments": arguments} if arguments else {})}
        self.writer.write(json.dumps(message).encode() + b"\n")
        await self.writer.drain()
        while True:
            line = await asyncio.wait_for(self.reader.readline(), 30)
            if not line:
                raise WarmBootFailed(f"QMP closed during {command}")
            reply = json.loads(line)
            if "error" in reply:
                raise WarmBootFailed(f"QMP {command}: {reply['error'].get('desc')}")
            if "return" in reply:
                return reply["return"]

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(OSError):
            await self.writer.wait_closed()


async def resume_restored(qmp_path: str, timeout: float, alive: Callable[[], bool]) -> None:
    """Wait for the incoming state to be loaded, then let the restored guest run."""
    qmp = await Qmp.connect(qmp_path, QMP_TIMEOUT, alive)
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while (await qmp.execute("query-status"))["status"] == "inmigrate":
            if loop.time() > deadline:
                raise WarmBootFailed("restoring the saved state took too long")
            await asyncio.sleep(0.02)
        await qmp.execute("cont")
    finally:
        await qmp.close()


class Templates:
    """Saved tiny-VM states, one per shape, made on first use and reused until Syringe stops."""

    def __init__(
        self, directory: Path, tinies: Mapping[str, TinyLinux], binary: str, user: Account | None, accel: str
    ) -> None:
        self.directory = directory  # Syringe's, open to QEMU's user for passing through
        self.tinies = tinies  # by flavour: those built so far
        self.binary = binary
        self.user = user
        self.accel = accel
        self._states: dict[Shape, Path] = {}
        self._locks: dict[Shape, asyncio.Lock] = {}
        self._broken: set[Shape] = set()

    def spec(self, shape: Shape, name: str, workdir: Path) -> VmSpec:
        """The devices every VM of this shape has: the template's, and each restored endpoint's."""
        tiny = self.tinies[shape.flavour]
        nics = tuple(
            DataNic(f"eth{i}", template_mac(i), UdpLink(free_port(socket.SOCK_DGRAM), free_port(socket.SOCK_DGRAM)))
            for i in range(1, shape.nics + 1)
        )
        return VmSpec(
            name=name,
            memory_mib=shape.memory_mib,
            cpus=1,
            boot=KernelBoot(str(tiny.kernel), str(tiny.initrd), TEMPLATE_APPEND),
            accel="kvm" if self.accel == "kvm" else "tcg",
            nics=nics,
            share=Share(str(workdir), "lesson"),
            console=str(workdir / "console"),
            fw_cfg={IDENTITY: str(workdir / "identity")},
            vmgenid=True,
            qmp=str(workdir / "qmp.sock"),
        )

    async def state(self, shape: Shape, timeout: float) -> Path:
        """The saved state for ``shape``, made now if it is not there. Raises WarmBootFailed."""
        if shape in self._broken:
            raise WarmBootFailed(f"no template for {shape}: it failed before")
        lock = self._locks.setdefault(shape, asyncio.Lock())
        async with lock:
            if shape not in self._states:
                try:
                    self._states[shape] = await self._make(shape, timeout)
                except (WarmBootFailed, VmFailed, QemuSpecError, OSError) as exc:
                    self._broken.add(shape)
                    log.warning("warm boots off for %s: %s", shape, exc)
                    raise WarmBootFailed(str(exc)) from exc
            return self._states[shape]

    def _prepare(self, workdir: Path) -> None:
        """The template's own directory, QEMU's user's alone: QEMU writes the saved state there, and only
        QEMUs (as that user) that restore it read it."""
        own_directory(self.directory, self.user)
        fresh_directory(workdir)
        if self.user is not None:
            os.chown(workdir, self.user.uid, self.user.gid)
        identity_file(workdir / "identity", "template", self.user)

    async def _make(self, shape: Shape, timeout: float) -> Path:
        workdir = self.directory / f"{shape.flavour}-nics{shape.nics}-mem{shape.memory_mib}"
        await asyncio.to_thread(self._prepare, workdir)
        spec = self.spec(shape, f"syringe-template.nics{shape.nics}", workdir)
        vm = VmProcess(spec, self.binary, self.user.name if self.user else None)
        await vm.start()
        try:
            await vm.wait_ready(timeout, TEMPLATE_LINE)
            qmp = await Qmp.connect(str(spec.qmp), QMP_TIMEOUT, vm.is_running)
            try:
                await qmp.execute("stop")
                partial = workdir / "state.partial"
                await qmp.execute("migrate", uri=f"exec:cat > {partial}")
                loop = asyncio.get_running_loop()
                deadline = loop.time() + timeout
                while (status := (await qmp.execute("query-migrate")).get("status")) not in ("completed", "failed"):
                    if loop.time() > deadline:
                        raise WarmBootFailed("saving the template's state took too long")
                    await asyncio.sleep(0.05)
                if status != "completed":
                    raise WarmBootFailed("QEMU could not save the template's state")
            finally:
                await qmp.close()
        finally:
            await vm.stop()
        state = workdir / "state"
        # QEMU made it 0600 (its umask); no chmod here, which would follow a link QEMU's user put there.
        await asyncio.to_thread(partial.replace, state)
        log.info("warm-boot template ready: %s, %d data NICs, %d MiB", shape.flavour, shape.nics, shape.memory_mib)
        return state
