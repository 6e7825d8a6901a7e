"""What an endpoint pod's container is given: every variable the plan sets on an endpoint pod, and every variable
the QEMU wrapper's launcher (`syringe launch`, PID 1 of a `kind: vm` endpoint's pod) reads.

The plan writes them (plan/pods.py), the launcher reads them (launcher/main.py). This module is their one
home; the three an endpoint pod shares with configuration Jobs are defined in jobenv and named here. Pure:
names and how to spell a value both sides share, nothing else (the launcher imports it).
"""

from __future__ import annotations

from collections.abc import Iterable

from syringe.plan.jobenv import ENDPOINT, LESSON_DIR, TOPOLOGY

__all__ = [
    "ENDPOINT",
    "LESSON_DIR",
    "READY_MARKER",
    "TOPOLOGY",
    "VM_ACCEL",
    "VM_ADDRESSES",
    "VM_APPEND",
    "VM_BOOT_TIMEOUT",
    "VM_CPUS",
    "VM_DISK",
    "VM_FORWARD",
    "VM_HEALTH_FILE",
    "VM_INITRD",
    "VM_INTERFACES",
    "VM_INTERFACE_TIMEOUT",
    "VM_KERNEL",
    "VM_MEMORY_MIB",
    "VM_PASSWORD",
    "VM_PORTS",
    "VM_READY_LINE",
    "VM_STATE_DIR",
    "VM_USER",
    "PortError",
    "format_vm_ports",
    "parse_vm_ports",
]

# Every endpoint pod: ENDPOINT (its name), LESSON_DIR (where the lesson's files are mounted) and TOPOLOGY (the
# topology file in them), as jobenv spells them.

# A `kind: vm` endpoint's pod, from the image metafile's `vm:` and the endpoint.
VM_MEMORY_MIB = "SYRINGE_VM_MEMORY_MIB"
VM_CPUS = "SYRINGE_VM_CPUS"
VM_DISK = "SYRINGE_VM_DISK"  # the qcow2 image inside the wrapper image
VM_INTERFACES = "SYRINGE_VM_INTERFACES"  # how many data interfaces (eth1..N) the launcher waits for
VM_PORTS = "SYRINGE_VM_PORTS"  # ports to forward besides the launcher's defaults (format_vm_ports)

# What the guest prints on its serial console once it serves (a disk prepared by `syringe image prepare`):
# the launcher reports the VM ready, and the pod Ready, only after it. A kernel boot uses the tiny VM's line.
VM_READY_LINE = "SYRINGE_VM_READY_LINE"

# A kernel boot (the image's vm.kernel, vm.initrd, vm.append) instead of VM_DISK. The guest takes its identity
# from the kernel command line, as Syringe's tiny VM does: the hostname (ENDPOINT), an address per data NIC,
# the learner's login (VM_PASSWORD comes from the lesson's credentials Secret) and routing between its NICs.
# A disk boot gets the same identity in a fw_cfg file the launcher writes (qemu.command.IDENTITY).
VM_KERNEL = "SYRINGE_VM_KERNEL"
VM_INITRD = "SYRINGE_VM_INITRD"
VM_APPEND = "SYRINGE_VM_APPEND"
VM_ADDRESSES = "SYRINGE_VM_ADDRESSES"  # an address per data NIC, in order, comma-separated
VM_USER = "SYRINGE_VM_USER"
VM_PASSWORD = "SYRINGE_VM_PASSWORD"
VM_FORWARD = "SYRINGE_VM_FORWARD"  # "1": the guest routes between its data NICs (the image's enableForwarding)

# Read by the launcher, never set by the plan: the wrapper image, an operator or the launcher's tests set them.
VM_ACCEL = "SYRINGE_VM_ACCEL"
VM_STATE_DIR = "SYRINGE_VM_STATE_DIR"
VM_HEALTH_FILE = "SYRINGE_VM_HEALTH_FILE"
VM_INTERFACE_TIMEOUT = "SYRINGE_VM_INTERFACE_TIMEOUT"
VM_BOOT_TIMEOUT = "SYRINGE_VM_BOOT_TIMEOUT"


# The file the launcher keeps next to its health file while the VM is ready (and only then): the pod's
# readiness probe tests for it, which costs nothing, where `syringe launch --health` starts a Python.
READY_MARKER = "ready"


class PortError(ValueError):
    """A word of a VM_PORTS value that is not a port (1..65535); args[0] is the word."""


def format_vm_ports(ports: Iterable[int]) -> str:
    """The value of VM_PORTS: the ports, comma-separated, in order."""
    return ",".join(str(port) for port in ports)


def parse_vm_ports(value: str) -> list[int]:
    """A VM_PORTS value, back: the ports in order (empty words skipped). Raises PortError for the first word that is
    not a port."""
    ports = []
    for word in filter(None, value.split(",")):
        if not word.strip().isdigit() or not 1 <= int(word) <= 65535:
            raise PortError(word)
        ports.append(int(word))
    return ports
