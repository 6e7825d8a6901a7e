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


async def change_stage(http: httpx.AsyncClient, livelesson: str, stage: int) -> dict[str, Any]:
    """Ask for ``stage`` and wait until the live lesson is READY (or ERROR) at it: its view."""
    moved = await http.put(f"/api/v1/livelessons/{livelesson}/stage", json={"stage": stage})
    assert moved.status_code == 202, moved.text
    view: dict[str, Any] = {}
    for _ in range(1200):
        view = (await http.get(f"/api/v1/livelessons/{livelesson}")).json()
        if view["status"] in ("READY", "ERROR") and view["stage"] == stage:
            break
        await asyncio.sleep(0.1)
    assert view["status"] == "READY" and view["stage"] == stage, view
    return view


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

    view = await change_stage(http, livelesson, 1)
    reply = await http.post(
        f"/api/v1/livelessons/{livelesson}/endpoints/vr1/netconf/netconf/rpc",
        content="<get-config><source><running/></source></get-config>",
        headers={"Content-Type": "application/xml"},
    )
    assert "stage 0" not in reply.text and "<hostname>vr1</hostname>" in reply.text
    assert "stage 1: link to vr2" in reply.text

    async def rpc(body: str) -> str:
        answered = await http.post(
            f"/api/v1/livelessons/{livelesson}/endpoints/vr1/netconf/netconf/rpc",
            content=body,
            headers={"Content-Type": "application/xml"},
        )
        assert answered.status_code == 200, answered.text
        return answered.text

    # The learner's own edit merges into what the stage set (RFC 6241 merge), and the next stage's edit
    # merges into that: nothing either set is lost, and the entry is changed by its key, not doubled.
    learner = (
        '<edit-config><target><running/></target><config xmlns="urn:ietf:params:xml:ns:netconf:base:1.0">'
        '<system xmlns="urn:ietf:params:xml:ns:yang:ietf-system"><location>lab rack 4</location></system>'
        '<interfaces xmlns="urn:ietf:params:xml:ns:yang:ietf-interfaces"><interface><name>eth1</name>'
        "<mtu>1400</mtu></interface></interfaces></config></edit-config>"
    )
    assert "<ok" in await rpc(learner)
    view = await change_stage(http, livelesson, 2)
    merged = await rpc("<get-config><source><running/></source></get-config>")
    assert "stage 2: link to vr2" in merged and "stage 1" not in merged, merged
    assert "<location>lab rack 4</location>" in merged and "<mtu>1400</mtu>" in merged, merged
    assert merged.count("<name>eth1</name>") == 1, merged
    # delete needs the element; remove does not; a subtree filter picks one entry.
    delete = learner.replace("<mtu>1400</mtu>", '<mtu xmlns:nc="urn:ietf:params:xml:ns:netconf:base:1.0" '
                             'nc:operation="delete"/>')  # fmt: skip
    assert "<ok" in await rpc(delete)
    again = await rpc(delete)
    assert "data-missing" in again and "<rpc-error>" in again, again
    assert "<mtu>" not in await rpc("<get-config><source><running/></source></get-config>")
    # <get> adds the device's state, read from its kernel: the data link is up.
    state = await rpc(
        '<get><filter type="subtree"><interfaces-state xmlns="urn:ietf:params:xml:ns:yang:ietf-interfaces">'
        "<interface><name>eth1</name></interface></interfaces-state></filter></get>"
    )
    assert "<name>eth1</name>" in state and "<oper-status>up</oper-status>" in state, state
    assert "<name>eth0</name>" not in state and "<hostname>" not in state, state
    assert (await http.delete(f"/api/v1/livelessons/{livelesson}")).status_code == 202
    await wait_gone(http, livelesson)
    assert qemu_processes(f"syringe.{INSTANCE}-{livelesson}.") == []


