"""What each endpoint of a plan becomes on this machine: which image boots, how, with which devices.

Every check that can refuse an endpoint runs here, before any VM starts: the image's local: section, the
files it names (each a regular file inside the image's directory or one the operator lists, a disk's whole
backing chain included: disks.py) and whether QEMU may read them, the machine's memory, the interface count.
Each VM gets a directory of its own, which only the user QEMU runs as may enter: its overlay, its identity
(with the login's password), its console and its control socket are there.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import stat
import subprocess
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

from syringe.curriculum.models import Image
from syringe.errors import EndpointCannotRunLocally, ImageBuildError, QemuSpecError, RuntimeUnavailable, WarmBootFailed
from syringe.plan import Plan
from syringe.plan.addressing import attachments_by_endpoint
from syringe.plan.quantity import mebibytes
from syringe.qemu.command import (
    IDENTITY,
    DataNic,
    DiskBoot,
    KernelBoot,
    Share,
    UdpLink,
    VmSpec,
    guest_parameters,
    mac_address,
    qemu_command,
    tcg_cache_mib,
)
from syringe.runtime.local.disks import ImageFileRefused, allowed_directories, confined_file, disk_chain
from syringe.runtime.local.flavours import FLAVOURS
from syringe.runtime.local.host import free_port, vm_name
from syringe.runtime.local.state import VMS, Account, private_file, vm_directory
from syringe.runtime.local.tinylinux import TinyLinux, build_tiny_linux
from syringe.runtime.local.warm import Shape, Templates, identity_file, template_mac
from syringe.settings import LocalSettings

VM_OVERHEAD_MIB = 70  # QEMU's own memory per VM beyond guest RAM (measured in bench/local_vms.py)
ALWAYS_FORWARDED = (22, 830, 80)  # SSH for configuration, NETCONF and HTTP for every presentation type
SHARE = "lesson"  # a live lesson's directory holds its files here, shared with its VMs


PEER_NETWORK = "10.0.2."  # QEMU's user network; the guest is .15, the gateway .2, its DNS .3
FIRST_PEER, LAST_PEER = 100, 254


def peer_addresses(endpoints: list[str]) -> dict[str, str]:
    """Where every VM of a lesson reaches each endpoint on its management network: one address per endpoint,
    the same in every VM, which QEMU forwards to that endpoint's forwarded ports. The network has room for
    155; a lesson's endpoints beyond those are reached by their links only."""
    return {
        name: f"{PEER_NETWORK}{FIRST_PEER + index}"
        for index, name in enumerate(endpoints[: LAST_PEER - FIRST_PEER + 1])
    }


def tiny_memory_mib(image: Image) -> int:
    """A tiny VM's memory: what the image asks for, and at least what its flavour boots in."""
    assert image.local is not None
    return max(mebibytes(image.local.memory), FLAVOURS[image.local.flavour].memory_mib)


