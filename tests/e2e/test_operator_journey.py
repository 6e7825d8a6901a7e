"""The operator's journey on a real node, as one test: images built from the repository's Dockerfiles
(`scripts/images.sh import`), Syringe deployed with `kubectl apply -k manifests/overlays/dev` and running as
a pod under its own ServiceAccount, and a learner who, through Syringe's Service (kubectl port-forward):

- creates a session and launches static-routing: three endpoints and two connections, all QEMU wrapper pods
  booting the tiny VM under TCG;
- opens the terminal WebSocket to each VM and sees the planned address on each link's interface;
- pings across each link (the frames cross the NAD bridges between pods), and not yet from end to end;
- changes stage: the stage's configurators run as real Jobs in the configurator image, over SSH to the VMs,
  and the test reads the routes back and pings from r1 to r3 through r2;
- deletes the lesson, after which nothing of it is left on the node.

Then rest-api-basics in the example container images (utility, api-server), and the failures a real node
gives: an image that is not there (pull policy Never) reaches the live lesson's error within seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import websockets
from websockets.asyncio.client import ClientConnection

from syringe.plan import labels
from tests.e2e.conftest import REPO, Node, timing
from tests.e2e.test_node_pods import NodeState

OVERLAY = REPO / "manifests/overlays/dev"
SYRINGE_NAMESPACE = "syringe"


class PortForward:
    """`kubectl port-forward svc/syringe`: the learner's way in, through Syringe's Service."""

    def __init__(self, node: Node) -> None:
        command = ["kubectl", "--kubeconfig", node.kubeconfig, "-n", SYRINGE_NAMESPACE, "port-forward",
                   "--address", "127.0.0.1", "svc/syringe", ":80"]  # fmt: skip
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        found = re.search(r"127\.0\.0\.1:(\d+) ->", line)
        if not found:
            self.process.kill()
            problem = self.process.stderr.read() if self.process.stderr else ""
            raise AssertionError(f"kubectl port-forward said {line!r}: {problem}")
        self.url = f"http://127.0.0.1:{found.group(1)}"

    def close(self) -> None:
        self.process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(10)
        self.process.kill()


class Deployed:
    """Syringe as the learner reaches it: through its Service, again after its pod was replaced."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.forward = PortForward(node)

    @property
    def url(self) -> str:
        return self.forward.url

    def reconnect(self) -> None:
        self.forward.close()
        self.node.kubectl(
            "-n", SYRINGE_NAMESPACE, "rollout", "status", "deployment/syringe", "--timeout=240s", timeout=260
        )
        self.forward = PortForward(self.node)

    def close(self) -> None:
        self.forward.close()


@pytest.fixture(scope="module")
def deployed(node: Node, images: dict[str, str]) -> Iterator[Deployed]:
    """Syringe deployed from the dev overlay, Ready, reached through its Service."""
    started = time.monotonic()
    node.kubectl("apply", "-k", str(OVERLAY), timeout=120)
    try:
        node.kubectl("-n", SYRINGE_NAMESPACE, "rollout", "status", "deployment/syringe", "--timeout=240s", timeout=260)
        timing("kubectl apply -k manifests/overlays/dev -> Syringe Ready", time.monotonic() - started)
        syringe = Deployed(node)
        try:
            yield syringe
        finally:
            syringe.close()
    except AssertionError:
        print(node.kubectl("-n", SYRINGE_NAMESPACE, "describe", "pods", check=False))
        print(node.kubectl("-n", SYRINGE_NAMESPACE, "logs", "deployment/syringe", "--tail=80", check=False))
        raise
    finally:
        logs = node.kubectl("-n", SYRINGE_NAMESPACE, "logs", "deployment/syringe", "--tail=2000", check=False)
        logs += node.kubectl(
            "-n", SYRINGE_NAMESPACE, "logs", "deployment/syringe", "--previous", "--tail=2000", check=False
        )
        # Lessons a failed test left behind go with their instance (the dev overlay's is "syringe").
        node.kubectl("delete", "namespaces", "-l", f"{labels.INSTANCE}=syringe", "--wait=false", check=False)
        node.kubectl("delete", "-k", str(OVERLAY), "--wait=true", "--timeout=180s", timeout=200, check=False)
        assert "Traceback" not in logs, logs[-4000:]


