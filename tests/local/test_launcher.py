"""`syringe launch` for real, as root, in network namespaces the test creates: tc stitching, a tiny VM
booted behind stitched links, a ping between two "pods", restart of a crashed QEMU, SIGTERM, bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from syringe.plan.podenv import READY_MARKER
from syringe.qemu.command import mac_address
from syringe.runtime.local.tinylinux import TinyLinux
from tests.integration.helpers import REPO
from tests.local.conftest import qemu_processes

SUFFIX = f"{os.getpid() % 100000}"
PYTHON = sys.executable


def sh(*command: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if check and done.returncode != 0:
        raise AssertionError(f"{' '.join(command)}: {done.stderr}")
    return done


def in_netns(namespace: str, code: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run Python code inside a network namespace (the project's interpreter, the repo on the path)."""
    return subprocess.run(
        ["ip", "netns", "exec", namespace, PYTHON, "-c", textwrap.dedent(code)],
        capture_output=True, text=True, timeout=timeout, cwd=REPO, check=False,
    )  # fmt: skip


@pytest.fixture
def pods() -> Iterator[tuple[str, str]]:
    """Two network namespaces wired eth1<->eth1 by a veth pair, as a cluster's bridge would wire two pods."""
    if os.geteuid() != 0:
        pytest.fail("the launcher tests create network namespaces: run them as root")
    a, b = f"sya{SUFFIX}", f"syb{SUFFIX}"
    for namespace in (a, b):
        sh("ip", "netns", "add", namespace)
        sh("ip", "-n", namespace, "link", "set", "lo", "up")
    sh("ip", "link", "add", f"sva{SUFFIX}", "netns", a, "type", "veth", "peer", "name", f"svb{SUFFIX}", "netns", b)
    sh("ip", "-n", a, "link", "set", f"sva{SUFFIX}", "name", "eth1")
    sh("ip", "-n", b, "link", "set", f"svb{SUFFIX}", "name", "eth1")
    try:
        yield a, b
    finally:
        for namespace in (a, b):
            sh("ip", "netns", "del", namespace, check=False)


STP_SENDER = """
    import socket
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind(("eth1", 0))
    # An STP configuration BPDU: the link-local group address a Linux bridge would keep for itself.
    s.send(bytes.fromhex("0180c2000000" "020000000001" "0026" "424203" + "00" * 35))
"""

TAP_READER = """
    import fcntl, os, select, struct, sys
    fd = os.open("/dev/net/tun", os.O_RDWR)
    fcntl.ioctl(fd, 0x400454CA, struct.pack("16sH", b"tap1", 0x0002 | 0x1000))  # TUNSETIFF: IFF_TAP|IFF_NO_PI
    print("open", flush=True)
    deadline_frames = []
    while select.select([fd], [], [], 5)[0]:
        frame = os.read(fd, 2048)
        if frame[:6] == bytes.fromhex("0180c2000000"):
            print("stp", frame[12:14].hex())
            # and back out through the stitch: the VM's answer reaches the wire
            os.write(fd, bytes.fromhex("0180c2000002" "020000000002" "8809") + b"\\x01" * 46)
            sys.exit(0)
    sys.exit(1)
"""

WIRE_READER = """
    import select, socket, sys
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
    s.bind(("eth1", 0))
    print("open", flush=True)
    while select.select([s], [], [], 8)[0]:
        frame = s.recv(2048)
        if frame[12:14] == bytes.fromhex("8809"):  # slow protocols: LACP
            print("lacp")
            sys.exit(0)
    sys.exit(1)
"""


def test_stitching_passes_stp_in_and_lacp_out_with_no_bridge(pods: tuple[str, str]) -> None:
    pod, wire = pods
    stitched = in_netns(pod, "from syringe.launcher.stitch import stitch; stitch('eth1', 'tap1')")
    assert stitched.returncode == 0, stitched.stderr
    again = in_netns(pod, "from syringe.launcher.stitch import stitch; stitch('eth1', 'tap1')")
    assert again.returncode == 0, again.stderr  # idempotent
    filters = sh("ip", "netns", "exec", pod, "tc", "filter", "show", "dev", "eth1", "ingress").stdout
    assert filters.count("Egress Redirect to device tap1") == 1, filters
    sh("ip", "-n", wire, "link", "set", "eth1", "up")

    listen_wire = subprocess.Popen(
        ["ip", "netns", "exec", wire, PYTHON, "-c", textwrap.dedent(WIRE_READER)], stdout=subprocess.PIPE, text=True
    )
    tap = subprocess.Popen(
        ["ip", "netns", "exec", pod, PYTHON, "-c", textwrap.dedent(TAP_READER)], stdout=subprocess.PIPE, text=True
    )
    assert tap.stdout is not None and listen_wire.stdout is not None
    assert tap.stdout.readline().strip() == "open" and listen_wire.stdout.readline().strip() == "open"
    for _ in range(3):
        sent = in_netns(wire, STP_SENDER)
        assert sent.returncode == 0, sent.stderr
        time.sleep(0.2)
    assert tap.wait(10) == 0, "the STP frame did not reach the tap"
    assert "stp" in tap.stdout.read()
    assert listen_wire.wait(10) == 0, "the LACP frame from the tap did not reach the wire"