def available_memory_mib() -> int | None:
    """MemAvailable of this machine, or None where /proc/meminfo does not say."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) // 1024
    except (OSError, ValueError):
        return None
    return None


def _free_udp_pair() -> tuple[int, int]:
    return free_port(socket.SOCK_DGRAM), free_port(socket.SOCK_DGRAM)


class Machines:
    """The VMs of live lessons, as specifications: built per plan, checked before any starts."""

    def __init__(
        self,
        curriculum_root: Path,
        images: Mapping[str, Image],
        settings: LocalSettings,
        state_dir: Path,
        accel: Literal["kvm", "tcg"],
        run_as: Account | None,
    ) -> None:
        self.curriculum_root = curriculum_root
        self.images = dict(images)
        self.settings = settings
        self.state_dir = state_dir
        self.accel = accel
        self.run_as = run_as
        self._tinies: dict[str, TinyLinux] = {}  # by flavour
        self._tiny_lock = asyncio.Lock()
        self._templates: Templates | None = None

    def _tiny_shape(self, image: Image, nics: int) -> Shape:
        assert image.local is not None
        return Shape(nics, tiny_memory_mib(image), image.local.flavour)

    async def warm_states(
        self, plan: Plan, boots: Mapping[str, tuple[KernelBoot | DiskBoot, Image]]
    ) -> dict[str, Path]:
        """Saved states to restore, by endpoint: tiny VMs whose shape has (or now gets) a template."""
        if not self.settings.warm_boot or not self._tinies:
            return {}
        if self._templates is None:
            self._templates = Templates(
                self.state_dir / "templates", self._tinies, self.settings.qemu_binary, self.run_as, self.accel
            )
        attached = attachments_by_endpoint(plan.links)
        states: dict[str, Path] = {}
        for name, (_, image) in boots.items():
            if image.local is None or image.local.kind != "tiny-linux" or image.local.cpus != 1:
                continue
            if image.local.flavour not in self._tinies:
                continue
            try:
                shape = self._tiny_shape(image, len(attached.get(name, [])))
                states[name] = await self._templates.state(shape, self.settings.boot_timeout)
            except WarmBootFailed:
                continue  # this endpoint boots cold
        return states

    async def check_memory(self, boots: Mapping[str, tuple[KernelBoot | DiskBoot, Image]]) -> None:
        """Refuse a lesson this machine cannot hold, rather than let the kernel's OOM killer pick VMs."""
        needed = 0
        for _, image in boots.values():
            assert image.local is not None
            memory = mebibytes(image.local.memory)
            if image.local.kind == "tiny-linux":
                memory = tiny_memory_mib(image)
            needed += memory + VM_OVERHEAD_MIB + tcg_cache_mib(memory) - tcg_cache_mib(0)  # a bigger TCG cache
        available = await asyncio.to_thread(available_memory_mib)
        if available is not None and needed > available:
            raise RuntimeUnavailable(
                f"this machine has {available} MiB of memory available; the lesson's {len(boots)} VM(s) need "
                f"{needed} MiB: delete a live lesson first"
            )

    async def tiny_linux(self, flavour: str = "base") -> TinyLinux:
        async with self._tiny_lock:
            if flavour not in self._tinies:
                try:
                    built = await asyncio.to_thread(build_tiny_linux, self.settings.cache_dir, False, flavour)
                except ImageBuildError as exc:
                    name = "the tiny Linux VM" + (f" ({flavour} flavour)" if flavour != "base" else "")
                    raise RuntimeUnavailable(f"building {name}: {exc}") from exc
                self._tinies[flavour] = built
            return self._tinies[flavour]

    def _unreadable(self, path: Path) -> str | None:
        """Why QEMU, running as another user, cannot read ``path``; None when it can."""
        if self.run_as is None:
            return None
        resolved = path.resolve()
        user = self.run_as.name
        for parent in reversed(resolved.parents):
            if not parent.stat().st_mode & stat.S_IXOTH:
                return f"{resolved} is not readable by {user}, whom QEMU runs as: {parent} is closed to others"
        if not resolved.stat().st_mode & stat.S_IROTH:
            return f"{resolved} is not readable by {user}, whom QEMU runs as (chmod o+r)"
        return None

    def _image_dir(self, slug: str) -> Path:
        return self.curriculum_root / "images" / slug

    def _image_path(self, slug: str, path: str) -> Path:
        candidate = Path(path)
        return candidate if candidate.is_absolute() else self._image_dir(slug) / candidate

    def _confined(self, slug: str, paths: list[Path], disk: bool) -> list[Path]:
        """The real paths of an image's files (a disk: and of its backing chain), each checked; then whether
        QEMU may read them. Raises ImageFileRefused."""
        allowed = allowed_directories(self._image_dir(slug), self.settings.image_dirs)
        real = disk_chain(paths[0], allowed) if disk else [confined_file(path, allowed) for path in paths]
        for path in real:
            if (why := self._unreadable(path)) is not None:
                raise ImageFileRefused(why)
        return real

    def cannot_boot(self, endpoint: str, slug: str) -> str | None:
        """Why ``endpoint`` (of image ``slug``) can never boot here, known without touching a file; else None."""
        image = self.images.get(slug)
        if image is None:
            return f"endpoint {endpoint}: image {slug} is not in the curriculum"
        if image.local is None:
            return (
                f"endpoint {endpoint}: image {slug} cannot run without a cluster: its image.meta.yaml has no "
                "local: section (kind tiny-linux, disk or kernel)"
            )
        return None

    async def boot_for(self, endpoint: str, plan: Plan) -> tuple[KernelBoot | DiskBoot, Image]:
        slug = plan.endpoint_images.get(endpoint, "")
        if (why := self.cannot_boot(endpoint, slug)) is not None:
            raise EndpointCannotRunLocally(why)
        image = self.images[slug]
        local = image.local
        assert local is not None  # cannot_boot said so
        if local.kind == "tiny-linux":
            tiny = await self.tiny_linux(local.flavour)
            return KernelBoot(str(tiny.kernel), str(tiny.initrd)), image
        if local.kind == "kernel":
            files = [self._image_path(slug, local.kernel), self._image_path(slug, local.initrd)]
            try:
                kernel, initrd = await asyncio.to_thread(self._confined, slug, files, False)
            except ImageFileRefused as exc:
                raise EndpointCannotRunLocally(f"endpoint {endpoint}: image {slug}: {exc}") from None
            return KernelBoot(str(kernel), str(initrd), local.append), image
        try:
            chain = await asyncio.to_thread(self._confined, slug, [self._image_path(slug, local.disk)], True)
        except ImageFileRefused as exc:
            raise EndpointCannotRunLocally(f"endpoint {endpoint}: image {slug}: disk image {exc}") from None
        # The overlay names the disk by its real path: QEMU then opens exactly the file checked here.
        return DiskBoot(str(chain[0])), image

    def specs(
        self,
        plan: Plan,
        pods: list[dict[str, Any]],
        boots: Mapping[str, tuple[KernelBoot | DiskBoot, Image]],
        directory: Path,
        states: Mapping[str, Path],
    ) -> dict[str, tuple[VmSpec, bool, VmSpec | None]]:
        """Each endpoint's VM: (what to start, whether it is the tiny VM, the cold boot to fall back to
        when what to start is a warm boot)."""
        ports: dict[tuple[int, str], int] = {}
        for link in plan.links:
            ports[(link.index, link.a.endpoint)], ports[(link.index, link.b.endpoint)] = _free_udp_pair()
        attached = attachments_by_endpoint(plan.links)
        forwarded: dict[str, dict[int, int]] = {}
        for pod in pods:
            served = [p["containerPort"] for p in pod["spec"]["containers"][0].get("ports", [])]
            forwarded[pod["metadata"]["name"]] = {
                port: free_port() for port in dict.fromkeys([*served, *ALWAYS_FORWARDED])
            }
        peers = peer_addresses(list(forwarded))
        specs: dict[str, tuple[VmSpec, bool, VmSpec | None]] = {}
        for pod in pods:
            name = pod["metadata"]["name"]
            others = {other: address for other, address in peers.items() if other != name}
            boot, image = boots[name]
            assert image.local is not None
            seed = f"{plan.namespace}/{name}"
            nics = []
            for position, (link, side) in enumerate(attached.get(name, [])):
                peer = link.b if side is link.a else link.a
                transport = UdpLink(ports[(link.index, name)], ports[(link.index, peer.endpoint)])
                nics.append(DataNic(side.interface, mac_address(seed, position + 1), transport, side.address))
            forwards = forwarded[name]
            tiny = image.local.kind == "tiny-linux"
            memory = mebibytes(image.local.memory)
            if isinstance(boot, KernelBoot) and tiny:
                memory = tiny_memory_mib(image)
                boot = KernelBoot(
                    boot.kernel,
                    boot.initrd,
                    guest_parameters(
                        name, tuple(nics), image.ssh_user, image.ssh_password, image.enable_forwarding, others
                    ),
                )
            vm_dir = directory / VMS / name
            vm_directory(vm_dir, self.run_as)
            fw_cfg: dict[str, str] = {}
            if isinstance(boot, DiskBoot):
                boot = DiskBoot(self._overlay(vm_dir, name, Path(boot.disk)))
                # A disk has no kernel command line of ours: a prepared one reads the same words from fw_cfg.
                parameters = guest_parameters(
                    name, tuple(nics), image.ssh_user, image.ssh_password, image.enable_forwarding, others
                )
                private_file(vm_dir / "identity", parameters.encode(), self.run_as)
                fw_cfg[IDENTITY] = str(vm_dir / "identity")
            spec = VmSpec(
                name=vm_name(plan.namespace, name),
                memory_mib=memory,
                cpus=image.local.cpus,
                boot=boot,
                accel=self.accel,
                forwards=forwards,
                guest_forwards={
                    (address, port): host
                    for other, address in others.items()
                    for port, host in forwarded[other].items()
                },
                nics=tuple(nics),
                share=Share(str(directory / SHARE), "lesson"),
                console=str(vm_dir / "console"),
                fw_cfg=fw_cfg,
            )
            try:
                qemu_command(spec)
            except QemuSpecError as exc:
                raise QemuSpecError(f"endpoint {name}: {exc}") from exc
            warm = None
            if name in states:
                with contextlib.suppress(WarmBootFailed):
                    warm = self._warm_spec(spec, image, name, states[name], vm_dir, others)
            specs[name] = (warm, tiny, spec) if warm is not None else (spec, tiny, None)
        return specs

    def _warm_spec(
        self, cold: VmSpec, image: Image, name: str, state: Path, vm_dir: Path, peers: Mapping[str, str]
    ) -> VmSpec:
        """The cold VM's restore from a template: the template's devices and MACs, this endpoint's links,
        forwards and share, and its identity (the cold boot's kernel parameters) in an fw_cfg file."""
        assert self._templates is not None
        nics = tuple(
            replace(nic, mac=template_mac(position), final_mac=nic.mac)
            for position, nic in enumerate(cold.nics, start=1)
        )
        identity = vm_dir / "identity"
        parameters = guest_parameters(name, nics, image.ssh_user, image.ssh_password, image.enable_forwarding, peers)
        identity_file(identity, parameters, self.run_as)
        template = self._templates.spec(self._tiny_shape(image, len(nics)), cold.name, vm_dir)
        return replace(
            template,
            forwards=cold.forwards,
            guest_forwards=cold.guest_forwards,
            nics=nics,
            share=cold.share,
            console=cold.console,
            fw_cfg={IDENTITY: str(identity)},
            qmp=str(vm_dir / "qmp.sock"),
            incoming=f"exec:cat {state}",
        )

    def _overlay(self, vm_dir: Path, endpoint: str, base: Path) -> str:
        """A qcow2 overlay on the image's disk: the VM writes there, and a new live lesson starts clean. Made
        by QEMU's user, in its own directory, 0600: qemu-img reads the backing chain with no more rights
        than QEMU will have."""
        overlay = vm_dir / "disk.qcow2"
        user = self.run_as
        done = subprocess.run(
            ["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", str(base), str(overlay)],
            capture_output=True,
            text=True,
            check=False,
            umask=0o077,
            user=user.uid if user else None,
            group=user.gid if user else None,
            extra_groups=[] if user else None,
        )
        if done.returncode != 0:
            raise QemuSpecError(f"endpoint {endpoint}: overlay on {base}: {done.stderr.strip()}")
        return str(overlay)
