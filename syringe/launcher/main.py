"""`syringe launch`: PID 1 of a QEMU wrapper container.

It waits for the pod's data interfaces, stitches each to a tap device, boots the image's VM on them with
an overlay disk, forwards the pod's management ports to the VM, shares the lesson's files over 9p, keeps a
health file for the readiness probe, restarts a crashed QEMU, and stops cleanly on SIGTERM. Everything it
needs comes from its environment (see LaunchConfig.from_env), whose names plan/podenv.py holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from syringe.errors import QemuSpecError, VmFailed
from syringe.launcher.stitch import StitchError, stitch, unstitch, wait_for_interfaces
from syringe.plan import podenv
from syringe.qemu.command import (
    IDENTITY,
    MAX_DATA_NICS,
    READY_LINE,
    DataNic,
    DiskBoot,
    KernelBoot,
    Share,
    TapLink,
    VmSpec,
    guest_parameters,
    mac_address,
)
from syringe.qemu.process import VmProcess, choose_accel

log = logging.getLogger(__name__)

DEFAULT_PORTS = (22, 830, 80, 443)
HEALTH_FILE = "/run/syringe/health"
# Every variable the launcher reads (docs/OPERATIONS.md documents each; a test holds them to it).
ENVIRONMENT = (
    podenv.ENDPOINT, podenv.LESSON_DIR, podenv.VM_DISK, podenv.VM_KERNEL, podenv.VM_INITRD, podenv.VM_APPEND,
    podenv.VM_MEMORY_MIB, podenv.VM_CPUS, podenv.VM_INTERFACES, podenv.VM_PORTS, podenv.VM_ADDRESSES, podenv.VM_USER,
    podenv.VM_PASSWORD, podenv.VM_FORWARD, podenv.VM_ACCEL, podenv.VM_STATE_DIR, podenv.VM_HEALTH_FILE,
    podenv.VM_INTERFACE_TIMEOUT, podenv.VM_BOOT_TIMEOUT, podenv.VM_READY_LINE,
)  # fmt: skip
ACCELERATORS: dict[str, Literal["auto", "kvm", "tcg"]] = {"auto": "auto", "kvm": "kvm", "tcg": "tcg"}


class LaunchError(RuntimeError):
    """The wrapper cannot run its VM; the message says which setting or step and why."""


def _int(env: dict[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = env.get(name, str(default))
    try:
        value = int(raw)
    except ValueError:
        raise LaunchError(f"{name}={raw!r} is not a whole number") from None
    if not low <= value <= high:
        raise LaunchError(f"{name}={value} is outside {low}..{high}")
    return value


@dataclass(frozen=True)
class LaunchConfig:
    endpoint: str
    memory_mib: int
    cpus: int
    interfaces: int
    disk: str = ""
    kernel: str = ""
    initrd: str = ""
    append: str = ""
    ports: tuple[int, ...] = DEFAULT_PORTS
    addresses: tuple[str, ...] = ()  # kernel boots of Syringe's tiny VM: an address per data NIC
    user: str = ""
    password: str = ""
    forward: bool = False  # kernel boots: the guest routes between its data NICs
    lesson_dir: str = "/antidote"
    state_dir: str = "/var/lib/syringe"
    health_file: str = HEALTH_FILE
    accel: Literal["auto", "kvm", "tcg"] = "auto"
    interface_timeout: float = 300.0
    boot_timeout: float = 300.0
    ready_line: str = ""  # a disk's (podenv.VM_READY_LINE); a kernel boot waits for the tiny VM's READY_LINE
    max_restarts: int = 5

    @classmethod
    def from_env(cls, env: dict[str, str]) -> LaunchConfig:
        disk, kernel = env.get(podenv.VM_DISK, ""), env.get(podenv.VM_KERNEL, "")
        if not disk and not kernel:
            raise LaunchError(f"set {podenv.VM_DISK} (a qcow2 image) or {podenv.VM_KERNEL} and {podenv.VM_INITRD}")
        if kernel and not env.get(podenv.VM_INITRD):
            raise LaunchError(f"{podenv.VM_KERNEL} needs {podenv.VM_INITRD}")
        try:
            extra_ports = podenv.parse_vm_ports(env.get(podenv.VM_PORTS, ""))
        except podenv.PortError as exc:
            raise LaunchError(f"{podenv.VM_PORTS}: {exc.args[0]!r} is not a port") from None
        accel = ACCELERATORS.get(env.get(podenv.VM_ACCEL, "auto"))
        if accel is None:
            raise LaunchError(f"{podenv.VM_ACCEL}={env[podenv.VM_ACCEL]!r}: expected auto, kvm or tcg")
        return cls(
            endpoint=env.get(podenv.ENDPOINT, "endpoint"),
            memory_mib=_int(env, podenv.VM_MEMORY_MIB, 1024, 64, 1 << 20),
            cpus=_int(env, podenv.VM_CPUS, 1, 1, 64),
            interfaces=_int(env, podenv.VM_INTERFACES, 0, 0, MAX_DATA_NICS),
            disk=disk,
            kernel=kernel,
            initrd=env.get(podenv.VM_INITRD, ""),
            append=env.get(podenv.VM_APPEND, ""),
            ports=tuple(dict.fromkeys([*DEFAULT_PORTS, *extra_ports])),
            addresses=tuple(filter(None, env.get(podenv.VM_ADDRESSES, "").split(","))),
            user=env.get(podenv.VM_USER, ""),
            password=env.get(podenv.VM_PASSWORD, ""),
            forward=env.get(podenv.VM_FORWARD, "") == "1",
            lesson_dir=env.get(podenv.LESSON_DIR, "/antidote"),
            state_dir=env.get(podenv.VM_STATE_DIR, "/var/lib/syringe"),
            health_file=env.get(podenv.VM_HEALTH_FILE, HEALTH_FILE),
            accel=accel,
            interface_timeout=float(_int(env, podenv.VM_INTERFACE_TIMEOUT, 300, 1, 86400)),
            boot_timeout=float(_int(env, podenv.VM_BOOT_TIMEOUT, 300, 1, 86400)),
            ready_line=env.get(podenv.VM_READY_LINE, ""),
        )

    def data_interfaces(self) -> list[tuple[str, str]]:
        """(pod interface, tap device) per data NIC, in PCI order."""
        return [(f"eth{i}", f"tap{i}") for i in range(1, self.interfaces + 1)]


def data_nics(config: LaunchConfig) -> tuple[DataNic, ...]:
    return tuple(
        DataNic(
            name=pod_interface,
            mac=mac_address(config.endpoint, index),
            transport=TapLink(tap),
            address=config.addresses[index - 1] if index <= len(config.addresses) else None,
        )
        for index, (pod_interface, tap) in enumerate(config.data_interfaces(), start=1)
    )


def identity_parameters(config: LaunchConfig) -> str:
    """The guest's hostname, login, data NICs and forwarding, in the words the tiny VM and prepared disks read."""
    return guest_parameters(config.endpoint, data_nics(config), config.user or None, config.password, config.forward)


