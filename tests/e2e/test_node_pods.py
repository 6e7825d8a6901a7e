"""A lesson's pods on a real node: Syringe's own plan, applied by its Kubernetes runtime, run by a kubelet.

Two busybox endpoints and one connection. The plan's NetworkAttachmentDefinition and each pod's network
selection give the pod the interface and the address the plan names, as it starts (static IPAM: no login
afterwards), and its hostname is the endpoint's; a ping crosses the link's bridge; deleting the live lesson
leaves nothing of it on the node.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import re
import subprocess
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from syringe.curriculum import load_curriculum
from syringe.plan import Link, LiveLessonIdentity, PlanSettings, build_plan
from syringe.plan.networks import bridge_name, nad_name
from syringe.runtime import EndpointObservation
from syringe.runtime.kubernetes import KubernetesRuntime, api_client_from
from syringe.settings import KubernetesSettings
from tests.e2e.conftest import Node, timing

LESSON = "two-busybox"
NETWORK_STATUS = "k8s.v1.cni.cncf.io/network-status"
IP_FILE = re.compile(r"^[0-9a-f.:]+$")


def busybox_curriculum(root: Path, image: str) -> Path:
    """A curriculum of one lesson: endpoints a and b on ``image`` (busybox-static), linked once."""
    (root / "images" / image).mkdir(parents=True)
    (root / "curriculum.meta.yaml").write_text("name: e2e\ndescription: end-to-end tests on a real node\n")
    (root / "images" / image / "image.meta.yaml").write_text(
        f"slug: {image}\ndescription: busybox-static, one layer\nkind: container\nflavor: untrusted\n"
        "sshUser: root\nsshPassword: unused\n"
    )
    lesson = root / "lessons" / LESSON
    (lesson / "stage0").mkdir(parents=True)
    (lesson / "stage0" / "guide.md").write_text("# Two busybox hosts\n")
    (lesson / "lesson.meta.yaml").write_text(
        f"name: Two busybox hosts\nslug: {LESSON}\ncategory: fundamentals\nendpoints:\n"
        f"- name: a\n  image: {image}\n  presentations: [{{name: cli, port: 22, type: ssh}}]\n"
        f"- name: b\n  image: {image}\n  presentations: [{{name: cli, port: 22, type: ssh}}]\n"
        "connections:\n- {a: a, b: b}\n"
        "stages:\n- description: only\n"
    )
    return root


class NodeState:
    """What a live lesson can leave on the node: sandbox netns, host-side links, host-local leases."""

    def __init__(self, node: Node) -> None:
        self.node = node

    def netns(self) -> set[str]:
        path = Path(self.node.netns_dir)
        return {p.name for p in path.iterdir()} if path.is_dir() else set()

    def links(self) -> set[str]:
        out = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True, check=True).stdout
        return {line.split(": ")[1].split("@")[0] for line in out.splitlines()}

    def bridge_ports(self, bridge: str) -> set[str]:
        out = subprocess.run(["ip", "-o", "link", "show", "master", bridge], capture_output=True, text=True).stdout
        return {line.split(": ")[1].split("@")[0] for line in out.splitlines()}

    def snapshot(self) -> dict[str, set[str]]:
        return {"netns": self.netns(), "links": self.links(), "leases": self.leases()}

    def left_since(self, before: dict[str, set[str]], bridge: str, pod_uids: list[str]) -> dict[str, set[str]]:
        """What is on the node now that was not ``before``: the lesson's bridge itself aside (the bridge
        plugin never deletes one; the node's teardown does), and the kubelet's (cgroup v1) cgroups of
        ``pod_uids``. runc's empty copies in the unified hierarchy stay until the node's teardown."""
        cgroups = [h for h in Path("/sys/fs/cgroup").iterdir() if h.name != "unified" and not h.is_symlink()]
        return {
            "netns": self.netns() - before["netns"],
            "links": self.links() - before["links"] - {bridge},
            "leases": self.leases() - before["leases"],
            "bridge ports": self.bridge_ports(bridge),
            "pod cgroups": {
                str(p) for uid in pod_uids for h in cgroups for p in h.glob(f"{self.node.cgroup_root}/**/pod{uid}")
            },
        }

    def leases(self) -> set[str]:
        """host-local's lease files (network/address) of every network on the node."""
        root = Path(self.node.ipam_dir)
        if not root.is_dir():
            return set()
        return {f"{p.parent.name}/{p.name}" for p in root.glob("*/*") if IP_FILE.match(p.name)}


def _in_pod(node: Node, namespace: str, pod: str, script: str) -> str:
    return node.kubectl("-n", namespace, "exec", pod, "-c", "endpoint", "--", "sh", "-c", script)


def _ipv4_on(node: Node, namespace: str, pod: str, interface: str) -> list[str]:
    out = _in_pod(node, namespace, pod, f"ip -o -4 address show dev {interface}")
    return [line.split()[3] for line in out.splitlines() if " inet " in line]