async def _session(http: httpx.AsyncClient) -> dict[str, str]:
    answer = await http.post("/api/v1/sessions")
    assert answer.status_code in (200, 201), answer.text
    return {"Authorization": f"Bearer {answer.json()['token']}"}


async def _until(http: httpx.AsyncClient, auth: dict[str, str], livelesson: str, statuses: set[str],
                 timeout: float) -> dict[str, Any]:  # fmt: skip
    deadline = time.monotonic() + timeout
    view: dict[str, Any] = {}
    while time.monotonic() < deadline:
        view = (await http.get(f"/api/v1/livelessons/{livelesson}", headers=auth)).json()
        if view.get("status") in statuses:
            return view
        await asyncio.sleep(0.5)
    raise AssertionError(f"live lesson {livelesson} not {statuses} within {timeout:g}s: {view}")


class Terminal:
    """A learner's terminal WebSocket to one endpoint's SSH presentation, driven like a person would."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws

    @classmethod
    @contextlib.asynccontextmanager
    async def open(cls, base: str, view: dict[str, Any], endpoint: str, token: str) -> AsyncIterator[Terminal]:
        presentation = next(
            p for e in view["endpoints"] if e["name"] == endpoint for p in e["presentations"] if p["type"] == "ssh"
        )
        url = base.replace("http://", "ws://") + presentation["access"]["terminalUrl"] + f"&token={token}"
        async with websockets.connect(url, max_size=None) as ws:
            terminal = cls(ws)
            yield terminal

    async def _read_until(self, pattern: str, timeout: float = 30) -> str:
        seen = ""
        async with asyncio.timeout(timeout):
            while not re.search(pattern, seen):
                message = await self.ws.recv()
                seen += message.decode(errors="replace") if isinstance(message, bytes) else message
        return seen

    async def run(self, command: str, timeout: float = 30) -> str:
        """The command's output (between the echoed command line and the next prompt)."""
        marker = f"done-{time.monotonic_ns()}"
        await self.ws.send(f"{command}; echo {marker}\n".encode())
        out = await self._read_until(rf"\n{marker}\r?\n", timeout)
        # What follows the (last) echo of the command line, up to the marker the shell printed after it: a
        # line typed before the shell reads it is echoed twice (by the terminal, then by readline).
        before_marker = out[: out.rindex(f"\n{marker}")]
        after_command = before_marker.rsplit(f"echo {marker}", 1)[1].split("\n", 1)[1]
        return after_command.replace("\r", "")


def _lesson_namespace(node: Node, livelesson: str) -> str:
    names = node.kubectl("get", "namespaces", "-l", f"{labels.LIVELESSON}={livelesson}", "-o", "name").split()
    assert len(names) == 1, names
    return names[0].removeprefix("namespace/")