def vm_spec(config: LaunchConfig, overlay: str) -> VmSpec:
    """The VM of this wrapper: pure, given the config and the overlay path."""
    nics = data_nics(config)
    boot: KernelBoot | DiskBoot
    fw_cfg: dict[str, str] = {}
    if config.kernel:
        boot = KernelBoot(config.kernel, config.initrd, f"{identity_parameters(config)} {config.append}".strip())
    else:
        boot = DiskBoot(overlay)
        # A disk has no kernel command line of ours: a prepared one reads the same words from fw_cfg.
        fw_cfg[IDENTITY] = str(Path(config.state_dir) / "identity")
    accel = choose_accel(config.accel)
    share = Share(config.lesson_dir, "lesson") if Path(config.lesson_dir).is_dir() else None
    return VmSpec(
        name=f"syringe-wrapper.{config.endpoint}",
        memory_mib=config.memory_mib,
        cpus=config.cpus,
        boot=boot,
        accel=accel,
        forwards={port: port for port in config.ports},
        forward_address="",  # every address of the pod
        nics=nics,
        share=share,
        console=str(Path(config.state_dir) / "console.log"),
        fw_cfg=fw_cfg,
    )


def health(path: str) -> int:
    """`syringe launch --health`: 0 when the VM is up and ready, 1 otherwise (with why, for kubectl)."""
    try:
        state = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        print("no health yet: the VM is not started")
        return 1
    pid = int(state.get("pid") or 0)
    if state.get("state") != "ready" or pid <= 0 or not Path(f"/proc/{pid}").exists():
        print(f"VM {state.get('state', 'unknown')} (restarts: {state.get('restarts', 0)})")
        return 1
    return 0