def check_the_link(node: Node, namespace: str, pods: dict[str, dict[str, Any]], link: Link) -> None:
    """Each pod has the interface and the address the plan names from the start (as its network-status says),
    and the endpoint's hostname; the runtime says so, so no base configuration runs; a ping crosses the link."""
    subnet = ipaddress.ip_network(link.subnet)
    for side in (link.a, link.b):
        pod = pods[side.endpoint]
        status = {s["interface"]: s for s in json.loads(pod["metadata"]["annotations"][NETWORK_STATUS])}
        assert status[side.interface]["name"] == f"{namespace}/{nad_name(link)}"
        attached = _ipv4_on(node, namespace, side.endpoint, side.interface)
        assert [a.split("/")[0] for a in attached] == status[side.interface]["ips"]
        assert all(ipaddress.ip_interface(a).network == subnet for a in attached), attached
        assert status["eth0"]["ips"] == [pod["status"]["podIP"]]
        # No way off the machine: no default route in the pod.
        assert "default" not in _in_pod(node, namespace, side.endpoint, "ip route show")
        assert attached == [side.address]
        assert _in_pod(node, namespace, side.endpoint, "hostname").strip() == side.endpoint
    for side, peer in ((link.a, link.b), (link.b, link.a)):
        peer_address = peer.address.split("/")[0]
        out = _in_pod(node, namespace, side.endpoint, f"ping -c 3 -W 2 -I {side.interface} {peer_address}")
        assert " 0% packet loss" in out, out
    # The host reaches pod IPs (and only the host: no forwarding, no NAT).
    pod_ip = pods["b"]["status"]["podIP"]
    host_ping = subprocess.run(["busybox", "ping", "-c", "1", "-W", "2", pod_ip], capture_output=True, text=True)
    assert host_ping.returncode == 0, host_ping.stdout + host_ping.stderr


async def _until_ready(
    runtime: KubernetesRuntime, namespace: str, endpoints: set[str], timeout: float
) -> dict[str, EndpointObservation]:
    """Wait on the runtime's own events until every endpoint's pod is Running and Ready; fail on a fatal one."""
    seen: dict[str, EndpointObservation] = {}

    async def watch() -> None:
        async for event in runtime.events():
            if isinstance(event, EndpointObservation) and event.namespace == namespace:
                seen[event.endpoint] = event
                if event.fatal:
                    raise AssertionError(f"endpoint {event.endpoint}: {event.reason}: {event.message}")
                if all(seen.get(e) and seen[e].ready and seen[e].phase == "Running" for e in endpoints):
                    return

    try:
        await asyncio.wait_for(watch(), timeout)
    except TimeoutError:
        raise AssertionError(f"not Ready within {timeout:g}s: {seen}") from None
    return seen


async def test_linked_busybox_pods_on_a_real_node(node: Node, tmp_path: Path) -> None:
    registry, slug_tag = node.busybox_image.rsplit("/", 1)
    image, tag = slug_tag.split(":")
    tree = load_curriculum(busybox_curriculum(tmp_path / "curriculum", image))
    assert not tree.problems, tree.problems
    lesson = tree.lessons[LESSON].lesson
    instance = f"e2e{uuid.uuid4().hex[:6]}"
    settings = PlanSettings(instance=instance, image_registry=registry, image_tag=tag, image_pull_policy="Never")
    who = LiveLessonIdentity(id="l1", session="s1", created_at=datetime.now(UTC))
    plan = build_plan(lesson, tree.images, 0, who, settings)
    (link,) = plan.links
    namespace = plan.namespace
    bridge = bridge_name(namespace, link.index)
    state = NodeState(node)
    before = await asyncio.to_thread(state.snapshot)

    runtime = KubernetesRuntime(api_client_from(node.kubeconfig), instance, KubernetesSettings(address_mode="pod-ip"))
    try:
        await runtime.start()
        started = time.monotonic()
        ready = asyncio.create_task(_until_ready(runtime, namespace, {"a", "b"}, timeout=120))
        await asyncio.sleep(0.1)  # subscribed before the first pod exists
        await runtime.apply(plan)
        observed = await ready
        # The pod gave each endpoint its identity: base configuration (a login over SSH) is skipped.
        assert all(o.identity_assigned for o in observed.values()), observed
        timing("apply -> both pods Running and Ready", time.monotonic() - started)

        # On the node: a sandbox netns per pod, each pod on the connection's bridge, a lease per address.
        pods = {
            p: json.loads(await asyncio.to_thread(node.kubectl, "-n", namespace, "get", "pod", p, "-o", "json"))
            for p in ("a", "b")
        }
        assert all(p["spec"]["nodeName"] == node.node_name for p in pods.values())
        created = await asyncio.to_thread(state.left_since, before, bridge, [])
        assert len(created["netns"]) == 2, created
        assert len(created["bridge ports"]) == 2, created
        # Static IPAM: the link's addresses are the plan's, with no lease to leak.
        assert not [lease for lease in created["leases"] if lease.startswith(f"{nad_name(link)}/")], created

        await asyncio.to_thread(check_the_link, node, namespace, pods, link)

        deleting = time.monotonic()
        assert await runtime.delete(namespace, timeout=180), f"namespace {namespace} still there after 180 s"
        timing("delete -> namespace gone", time.monotonic() - deleting)
        # Nothing of the lesson is left on the node: no sandbox netns, no veth, no lease, no pod cgroup.
        gone = time.monotonic()
        uids = [p["metadata"]["uid"] for p in pods.values()]
        while True:
            left = await asyncio.to_thread(state.left_since, before, bridge, uids)
            if not any(left.values()) or time.monotonic() > gone + 30:
                break
            await asyncio.sleep(0.5)
        timing("namespace gone -> node clean", time.monotonic() - gone)
        assert not any(left.values()), f"left on the node: {left} (created: {created})"
    finally:
        with contextlib.suppress(Exception):
            node.kubectl("delete", "namespace", namespace, "--wait=false", check=False)
        await runtime.close()
