"""End to end on the local runtime, through the REST API of a real `syringe serve` with no cluster:
real QEMU VMs, real SSH, NETCONF and HTTP inside them."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncssh
import httpx
import pytest
import websockets

from syringe.qemu.command import mac_address
from syringe.runtime.local.tinylinux import TinyLinux
from tests.local.conftest import local_env, qemu_processes, serve_locally

INSTANCE = f"lt{os.getpid() % 100000}"


@pytest.fixture(scope="module")
def served(tiny_linux: TinyLinux, example_curriculum: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    server = serve_locally(local_env(INSTANCE, example_curriculum), log)
    try:
        yield server.start()
    finally:
        output = server.stop()
        assert "Traceback" not in output, output[-4000:]
        assert "VM restored in" in output and "warm boot failed" not in output  # warm boots, by default
        assert qemu_processes(f"syringe.{INSTANCE}-") == [], "syringe serve stopped, but VMs remain"


async def launch(http: httpx.AsyncClient, lesson: str, until: tuple[str, ...] = ("READY", "ERROR")) -> tuple[
    dict[str, Any], list[str]
]:  # fmt: skip
    created = await http.post("/api/v1/livelessons", json={"lesson": lesson})
    assert created.status_code == 202, created.text
    livelesson = created.json()["id"]
    seen: list[str] = []
    for _ in range(1200):
        view = (await http.get(f"/api/v1/livelessons/{livelesson}")).json()
        if not seen or seen[-1] != view["status"]:
            seen.append(view["status"])
        if view["status"] in until:
            return view, seen
        await asyncio.sleep(0.1)
    raise AssertionError(f"{lesson} did not reach {until}: {seen}")


def external(view: dict[str, Any], endpoint: str, presentation: str) -> tuple[str, int]:
    found = next(e for e in view["endpoints"] if e["name"] == endpoint)
    access = next(p for p in found["presentations"] if p["name"] == presentation)["access"]["external"]
    return access["host"], access["port"]


async def run(host: str, port: int, command: str, user: str = "antidote") -> asyncssh.SSHCompletedProcess:
    async with asyncssh.connect(
        host, port, username=user, password="antidotepassword", known_hosts=None, client_keys=None
    ) as connection:
        return await connection.run(command, timeout=30)


async def wait_gone(http: httpx.AsyncClient, livelesson: str) -> None:
    for _ in range(300):
        if (await http.get(f"/api/v1/livelessons/{livelesson}")).status_code == 404:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{livelesson} was not deleted")


async def test_two_hosts_boot_wire_and_go(http: httpx.AsyncClient, served: str) -> None:
    view, seen = await launch(http, "two-hosts")
    assert view["status"] == "READY", view["error"]
    assert "BOOTING" in seen and seen[-1] == "READY", seen
    livelesson = view["id"]
    assert qemu_processes(f"syringe.{INSTANCE}-{livelesson}.") != []

    host, port = external(view, "linux1", "cli")
    assert host == "127.0.0.1"
    shown = await run(host, port, "hostname; ip addr show dev net1; cat /antidote/stage0/guide.md")
    assert shown.exit_status == 0, shown.stderr
    assert str(shown.stdout).startswith("linux1\n")
    assert "inet 10.12.0.1/24" in str(shown.stdout)  # the planned address of the connection's a side
    assert "# Two hosts and a link" in str(shown.stdout)  # the lesson share, read-only at /antidote
    pinged = await run(host, port, "ping -c 2 -W 2 10.12.0.2")
    assert pinged.exit_status == 0, pinged.stdout
    assert "2 received, 0% packet loss" in str(pinged.stdout)
    written = await run(host, port, "touch /antidote/x")
    assert written.exit_status != 0  # read-only

    # Both VMs were restored from one saved template (a warm boot), yet each is its own: its NIC has its
    # own MAC, and its kernel reseeded its random generator when it found itself restored (vmgenid).
    seen = []
    for endpoint in ("linux1", "linux2"):
        where = external(view, endpoint, "cli")
        own = await run(*where, "dmesg | grep -c 'reseeded due to virtual machine fork'; "
                        "cat /proc/sys/kernel/random/uuid; cat /sys/class/net/net1/address", user="root")  # fmt: skip
        forks, uuid, mac = str(own.stdout).split()
        assert forks == "1", own.stdout
        assert mac == mac_address(f"{INSTANCE}-{livelesson}/{endpoint}", 1)
        seen.append(uuid)
    assert seen[0] != seen[1]

    # The same access paths as on a cluster: HTTP proxy, terminal, verification Jobs.
    page = await http.get(f"/api/v1/livelessons/{livelesson}/endpoints/linux2/http/web/cgi-bin/status")
    assert page.status_code == 200
    status = page.json()
    assert status["hostname"] == "linux2"
    assert {"name": "net1", "addresses": ["10.12.0.2/24"]} in status["interfaces"]

    token = http.headers["Authorization"].removeprefix("Bearer ")
    url = f"{served.replace('http', 'ws')}/api/v1/livelessons/{livelesson}/endpoints/linux1/terminal?presentation=cli"
    async with websockets.connect(f"{url}&token={token}") as terminal:
        await terminal.send(b"ip addr; exit\n")
        output = b""
        with pytest.raises(websockets.ConnectionClosed):
            while True:
                frame = await asyncio.wait_for(terminal.recv(), 20)
                output += frame if isinstance(frame, bytes) else frame.encode()
    assert b"10.12.0.1/24" in output

    assert (await http.post(f"/api/v1/livelessons/{livelesson}/verify")).status_code == 202
    for _ in range(300):
        verification = (await http.get(f"/api/v1/livelessons/{livelesson}")).json()["verification"]
        if verification and verification["status"] == "done":
            break
        await asyncio.sleep(0.1)
    assert verification["results"][0]["passed"], verification

    assert (await http.delete(f"/api/v1/livelessons/{livelesson}")).status_code == 202
    await wait_gone(http, livelesson)
    assert qemu_processes(f"syringe.{INSTANCE}-{livelesson}.") == []
    assert not await asyncio.to_thread(os.path.exists, f"/tmp/syringe-test-local/{INSTANCE}/{INSTANCE}-{livelesson}")


async def test_netconf_configuration_and_rpc_on_local_vms(http: httpx.AsyncClient) -> None:
    view, _ = await launch(http, "netconf-basics")
    assert view["status"] == "READY", view["error"]
    livelesson = view["id"]
    reply = await http.post(
        f"/api/v1/livelessons/{livelesson}/endpoints/vr1/netconf/netconf/rpc",
        content="<get-config><source><running/></source></get-config>",
        headers={"Content-Type": "application/xml"},
    )
    assert reply.status_code == 200, reply.text
    assert "<hostname>vr1</hostname>" in reply.text  # the stage's configuration Job put it there
    assert "stage 0: link to vr2" in reply.text

    moved = await http.put(f"/api/v1/livelessons/{livelesson}/stage", json={"stage": 1})
    assert moved.status_code == 202
    for _ in range(600):
        view = (await http.get(f"/api/v1/livelessons/{livelesson}")).json()
        if view["status"] == "READY" and view["stage"] == 1:
            break
        await asyncio.sleep(0.1)
    reply = await http.post(
        f"/api/v1/livelessons/{livelesson}/endpoints/vr1/netconf/netconf/rpc",
        content="<get-config><source><running/></source></get-config>",
        headers={"Content-Type": "application/xml"},
    )
    assert "stage 0" not in reply.text and "<hostname>vr1</hostname>" in reply.text
    assert (await http.delete(f"/api/v1/livelessons/{livelesson}")).status_code == 202
    await wait_gone(http, livelesson)
    assert qemu_processes(f"syringe.{INSTANCE}-{livelesson}.") == []


async def test_guest_http_status_is_json_of_the_endpoint(http: httpx.AsyncClient) -> None:
    view, _ = await launch(http, "linux-basics")
    assert view["status"] == "READY", view["error"]
    host, port = external(view, "linux1", "cli")
    listed = await run(host, port, "wget -qO- http://127.0.0.1/cgi-bin/status")
    assert json.loads(str(listed.stdout))["hostname"] == "linux1"
    await http.delete(f"/api/v1/livelessons/{view['id']}")
    await wait_gone(http, view["id"])


async def test_static_routing_teaches_routes_and_forwarding(http: httpx.AsyncClient) -> None:
    """The three-router example lesson, proven by what it teaches: at stage 0 r1 reaches its neighbour but
    not r3; stage 1's configurators (Python, in the sandbox, over SSH into the VMs) add the routes and turn on
    forwarding in r2, and r1 then reaches r3 one hop away."""
    view, _ = await launch(http, "static-routing")
    assert view["status"] == "READY", view["error"]
    livelesson = view["id"]
    host, port = external(view, "r1", "cli")
    assert " 0% packet loss" in str((await run(host, port, "ping -c 1 -W 2 10.31.12.2")).stdout)
    assert (await run(host, port, "ping -c 1 -W 1 10.31.23.2")).exit_status != 0  # no route yet

    moved = await http.put(f"/api/v1/livelessons/{livelesson}/stage", json={"stage": 1})
    assert moved.status_code == 202, moved.text
    for _ in range(1200):
        view = (await http.get(f"/api/v1/livelessons/{livelesson}")).json()
        if view["status"] in ("READY", "ERROR") and view["stage"] == 1:
            break
        await asyncio.sleep(0.1)
    assert view["status"] == "READY" and view["stage"] == 1, view
    assert "10.31.23.0/24 via 10.31.12.2" in str((await run(host, port, "ip route")).stdout)
    ping = str((await run(host, port, "ping -c 2 -W 2 10.31.23.2")).stdout)
    assert " 0% packet loss" in ping and "ttl=63" in ping, ping  # one router between

    assert (await http.delete(f"/api/v1/livelessons/{livelesson}")).status_code == 202
    await wait_gone(http, livelesson)
    assert qemu_processes(f"syringe.{INSTANCE}-{livelesson}.") == []