def _launch_env(tiny: TinyLinux, tmp: Path, name: str, address: str, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "SYRINGE_ENDPOINT": name,
        "SYRINGE_VM_KERNEL": str(tiny.kernel),
        "SYRINGE_VM_INITRD": str(tiny.initrd),
        "SYRINGE_VM_MEMORY_MIB": "128",
        "SYRINGE_VM_INTERFACES": "1",
        "SYRINGE_VM_ADDRESSES": address,
        "SYRINGE_VM_USER": "antidote",
        "SYRINGE_VM_PASSWORD": "antidotepassword",
        "SYRINGE_VM_STATE_DIR": str(tmp / name),
        "SYRINGE_VM_HEALTH_FILE": str(tmp / name / "health"),
        "SYRINGE_LESSON_DIR": str(tmp / "lesson"),
        "SYRINGE_VM_INTERFACE_TIMEOUT": "20",
        **extra,
    }


def _launch(namespace: str, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            ["ip", "netns", "exec", namespace, PYTHON, "-m", "syringe.cli", "launch"],
            env=env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip


def _wait_ready(env: dict[str, str], launcher: subprocess.Popen[bytes], log: Path, restarts: int = 0) -> None:
    for _ in range(600):
        assert launcher.poll() is None, log.read_text()
        health = subprocess.run(
            [PYTHON, "-m", "syringe.cli", "launch", "--health"], env=env, cwd=REPO, capture_output=True, check=False
        )
        state = Path(env["SYRINGE_VM_HEALTH_FILE"])
        if health.returncode == 0 and json.loads(state.read_text())["restarts"] >= restarts:
            # The pod's readiness probe tests for the marker the launcher keeps while the VM is ready.
            assert state.with_name(READY_MARKER).exists()
            return
        time.sleep(0.1)
    raise AssertionError(f"the VM did not become ready: {log.read_text()[-2000:]}")


SSH = """
    import asyncio, asyncssh, sys
    async def main():
        async with asyncssh.connect("127.0.0.1", 22, username="antidote", password="antidotepassword",
                                    known_hosts=None, client_keys=None) as c:
            r = await c.run(sys.argv[1], timeout=30)
            print(r.stdout, end="")
            sys.exit(r.exit_status)
    asyncio.run(main())
"""


def _ssh(namespace: str, command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["ip", "netns", "exec", namespace, PYTHON, "-c", textwrap.dedent(SSH), command],
        capture_output=True, text=True, timeout=60, cwd=REPO, check=False,
    )  # fmt: skip


def test_two_wrapped_vms_ping_through_stitched_links(
    pods: tuple[str, str], tiny_linux: TinyLinux, tmp_path: Path
) -> None:
    (tmp_path / "lesson").mkdir()
    (tmp_path / "lesson" / "hello.txt").write_text("from the lesson\n")
    a, b = pods
    env_a = _launch_env(tiny_linux, tmp_path, f"r1x{SUFFIX}", "10.50.0.1/24")
    env_b = _launch_env(tiny_linux, tmp_path, f"r2x{SUFFIX}", "10.50.0.2/24")
    launcher_a = _launch(a, env_a, tmp_path / "a.log")
    launcher_b = _launch(b, env_b, tmp_path / "b.log")
    try:
        _wait_ready(env_a, launcher_a, tmp_path / "a.log")
        _wait_ready(env_b, launcher_b, tmp_path / "b.log")
        shown = _ssh(a, "ip addr show dev eth1; cat /antidote/hello.txt; ping -c 2 -W 3 10.50.0.2")
        assert shown.returncode == 0, shown.stdout + shown.stderr
        assert mac_address(f"r1x{SUFFIX}", 1) in shown.stdout  # the NIC the launcher gave the VM
        assert "inet 10.50.0.1/24" in shown.stdout
        assert "from the lesson" in shown.stdout
        assert "2 received" in shown.stdout

        # A crashed QEMU comes back, and the pod is not ready while it is down.
        [qemu] = qemu_processes(f"syringe-wrapper.r1x{SUFFIX}")
        os.kill(qemu, signal.SIGKILL)
        _wait_ready(env_a, launcher_a, tmp_path / "a.log", restarts=1)
        assert _ssh(a, "ping -c 1 -W 3 10.50.0.2").returncode == 0

        launcher_a.send_signal(signal.SIGTERM)
        assert launcher_a.wait(20) == 0, (tmp_path / "a.log").read_text()
        assert qemu_processes(f"syringe-wrapper.r1x{SUFFIX}") == []
        assert "tap1" not in sh("ip", "-n", a, "link").stdout
        assert json.loads(Path(env_a["SYRINGE_VM_HEALTH_FILE"]).read_text())["state"] == "stopped"
    finally:
        for launcher in (launcher_a, launcher_b):
            if launcher.poll() is None:
                launcher.kill()
                launcher.wait()


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({"SYRINGE_VM_KERNEL": "", "SYRINGE_VM_DISK": "/images/no.qcow2"}, "SYRINGE_VM_DISK: /images/no.qcow2 does"),
        ({"SYRINGE_VM_INTERFACES": "29"}, "SYRINGE_VM_INTERFACES=29 is outside 0..27"),
        ({"SYRINGE_VM_INTERFACES": "2", "SYRINGE_VM_INTERFACE_TIMEOUT": "1"}, "the pod has no eth2 after 1s"),
    ],
)  # fmt: skip
def test_bad_input_ends_the_launcher_with_a_clear_line_and_no_vm(
    pods: tuple[str, str], tiny_linux: TinyLinux, tmp_path: Path, extra: dict[str, str], expected: str
) -> None:
    name = f"bad{SUFFIX}"
    env = _launch_env(tiny_linux, tmp_path, name, "10.50.0.1/24", **extra)
    launcher = _launch(pods[0], env, tmp_path / "bad.log")
    assert launcher.wait(30) == 2
    output = (tmp_path / "bad.log").read_text()
    assert expected in output and "Traceback" not in output, output
    assert qemu_processes(f"syringe-wrapper.{name}") == []