async def test_the_operator_journey(node: Node, deployed: Deployed) -> None:
    syringe_url = deployed.url
    # Syringe runs as a pod, under its own ServiceAccount, Ready: its start-up checks passed against the API.
    pod = json.loads(node.kubectl("-n", SYRINGE_NAMESPACE, "get", "pods", "-o", "json"))["items"][0]
    assert pod["spec"]["serviceAccountName"] == "syringe"
    assert pod["spec"]["containers"][0]["image"] == "localhost/syringe/syringe:dev"
    state = NodeState(node)
    before = await asyncio.to_thread(state.snapshot)

    async with httpx.AsyncClient(base_url=syringe_url, timeout=60) as http:
        ready = (await http.get("/readyz")).json()
        assert ready["status"] == "ready", ready
        auth = await _session(http)
        token = auth["Authorization"].removeprefix("Bearer ")

        started = time.monotonic()
        answer = await http.post("/api/v1/livelessons", json={"lesson": "static-routing"}, headers=auth)
        assert answer.status_code == 202, answer.text
        livelesson = answer.json()["id"]
        view = await _until(http, auth, livelesson, {"READY", "ERROR"}, timeout=900)
        assert view["status"] == "READY", view["error"]
        timing("static-routing (3 wrapper pods, TCG) POST -> READY", time.monotonic() - started)
        namespace = await asyncio.to_thread(_lesson_namespace, node, livelesson)
        pods = json.loads(await asyncio.to_thread(node.kubectl, "-n", namespace, "get", "pods", "-o", "json"))
        wrappers = {
            p["metadata"]["name"]: p
            for p in pods["items"]
            if p["metadata"]["labels"].get(labels.ENDPOINT) and not p["metadata"]["labels"].get(labels.PURPOSE)
        }
        assert set(wrappers) == {"r1", "r2", "r3"}
        wrapper_images = {p["spec"]["containers"][0]["image"] for p in wrappers.values()}
        assert wrapper_images == {"localhost/syringe/linux-router:dev"}

        planned = {"r1": {"eth1": "10.31.12.1/24"}, "r2": {"eth1": "10.31.12.2/24", "eth2": "10.31.23.1/24"},
                   "r3": {"eth1": "10.31.23.2/24"}}  # fmt: skip
        for endpoint, interfaces in planned.items():
            async with Terminal.open(syringe_url, view, endpoint, token) as terminal:
                assert (await terminal.run("hostname")).strip() == endpoint
                for interface, address in interfaces.items():
                    out = await terminal.run(f"ip -4 -o addr show dev {interface}")
                    assert f"inet {address} " in out, (endpoint, interface, out)
        async with Terminal.open(syringe_url, view, "r1", token) as r1:
            assert " 0% packet loss" in await r1.run("ping -c 2 -W 2 10.31.12.2")
            assert "100% packet loss" in await r1.run("ping -c 1 -W 1 10.31.23.2")  # no route yet
        async with Terminal.open(syringe_url, view, "r3", token) as r3:
            assert " 0% packet loss" in await r3.run("ping -c 2 -W 2 10.31.23.1")

        # Stage 1: the configurators run as Jobs in the configurator image and change the VMs.
        changing = time.monotonic()
        view = await _change_stage(http, auth, livelesson, 1)
        timing("stage 0 -> 1 (three configuration Jobs)", time.monotonic() - changing)
        jobs = json.loads(await asyncio.to_thread(node.kubectl, "-n", namespace, "get", "jobs", "-o", "json"))["items"]
        stage_jobs = [j for j in jobs if j["spec"]["template"]["spec"]["containers"][0]["image"]
                      == "localhost/syringe/syringe:dev" and (j.get("status") or {}).get("succeeded")]  # fmt: skip
        assert len(stage_jobs) >= 3, [(j["metadata"]["name"], j.get("status")) for j in jobs]
        async with Terminal.open(syringe_url, view, "r1", token) as r1:
            assert "10.31.23.0/24 via 10.31.12.2" in await r1.run("ip route")
            assert " 0% packet loss" in await r1.run("ping -c 2 -W 2 10.31.23.2")
        async with Terminal.open(syringe_url, view, "r2", token) as r2:
            assert (await r2.run("cat /proc/sys/net/ipv4/ip_forward")).strip() == "1"

        # Delete: nothing of the lesson is left on the node.
        deleting = time.monotonic()
        answer = await http.delete(f"/api/v1/livelessons/{livelesson}", headers=auth)
        assert answer.status_code in (200, 202, 204), answer.text
        for _ in range(600):
            left = node.kubectl("get", "namespace", namespace, "--ignore-not-found", "-o", "name", check=False)
            if not left.strip():
                break
            await asyncio.sleep(0.5)
        else:
            raise AssertionError(f"namespace {namespace} still there 300 s after the delete")
        timing("DELETE -> lesson namespace gone", time.monotonic() - deleting)
        uids = [p["metadata"]["uid"] for p in wrappers.values()]
        bridges = {b for b in state.links() if b.startswith("sy")}
        gone = time.monotonic()
        while True:
            left_on_node = await asyncio.to_thread(state.left_since, before, "", uids)
            left_on_node["links"] -= bridges  # the bridge plugin never deletes a bridge (see test_node_pods)
            if not any(left_on_node.values()) or time.monotonic() > gone + 60:
                break
            await asyncio.sleep(0.5)
        assert not any(left_on_node.values()), f"left on the node: {left_on_node}"


