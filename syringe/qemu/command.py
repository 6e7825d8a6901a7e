"""QEMU command lines for lesson endpoints (pure), and the kernel parameters Syringe's tiny VM reads.

PCI addresses are pinned so that a guest always sees its NICs in the same order: the lesson share at
slot 2, management at slot 3, data NICs from slot 4, the entropy source at the last slot. MAC addresses
are deterministic, so the guest can name and address each data NIC by MAC whatever order the kernel
probes them in.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from syringe.errors import QemuSpecError

SHARE_SLOT = 0x2
MANAGEMENT_SLOT = 0x3
# QEMU user networking's gateway on the management NIC; with restrict=on its DHCP offers no router.
MANAGEMENT_GATEWAY = "10.0.2.2"
FIRST_DATA_SLOT = 0x4
RNG_SLOT = 0x1F  # the last of the bus's 32 slots
MAX_DATA_NICS = RNG_SLOT - FIRST_DATA_SLOT
READY_LINE = "SYRINGE-VM-READY"
# Kernel parameters of the tiny VM that shorten its boot under TCG (measured in bench/local_vms.py): the
# KDF and crypto self-tests alone take 0.6 s there.
TINY_KERNEL_PARAMETERS = (
    "mitigations=off apparmor=0 audit=0 cryptomgr.notests=1 initcall_blacklist=crypto_kdf108_init,init_kprobe_trace"
)
GUEST_FORWARD_RELAY = "socat"  # scripts/setup.sh installs it
MIN_TINY_MEMORY_MIB = 128  # measured: 64 MiB does not boot the tiny VM


@dataclass(frozen=True)
class KernelBoot:
    kernel: str
    initrd: str
    append: str = ""


@dataclass(frozen=True)
class DiskBoot:
    disk: str  # a qcow2 overlay: a restart of the VM starts from the base image again


@dataclass(frozen=True)
class UdpLink:
    """A point-to-point link to another VM: datagrams between two 127.0.0.1 ports, no root needed."""

    local_port: int
    remote_port: int
    host: str = "127.0.0.1"


@dataclass(frozen=True)
class TapLink:
    """A link through a tap device that the wrapper launcher has stitched to a pod interface."""

    device: str


@dataclass(frozen=True)
class DataNic:
    name: str  # what the guest calls it (eth1, net1...)
    mac: str
    transport: UdpLink | TapLink
    address: str | None = None  # with prefix length; None leaves it unaddressed
    final_mac: str | None = None  # warm boots: the NIC has the template's MAC; the guest sets this one


@dataclass(frozen=True)
class Share:
    path: str
    tag: str


@dataclass(frozen=True)
class VmSpec:
    name: str
    memory_mib: int
    cpus: int
    boot: KernelBoot | DiskBoot
    accel: Literal["kvm", "tcg"] = "tcg"
    forwards: Mapping[int, int] = field(default_factory=dict)  # guest port -> host port
    forward_address: str = "127.0.0.1"  # "" listens on every address (in a pod)
    # (address, port) the guest dials on its management network -> host port on 127.0.0.1 that QEMU
    # connects it to: how a VM reaches the lesson's other endpoints by name, as pods reach Services.
    guest_forwards: Mapping[tuple[str, int], int] = field(default_factory=dict)
    nics: tuple[DataNic, ...] = ()
    share: Share | None = None  # the lesson's files, read-only
    console: str | None = None  # a file for the serial console; None sends it to stdout
    fw_cfg: Mapping[str, str] = field(default_factory=dict)  # name the guest sees -> host file
    vmgenid: bool = False  # a new generation id per QEMU: a restored guest reseeds its RNG
    incoming: str | None = None  # restore this saved state (a migration URI) instead of booting
    qmp: str | None = None  # a QMP control socket at this path


def mac_address(seed: str, index: int) -> str:
    """A stable, locally administered unicast MAC for NIC ``index`` of the VM named ``seed``."""
    digest = hashlib.sha256(f"{seed}/{index}".encode()).digest()
    return "52:54:" + ":".join(f"{b:02x}" for b in (digest[0], digest[1], digest[2], index & 0xFF))


# The fw_cfg file that hands a guest its identity in guest_parameters' words when no kernel command line
# can: a disk prepared by `syringe image prepare` reads it at boot, a warm-booted tiny VM after its restore.
IDENTITY = "opt/syringe/identity"


def guest_parameters(
    hostname: str,
    nics: tuple[DataNic, ...],
    user: str | None = None,
    password: str | None = None,
    forward: bool = False,
    peers: Mapping[str, str] | None = None,
) -> str:
    """Kernel command-line parameters that the tiny VM's /init reads. ``peers``: the lesson's other
    endpoints by name -> the management-network address that reaches them (its /etc/hosts)."""
    words = [*TINY_KERNEL_PARAMETERS.split(), f"syringe.host={hostname}"]
    if user:
        words.append(f"syringe.user={user}")
        words.append("syringe.password=" + base64.b64encode((password or "").encode()).decode())
    for nic in nics:
        fields = [nic.mac, nic.name, nic.address or "", nic.final_mac or ""]
        words.append("syringe.nic=" + ",".join(fields).rstrip(","))
    if forward:
        words.append("syringe.forward=1")
    words += [f"syringe.peer={name},{address}" for name, address in sorted((peers or {}).items())]
    return " ".join(words)


def _netdev(index: int, transport: UdpLink | TapLink) -> str:
    if isinstance(transport, TapLink):
        return f"tap,id=link{index},ifname={transport.device},script=no,downscript=no"
    return (
        f"dgram,id=link{index},local.type=inet,local.host={transport.host},local.port={transport.local_port},"
        f"remote.type=inet,remote.host={transport.host},remote.port={transport.remote_port}"
    )


def tcg_cache_mib(memory_mib: int) -> int:
    """TCG's translation cache for a guest of ``memory_mib``. The tiny VM runs little code: 16 MiB keeps
    QEMU's own memory small. A full distribution retranslates constantly in that: measured on the Debian
    disk, boot to its login prompt takes 40.5 s with 16 MiB, 24.1 s with 64 (74 MiB more RSS), 21.1 s with
    256."""
    return 16 if memory_mib <= 256 else 64


def qemu_command(spec: VmSpec, binary: str = "qemu-system-x86_64") -> list[str]:
    """The full argv of one endpoint's QEMU."""
    if len(spec.nics) > MAX_DATA_NICS:
        raise QemuSpecError(f"{len(spec.nics)} data interfaces; a VM can have at most {MAX_DATA_NICS}")
    if spec.memory_mib < 16 or spec.cpus < 1:
        raise QemuSpecError(f"{spec.memory_mib} MiB and {spec.cpus} cpus cannot run a VM")
    accel = "kvm" if spec.accel == "kvm" else f"tcg,tb-size={tcg_cache_mib(spec.memory_mib)}"
    argv = [binary, "-name", spec.name, "-nodefaults", "-no-user-config", "-display", "none", "-machine", "pc"]
    argv += ["-accel", accel, "-m", str(spec.memory_mib), "-smp", str(spec.cpus)]
    if spec.accel == "kvm":
        argv += ["-cpu", "host"]
    argv += ["-serial", f"file:{spec.console}" if spec.console else "stdio", "-no-reboot"]
    if isinstance(spec.boot, KernelBoot):
        argv += ["-kernel", spec.boot.kernel, "-initrd", spec.boot.initrd]
        argv += ["-append", f"console=ttyS0 quiet panic=-1 {spec.boot.append}".strip()]
    else:
        argv += ["-drive", f"file={spec.boot.disk},format=qcow2,if=virtio,cache=unsafe"]
    forwards = ",".join(
        f"hostfwd=tcp:{spec.forward_address}:{host}-:{guest}" for guest, host in sorted(spec.forwards.items())
    )
    # A command per connection (a tcp: chardev would be one connection, made when QEMU starts).
    forwards += "".join(
        f",guestfwd=tcp:{address}:{port}-cmd:{GUEST_FORWARD_RELAY} - TCP:127.0.0.1:{host}"
        for (address, port), host in sorted(spec.guest_forwards.items())
    )
    argv += ["-netdev", "user,id=mgmt,restrict=on" + (f",{forwards.lstrip(',')}" if forwards else "")]
    argv += ["-device", f"virtio-net-pci,netdev=mgmt,addr={MANAGEMENT_SLOT:#x}"]
    for index, nic in enumerate(spec.nics):
        argv += ["-netdev", _netdev(index, nic.transport)]
        argv += ["-device", f"virtio-net-pci,netdev=link{index},mac={nic.mac},addr={FIRST_DATA_SLOT + index:#x}"]
    # Entropy from the host: without it the guest's sshd waits (about 1 s under TCG) for the kernel to
    # gather its own.
    argv += ["-device", f"virtio-rng-pci,addr={RNG_SLOT:#x}"]
    for name, path in sorted(spec.fw_cfg.items()):
        argv += ["-fw_cfg", f"name={name},file={path}"]
    if spec.vmgenid:
        argv += ["-device", "vmgenid,guid=auto"]
    if spec.qmp:
        argv += ["-qmp", f"unix:{spec.qmp},server=on,wait=off"]
    if spec.incoming:
        argv += ["-incoming", spec.incoming]
    if spec.share is not None:
        share = spec.share
        argv += ["-fsdev", f"local,id=share,path={share.path},security_model=none,readonly=on"]
        argv += ["-device", f"virtio-9p-pci,fsdev=share,mount_tag={share.tag},addr={SHARE_SLOT:#x}"]
    return argv
