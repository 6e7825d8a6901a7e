"""The QEMU command line and the wrapper launcher's settings: pure code."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from syringe.curriculum import load_curriculum
from syringe.curriculum.files import read_lesson_files
from syringe.errors import QemuSpecError
from syringe.launcher.main import ENVIRONMENT, LaunchConfig, LaunchError, vm_spec
from syringe.plan import LiveLessonIdentity, PlanSettings, build_plan, podenv
from syringe.qemu.command import (
    IDENTITY,
    MAX_DATA_NICS,
    TINY_KERNEL_PARAMETERS,
    DataNic,
    DiskBoot,
    KernelBoot,
    Share,
    TapLink,
    UdpLink,
    VmSpec,
    guest_parameters,
    mac_address,
    qemu_command,
)
from tests.corpus import write_curriculum


def _value(argv: list[str], flag: str) -> list[str]:
    return [argv[i + 1] for i, word in enumerate(argv) if word == flag]


def _spec(**overrides: object) -> VmSpec:
    fields: dict[str, object] = {
        "name": "syringe.x-1.r1@1",
        "memory_mib": 128,
        "cpus": 1,
        "boot": KernelBoot("/k", "/i", "syringe.host=r1"),
        "forwards": {22: 40022, 830: 40830},
        "nics": (
            DataNic("eth1", mac_address("r1", 1), UdpLink(41000, 41001), "10.0.0.1/24"),
            DataNic("eth2", mac_address("r1", 2), TapLink("tap2")),
        ),
        "share": Share("/lesson", "lesson"),
        "console": "/tmp/c",
    }
    fields.update(overrides)
    return VmSpec(**fields)  # type: ignore[arg-type]


def test_nics_sit_at_pinned_pci_slots_in_order() -> None:
    devices = _value(qemu_command(_spec()), "-device")
    assert devices[0] == "virtio-net-pci,netdev=mgmt,addr=0x3"
    assert devices[1] == f"virtio-net-pci,netdev=link0,mac={mac_address('r1', 1)},addr=0x4"
    assert devices[2] == f"virtio-net-pci,netdev=link1,mac={mac_address('r1', 2)},addr=0x5"
    assert devices[3] == "virtio-rng-pci,addr=0x1f"
    assert devices[4] == "virtio-9p-pci,fsdev=share,mount_tag=lesson,addr=0x2"


def test_links_are_udp_datagrams_or_taps_and_management_forwards_ports() -> None:
    netdevs = _value(qemu_command(_spec()), "-netdev")
    assert netdevs[0] == ("user,id=mgmt,restrict=on,hostfwd=tcp:127.0.0.1:40022-:22,hostfwd=tcp:127.0.0.1:40830-:830")
    assert "local.port=41000" in netdevs[1] and "remote.port=41001" in netdevs[1]
    assert netdevs[2] == "tap,id=link1,ifname=tap2,script=no,downscript=no"
    in_a_pod = _value(qemu_command(_spec(forwards={22: 22}, forward_address="")), "-netdev")[0]
    assert in_a_pod.endswith("hostfwd=tcp::22-:22")
    # The lesson's other endpoints, at their management-network addresses: one relay per connection.
    peers = _value(qemu_command(_spec(guest_forwards={("10.0.2.101", 8080): 40123})), "-netdev")[0]
    assert peers.endswith(",guestfwd=tcp:10.0.2.101:8080-cmd:socat - TCP:127.0.0.1:40123"), peers


def test_share_is_read_only_and_boot_is_kernel_or_overlay() -> None:
    argv = qemu_command(_spec())
    assert _value(argv, "-fsdev") == ["local,id=share,path=/lesson,security_model=none,readonly=on"]
    assert _value(argv, "-append") == ["console=ttyS0 quiet panic=-1 syringe.host=r1"]
    disk = qemu_command(_spec(boot=DiskBoot("/o.qcow2"), share=None))
    assert _value(disk, "-drive") == ["file=/o.qcow2,format=qcow2,if=virtio,cache=unsafe"]
    assert "-kernel" not in disk and "-fsdev" not in disk


def test_accelerator_choice_is_explicit() -> None:
    assert _value(qemu_command(_spec()), "-accel") == ["tcg,tb-size=16"]
    kvm = qemu_command(_spec(accel="kvm"))
    assert _value(kvm, "-accel") == ["kvm"] and _value(kvm, "-cpu") == ["host"]


def test_too_many_interfaces_and_too_little_memory_are_refused() -> None:
    nics = tuple(DataNic(f"eth{i}", mac_address("r", i), TapLink(f"tap{i}")) for i in range(MAX_DATA_NICS + 1))
    with pytest.raises(QemuSpecError, match=f"{MAX_DATA_NICS + 1} data interfaces; a VM can have at most"):
        qemu_command(_spec(nics=nics))
    with pytest.raises(QemuSpecError, match="8 MiB"):
        qemu_command(_spec(memory_mib=8))


def test_macs_are_stable_distinct_and_locally_administered() -> None:
    assert mac_address("ns/r1", 1) == mac_address("ns/r1", 1)
    assert len({mac_address("ns/r1", i) for i in range(1, 29)} | {mac_address("ns/r2", 1)}) == 29
    assert mac_address("x", 3).startswith("52:54:") and mac_address("x", 3).endswith(":03")


def test_guest_parameters_carry_names_addresses_and_an_encoded_password() -> None:
    nics = (DataNic("net1", "52:54:00:00:00:01", TapLink("tap1"), "10.1.0.1/24"),)
    words = guest_parameters("linux1", nics, "antidote", "pass word", forward=True).split()
    assert words == [
        *TINY_KERNEL_PARAMETERS.split(),
        "syringe.host=linux1",
        "syringe.user=antidote",
        "syringe.password=cGFzcyB3b3Jk",  # base64: a space cannot end the kernel parameter
        "syringe.nic=52:54:00:00:00:01,net1,10.1.0.1/24",
        "syringe.forward=1",
    ]
    with_peers = guest_parameters("r1", (), peers={"r2": "10.0.2.101", "inventory": "10.0.2.102"}).split()
    assert with_peers[-2:] == ["syringe.peer=inventory,10.0.2.102", "syringe.peer=r2,10.0.2.101"]


def test_launcher_settings_come_from_env_with_clear_errors() -> None:
    config = LaunchConfig.from_env(
        {"SYRINGE_VM_DISK": "/images/r.qcow2", "SYRINGE_VM_INTERFACES": "2", "SYRINGE_VM_PORTS": "8080,22"}
    )
    assert config.data_interfaces() == [("eth1", "tap1"), ("eth2", "tap2")]
    assert config.ports == (22, 830, 80, 443, 8080)
    spec = vm_spec(config, "/var/lib/syringe/overlay.qcow2")
    assert spec.forwards == {22: 22, 830: 830, 80: 80, 443: 443, 8080: 8080} and spec.forward_address == ""
    assert [nic.transport for nic in spec.nics] == [TapLink("tap1"), TapLink("tap2")]
    for env, message in (
        ({}, "set SYRINGE_VM_DISK"),
        ({"SYRINGE_VM_KERNEL": "/k"}, "SYRINGE_VM_KERNEL needs SYRINGE_VM_INITRD"),
        ({"SYRINGE_VM_DISK": "/d", "SYRINGE_VM_INTERFACES": "29"}, "SYRINGE_VM_INTERFACES=29 is outside 0..27"),
        ({"SYRINGE_VM_DISK": "/d", "SYRINGE_VM_MEMORY_MIB": "lots"}, "SYRINGE_VM_MEMORY_MIB='lots' is not a whole"),
        ({"SYRINGE_VM_DISK": "/d", "SYRINGE_VM_PORTS": "22,http"}, "SYRINGE_VM_PORTS: 'http' is not a port"),
        ({"SYRINGE_VM_DISK": "/d", "SYRINGE_VM_ACCEL": "hvf"}, "SYRINGE_VM_ACCEL='hvf'"),
    ):
        with pytest.raises(LaunchError, match=message):
            LaunchConfig.from_env(env)


def test_the_plans_vm_pod_env_is_what_the_launcher_reads(tmp_path: Path) -> None:
    tree = load_curriculum(write_curriculum(tmp_path))
    source = tree.lessons["triangle"]
    who = LiveLessonIdentity(id="ll1", session="s1", created_at=datetime(2026, 1, 1, tzinfo=UTC))
    plan = build_plan(source.lesson, tree.images, 0, who, PlanSettings(), read_lesson_files(source))
    pod = next(o for o in plan.objects if o["kind"] == "Pod" and o["metadata"]["name"] == "r1")
    env = {e["name"]: e["value"] for e in pod["spec"]["containers"][0]["env"]}
    assert set(env) - {podenv.TOPOLOGY} <= set(ENVIRONMENT)  # the topology file is for containers, not the launcher
    config = LaunchConfig.from_env(env)
    assert (config.endpoint, config.memory_mib, config.cpus, config.interfaces) == ("r1", 512, 1, 2)
    assert (config.disk, config.lesson_dir) == ("/images/router.qcow2", PlanSettings().lesson_mount_path)


def test_vm_ports_are_spelt_once_for_both_sides() -> None:
    assert podenv.format_vm_ports([8080, 2222]) == "8080,2222"
    assert podenv.parse_vm_ports(podenv.format_vm_ports([8080, 2222])) == [8080, 2222]
    assert podenv.parse_vm_ports("") == [] and podenv.parse_vm_ports("22,,80") == [22, 80]
    with pytest.raises(podenv.PortError, match="70000"):
        podenv.parse_vm_ports("22,70000")


def test_peer_addresses_stay_inside_the_management_network() -> None:
    from syringe.runtime.local.machines import peer_addresses

    addresses = peer_addresses([f"e{i}" for i in range(200)])
    assert len(addresses) == 155 and addresses["e0"] == "10.0.2.100" and addresses["e154"] == "10.0.2.254"


def test_a_disk_vm_gets_its_identity_from_the_plan_through_the_launcher(tmp_path: Path) -> None:
    """A disk boot carries the same identity as a kernel boot: the plan's addresses and the login from the
    credentials Secret (a key the Secret has), which the launcher hands over in the fw_cfg identity file."""
    root = write_curriculum(tmp_path)
    meta = root / "images" / "router" / "image.meta.yaml"
    meta.write_text(meta.read_text() + "sshUser: antidote\nsshPassword: antidotepassword\nenableForwarding: true\n")
    tree = load_curriculum(root)
    source = tree.lessons["triangle"]
    who = LiveLessonIdentity(id="ll1", session="s1", created_at=datetime(2026, 1, 1, tzinfo=UTC))
    plan = build_plan(source.lesson, tree.images, 0, who, PlanSettings(), read_lesson_files(source))
    pod = next(o for o in plan.objects if o["kind"] == "Pod" and o["metadata"]["name"] == "r1")
    env = {e["name"]: e for e in pod["spec"]["containers"][0]["env"]}
    secret = next(o for o in plan.objects if o["kind"] == "Secret" and o["metadata"]["name"] == "lesson-credentials")
    key = env[podenv.VM_PASSWORD]["valueFrom"]["secretKeyRef"]["key"]
    assert secret["stringData"][key] == "antidotepassword"
    values = {name: e.get("value", "antidotepassword") for name, e in env.items()}
    config = LaunchConfig.from_env(values)
    assert config.disk == "/images/router.qcow2" and len(config.addresses) == 2 and config.forward
    spec = vm_spec(config, str(tmp_path / "overlay.qcow2"))
    assert spec.fw_cfg == {IDENTITY: str(Path(config.state_dir) / "identity")}
    assert "-fw_cfg" in qemu_command(spec)


def test_a_full_guest_gets_a_bigger_translation_cache_than_the_tiny_vm() -> None:
    def accel(memory: int) -> str:
        spec = VmSpec(name="v", memory_mib=memory, cpus=1, boot=DiskBoot("/d.qcow2"), accel="tcg", forwards={})
        argv = qemu_command(spec)
        return argv[argv.index("-accel") + 1]

    assert accel(128) == "tcg,tb-size=16" and accel(256) == "tcg,tb-size=16"
    assert accel(512) == "tcg,tb-size=64"