async def test_rest_api_basics_runs_in_the_example_container_images(node: Node, deployed: Deployed) -> None:
    """The api-server and utility images, built from images/*/Dockerfile, as container endpoints: the
    inventory service answers its http probe, the stage's Python configurator (a Job) loads the stage's
    devices through the service's REST API, and the learner reads them through Syringe's HTTP proxy."""
    async with httpx.AsyncClient(base_url=deployed.url, timeout=60) as http:
        auth = await _session(http)
        async with _launched(node, http, auth, "rest-api-basics", timeout=300) as (livelesson, view, seconds):
            assert view["status"] == "READY", view
            timing("rest-api-basics (two container pods): POST -> READY", seconds)
            devices = f"/api/v1/livelessons/{livelesson}/endpoints/inventory/http/web/api/devices"
            listed = await http.get(devices, headers=auth)
            assert listed.status_code == 200, listed.text
            assert listed.json() == [{"name": f"r{i}", "stage": 0} for i in range(1, 4)]
            await _change_stage(http, auth, livelesson, 1)
            stage_1 = [{"name": f"r{i}", "stage": 1} for i in range(1, 5)]
            assert (await http.get(devices, headers=auth)).json() == stage_1


async def test_routing_triangle_runs_ospf_in_the_frr_image(node: Node, deployed: Deployed) -> None:
    """Three pods of the frr image (FRRouting from Debian, images/frr/Dockerfile; the dev overlay grants it
    SYS_ADMIN, without which FRR's daemons refuse to start) wired in a triangle: stage 1's configurators
    (Jobs, vtysh over SSH as root) turn on OSPF, and in the learner's terminal vtysh shows both neighbours
    Full and the link each router is not on learned by OSPF."""
    async with httpx.AsyncClient(base_url=deployed.url, timeout=60) as http:
        auth = await _session(http)
        token = auth["Authorization"].removeprefix("Bearer ")
        async with _launched(node, http, auth, "routing-triangle", timeout=300) as (livelesson, view, seconds):
            assert view["status"] == "READY", view
            timing("routing-triangle (three frr pods): POST -> READY", seconds)
            view = await _change_stage(http, auth, livelesson, 1)
            far = {"r1": "10.23.0.0/24", "r2": "10.31.0.0/24", "r3": "10.12.0.0/24"}  # the link each is not on
            for router, network in far.items():
                async with Terminal.open(deployed.url, view, router, token) as terminal:
                    neighbours = routes = ""
                    for _ in range(90):  # hellos, then the SPF run
                        neighbours = await terminal.run("vtysh -c 'show ip ospf neighbor'")
                        routes = await terminal.run("vtysh -c 'show ip route ospf'")
                        if neighbours.count("Full/") == 2 and f"O>* {network}" in routes:
                            break
                        await asyncio.sleep(1)
                    assert neighbours.count("Full/") == 2, (router, neighbours)
                    assert f"O>* {network}" in routes, (router, routes)


@contextlib.asynccontextmanager
async def _launched(
    node: Node, http: httpx.AsyncClient, auth: dict[str, str], lesson: str, timeout: float
) -> AsyncIterator[tuple[str, dict[str, Any], float]]:
    """A live lesson launched (READY or ERROR), deleted afterwards whatever happened, and waited for until
    its namespace is gone: its pods must not hold the node's two cores that the next test needs."""
    livelesson, view, seconds = await _launch(http, auth, lesson, timeout)
    try:
        yield livelesson, view, seconds
    finally:
        await _until_gone(node, http, auth, livelesson)


async def _launch(
    http: httpx.AsyncClient, auth: dict[str, str], lesson: str, timeout: float
) -> tuple[str, dict[str, Any], float]:
    """POST a live lesson and wait until it is READY or ERROR: its id, its view and the seconds it took."""
    started = time.monotonic()
    answer = await http.post("/api/v1/livelessons", json={"lesson": lesson}, headers=auth)
    assert answer.status_code == 202, answer.text
    livelesson = answer.json()["id"]
    view = await _until(http, auth, livelesson, {"READY", "ERROR"}, timeout=timeout)
    return livelesson, view, time.monotonic() - started


async def _change_stage(http: httpx.AsyncClient, auth: dict[str, str], livelesson: str, stage: int) -> dict[str, Any]:
    """Ask for ``stage`` (CONFIGURATION at once) and wait until the live lesson is READY at it: its view."""
    answer = await http.put(f"/api/v1/livelessons/{livelesson}/stage", json={"stage": stage}, headers=auth)
    assert answer.status_code == 202, answer.text
    view = await _until(http, auth, livelesson, {"READY", "ERROR"}, timeout=600)
    assert view["status"] == "READY" and view["stage"] == stage, view
    return view