class Launcher:
    def __init__(self, config: LaunchConfig, binary: str = "qemu-system-x86_64") -> None:
        self.config = config
        self.binary = binary
        self.stopping = asyncio.Event()
        self.restarts = 0
        self.vm: VmProcess | None = None

    def _health(self, state: str) -> None:
        path = Path(self.config.health_file)
        path.parent.mkdir(parents=True, exist_ok=True)
        pid = self.vm.process.pid if self.vm is not None and self.vm.process is not None else 0
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps({"state": state, "pid": pid, "restarts": self.restarts, "time": time.time()}))
        temporary.replace(path)  # a probe never reads half a file
        marker = path.with_name(podenv.READY_MARKER)
        if state == "ready":
            marker.touch()
        else:
            marker.unlink(missing_ok=True)

    def prepare(self) -> str:
        """Interfaces, taps, overlay. Returns the overlay path ("" for kernel boots)."""
        names = [pod for pod, _ in self.config.data_interfaces()]
        missing = wait_for_interfaces(names, self.config.interface_timeout)
        if missing:
            raise LaunchError(
                f"the pod has no {', '.join(missing)} after {self.config.interface_timeout:.0f}s "
                f"({podenv.VM_INTERFACES}={self.config.interfaces}): are its network attachments there?"
            )
        try:
            for pod_interface, tap in self.config.data_interfaces():
                stitch(pod_interface, tap)
        except StitchError as exc:
            raise LaunchError(f"stitching: {exc}") from exc
        state = Path(self.config.state_dir)
        state.mkdir(parents=True, exist_ok=True)
        if self.config.kernel:
            for path in (self.config.kernel, self.config.initrd):
                if not Path(path).is_file():
                    raise LaunchError(f"{path} does not exist")
            return ""
        if not Path(self.config.disk).is_file():
            raise LaunchError(f"{podenv.VM_DISK}: {self.config.disk} does not exist")
        identity = state / "identity"
        identity.unlink(missing_ok=True)
        identity.touch(mode=0o600)  # it holds the login's password
        identity.write_text(identity_parameters(self.config))
        overlay = state / "overlay.qcow2"
        overlay.unlink(missing_ok=True)  # a new pod starts from the image, as a new container would
        done = subprocess.run(
            ["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", str(Path(self.config.disk).resolve()),
             str(overlay)],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            raise LaunchError(f"overlay on {self.config.disk}: {done.stderr.strip()}")
        return str(overlay)

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self.stopping.set)
        self._health("starting")
        try:
            overlay = await asyncio.to_thread(self.prepare)
            spec = vm_spec(self.config, overlay)
        except (LaunchError, QemuSpecError) as exc:
            log.error("%s", exc)
            self._health("failed")
            return 2
        try:
            return await self._supervise(spec)
        finally:
            for _, tap in self.config.data_interfaces():
                await asyncio.to_thread(unstitch, tap)

    async def _supervise(self, spec: VmSpec) -> int:
        while not self.stopping.is_set():
            self.vm = VmProcess(spec, self.binary)
            await self.vm.start()
            self._health("booting")
            ended = asyncio.create_task(self.vm.wait())
            stop = asyncio.create_task(self.stopping.wait())
            try:
                ready_line = READY_LINE if self.config.kernel else (self.config.ready_line or None)
                await self.vm.wait_ready(self.config.boot_timeout, ready_line)
                self._health("ready")
                log.info("%s: VM ready (%s)", self.config.endpoint, spec.accel)
            except VmFailed as exc:
                log.error("%s: %s", self.config.endpoint, exc)
            await asyncio.wait({ended, stop}, return_when=asyncio.FIRST_COMPLETED)
            stop.cancel()
            if self.stopping.is_set():
                break
            self.restarts += 1
            log.warning("%s: qemu ended (status %s); restart %d", self.config.endpoint, ended.result(), self.restarts)
            if self.restarts > self.config.max_restarts:
                self._health("failed")
                return 1
            self._health("restarting")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), min(2**self.restarts, 30))
        if self.vm is not None:
            await self.vm.stop()
        self._health("stopped")
        return 0


def main(env: dict[str, str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s launch: %(message)s")
    try:
        config = LaunchConfig.from_env(dict(env if env is not None else os.environ))
    except LaunchError as exc:
        log.error("%s", exc)
        return 2
    return asyncio.run(Launcher(config).run())