async def test_rest_api_basics_serves_the_stages_devices(http: httpx.AsyncClient) -> None:
    """The api-server's inventory service runs in the VM (inventory flavour); each stage's configurator
    loads its devices through the service's own REST API, which the learner reaches through Syringe."""
    view, _ = await launch(http, "rest-api-basics")
    assert view["status"] == "READY", view["error"]
    livelesson = view["id"]
    host, port = external(view, "inventory", "web")
    async with httpx.AsyncClient(base_url=f"http://{host}:{port}", timeout=10) as inventory:
        devices = (await inventory.get("/api/devices")).json()
        assert devices == [{"name": f"r{i}", "stage": 0} for i in range(1, 4)]
        assert "<td>r3</td>" in (await inventory.get("/")).text
        assert (await inventory.get("/openapi.json")).json()["paths"]["/api/devices"]["put"]
        view = await change_stage(http, livelesson, 1)
        assert (await inventory.get("/api/devices")).json() == [{"name": f"r{i}", "stage": 1} for i in range(1, 5)]
        refused = await inventory.post("/api/devices", json={"name": "r1; rm -rf /"})
        assert refused.status_code == 400 and "name:" in refused.json()["error"]
    # The guide's first command, from the learner's shell in the utility VM: the inventory by its name (as
    # a pod reaches a Service), with curl and python3.
    ssh_host, ssh_port = external(view, "linux1", "cli")
    guide = await run(ssh_host, ssh_port, "curl -s http://inventory:8080/api/devices | python3 -m json.tool")
    assert guide.exit_status == 0 and '"name": "r4"' in str(guide.stdout), (guide.stdout, guide.stderr)
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

    view = await change_stage(http, livelesson, 1)
    assert "10.31.23.0/24 via 10.31.12.2" in str((await run(host, port, "ip route")).stdout)
    ping = str((await run(host, port, "ping -c 2 -W 2 10.31.23.2")).stdout)
    assert " 0% packet loss" in ping and "ttl=63" in ping, ping  # one router between

    assert (await http.delete(f"/api/v1/livelessons/{livelesson}")).status_code == 202
    await wait_gone(http, livelesson)
    assert qemu_processes(f"syringe.{INSTANCE}-{livelesson}.") == []


async def test_routing_triangle_runs_ospf_in_frr(http: httpx.AsyncClient) -> None:
    """FRRouting in each router (the frr flavour), configured through vtysh by the lesson's configurators:
    at stage 1 every router has both OSPF neighbours Full and has learned the link it is not on, and r1
    reaches r3's far side (on the r2-r3 link) by OSPF's route. The learner's shell has vtysh."""
    view, _ = await launch(http, "routing-triangle")
    assert view["status"] == "READY", view["error"]
    livelesson = view["id"]
    r1_host, r1_port = external(view, "r1", "cli")
    assert (await run(r1_host, r1_port, "ping -c 1 -W 1 10.23.0.2")).exit_status != 0  # no OSPF yet
    assert "ospfd" in str((await run(r1_host, r1_port, "vtysh -c 'show daemons'")).stdout)
    view = await change_stage(http, livelesson, 1)
    links = {"r1": "10.23.0.0/24", "r2": "10.31.0.0/24", "r3": "10.12.0.0/24"}  # the link each is not on
    for router, far in links.items():
        host, port = external(view, router, "cli")
        full = routes = ""
        for _ in range(90):  # adjacencies take OSPF's hellos to form, and routes its SPF run after them
            full = str((await run(host, port, "vtysh -c 'show ip ospf neighbor'")).stdout)
            routes = str((await run(host, port, "vtysh -c 'show ip route ospf'")).stdout)
            if full.count("Full/") == 2 and f"O>* {far}" in routes:
                break
            await asyncio.sleep(1)
        assert full.count("Full/") == 2, (router, full)
        assert f"O>* {far}" in routes, (router, routes)
    r1_host, r1_port = external(view, "r1", "cli")
    r3_far = "10.23.0.2"  # r3's address on the r2-r3 link (the plan's: b of r2-r3 takes .2)
    route = str((await run(r1_host, r1_port, f"ip route get {r3_far}")).stdout)
    assert "via" in route, route  # learned from OSPF, not connected
    ping = str((await run(r1_host, r1_port, f"ping -c 2 -W 2 {r3_far}")).stdout)
    assert " 0% packet loss" in ping, ping
    assert (await http.delete(f"/api/v1/livelessons/{livelesson}")).status_code == 202
    await wait_gone(http, livelesson)
    assert qemu_processes(f"syringe.{INSTANCE}-{livelesson}.") == []