async def _until_gone(node: Node, http: httpx.AsyncClient, auth: dict[str, str], livelesson: str) -> None:
    """Deleted, and its namespace gone from the cluster: its pods no longer hold the node's CPU, which the
    next test's pods need (the node has two cores)."""
    await http.delete(f"/api/v1/livelessons/{livelesson}", headers=auth)
    selector = f"{labels.LIVELESSON}={livelesson}"
    for _ in range(600):
        left = await asyncio.to_thread(node.kubectl, "get", "namespaces", "-l", selector, "-o", "name")
        if not left.strip():
            return
        await asyncio.sleep(0.5)
    raise AssertionError(f"{livelesson}'s namespace was not deleted")


async def test_a_missing_image_is_the_lesson_error_within_seconds(node: Node, deployed: Deployed) -> None:
    """The frr image taken off the node (as when an operator forgets to load one): with pull policy Never the
    kubelet says ErrImageNeverPull, and the live lesson says which endpoint and why."""
    await asyncio.to_thread(
        subprocess.run,
        ["ctr", "-a", node.containerd_sock, "-n", "k8s.io", "images", "rm", "localhost/syringe/frr:dev"],
        capture_output=True,
        check=True,
    )
    async with httpx.AsyncClient(base_url=deployed.url, timeout=60) as http:
        auth = await _session(http)
        async with _launched(node, http, auth, "routing-triangle", timeout=120) as (_, view, seconds):
            timing("missing image: POST -> ERROR", seconds)
            assert view["status"] == "ERROR", view
            assert re.search(r"endpoint r[123]\b", view["error"]), view["error"]
            assert "not on the node" in view["error"] and "localhost/syringe/frr:dev" in view["error"], view["error"]


async def test_a_replacement_syringe_finishes_a_launch_its_killed_predecessor_began(
    node: Node, deployed: Deployed
) -> None:
    """Syringe's pod is killed mid-launch; the Deployment's next pod recovers the live lesson from the
    cluster and takes it to READY for the same learner, with nothing doubled or orphaned."""
    async with httpx.AsyncClient(base_url=deployed.url, timeout=60) as http:
        auth = await _session(http)
        answer = await http.post("/api/v1/livelessons", json={"lesson": "static-routing"}, headers=auth)
        assert answer.status_code == 202, answer.text
        livelesson = answer.json()["id"]
        view = await _until(http, auth, livelesson, {"BOOTING", "CONFIGURATION", "READY", "ERROR"}, timeout=60)
        assert view["status"] == "BOOTING", view
    killed = json.loads(node.kubectl("-n", SYRINGE_NAMESPACE, "get", "pods", "-o", "json"))["items"][0]
    node.kubectl("-n", SYRINGE_NAMESPACE, "delete", "pod", killed["metadata"]["name"], "--grace-period=0", "--force")
    started = time.monotonic()
    await asyncio.to_thread(deployed.reconnect)
    timing("Syringe killed mid-launch -> the next pod Ready", time.monotonic() - started)
    async with httpx.AsyncClient(base_url=deployed.url, timeout=60) as http:
        view = await _until(http, auth, livelesson, {"READY", "ERROR"}, timeout=600)
        assert view["status"] == "READY", view["error"]
        timing("Syringe killed mid-launch -> the next pod has the lesson READY", time.monotonic() - started)
        replacement = json.loads(node.kubectl("-n", SYRINGE_NAMESPACE, "get", "pods", "-o", "json"))["items"]
        assert [p["metadata"]["name"] for p in replacement] != [killed["metadata"]["name"]]
        namespace = await asyncio.to_thread(_lesson_namespace, node, livelesson)
        pods = json.loads(await asyncio.to_thread(node.kubectl, "-n", namespace, "get", "pods", "-o", "json"))
        endpoints = sorted(
            p["metadata"]["name"] for p in pods["items"] if not p["metadata"]["labels"].get(labels.PURPOSE)
        )
        assert endpoints == ["r1", "r2", "r3"]  # none doubled by the second process
        answer = await http.delete(f"/api/v1/livelessons/{livelesson}", headers=auth)
        assert answer.status_code in (200, 202, 204), answer.text
    for _ in range(600):
        if not node.kubectl("get", "namespaces", "-l", f"{labels.INSTANCE}=syringe", "-o", "name").strip():
            break
        await asyncio.sleep(0.5)
    else:
        raise AssertionError("a lesson namespace of the dev instance is still there 300 s after the delete")
