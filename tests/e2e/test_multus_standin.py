"""The Multus stand-in behaves as Multus does, for everything Syringe (or a lesson's NAD) may rely on: both
annotation forms, explicit namespaces and interface names, net1.. by position, `ips` through the plugin's
capability, a conflist, network-status with the default network first, and a missing NAD failing the
sandbox without leaking an address."""

from __future__ import annotations

import json
import time
import uuid

from tests.e2e.conftest import Node
from tests.e2e.test_node_pods import NETWORK_STATUS, NodeState, _in_pod, _ipv4_on


def _pod(name: str, networks: str, image: str) -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "annotations": {"k8s.v1.cni.cncf.io/networks": networks}},
        "spec": {
            "terminationGracePeriodSeconds": 1,
            "containers": [
                {
                    "name": "endpoint",
                    "image": image,
                    "imagePullPolicy": "Never",
                    "securityContext": {"capabilities": {"add": ["NET_ADMIN"]}},
                }
            ],
        },
    }


def _nad(name: str, config: dict[str, object]) -> dict[str, object]:
    return {
        "apiVersion": "k8s.cni.cncf.io/v1",
        "kind": "NetworkAttachmentDefinition",
        "metadata": {"name": name},
        "spec": {"config": json.dumps(config)},
    }


def test_the_standin_attaches_networks_as_multus_does(node: Node) -> None:
    namespace = f"e2e-multus-{uuid.uuid4().hex[:6]}"
    tag = namespace[-6:]
    state = NodeState(node)
    before = state.snapshot()
    node.kubectl("create", "namespace", namespace)
    try:
        lan = {
            "cniVersion": "0.3.1",
            "name": f"lan-{tag}",
            "type": "bridge",
            "bridge": f"sylan{tag}",
            "ipam": {"type": "host-local", "subnet": "10.253.7.0/24"},
        }
        static = {
            "cniVersion": "0.4.0",
            "name": f"static-{tag}",
            "plugins": [
                {"type": "bridge", "bridge": f"systa{tag}", "ipam": {"type": "static"}, "capabilities": {"ips": True}},
                {"type": "tuning", "sysctl": {"net.ipv4.conf.eth1.arp_notify": "1"}},
            ],
        }
        pods = [
            _pod("comma", f"lan, {namespace}/lan@data", node.busybox_image),
            _pod(
                "json",
                json.dumps([{"name": "static", "interface": "eth1", "ips": ["10.12.0.1/24"]}]),
                node.busybox_image,
            ),
            _pod("missing", json.dumps([{"name": "lan"}, {"name": "absent"}]), node.busybox_image),
        ]
        items = [_nad("lan", lan), _nad("static", static), *pods]
        manifest = json.dumps({"apiVersion": "v1", "kind": "List", "items": items})
        node.kubectl("-n", namespace, "apply", "-f", "/dev/stdin", input=manifest)
        node.kubectl("-n", namespace, "wait", "--for=condition=Ready", "pod/comma", "pod/json", "--timeout=90s")

        # Comma form: net1 by position, then the requested name, from another namespace's spelling.
        comma = json.loads(node.kubectl("-n", namespace, "get", "pod", "comma", "-o", "json"))
        status = json.loads(comma["metadata"]["annotations"][NETWORK_STATUS])
        assert [(s["interface"], s["name"], s.get("default", False)) for s in status] == [
            ("eth0", node.node_name, True),
            ("net1", f"{namespace}/lan", False),
            ("data", f"{namespace}/lan", False),
        ]
        for entry in status[1:]:
            assert [a.split("/")[0] for a in _ipv4_on(node, namespace, "comma", entry["interface"])] == entry["ips"]
            assert entry["ips"][0].startswith("10.253.7.")
        # JSON form with ips, through a conflist whose bridge declares the capability (static IPAM).
        assert _ipv4_on(node, namespace, "json", "eth1") == ["10.12.0.1/24"]
        assert _in_pod(node, namespace, "json", "cat /proc/sys/net/ipv4/conf/eth1/arp_notify").strip() == "1"

        # A NAD that does not exist fails the sandbox, as with Multus, and its attachments are undone.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            events = node.kubectl("-n", namespace, "get", "events", "--field-selector", "involvedObject.name=missing")
            if "cannot find a network-attachment-definition (absent)" in events:
                break
            time.sleep(1)
        else:
            raise AssertionError(f"no sandbox failure reported for pod missing: {events}")
        phase = node.kubectl("-n", namespace, "get", "pod", "missing", "-o", "jsonpath={.status.phase}")
        assert phase == "Pending"
        # Only the comma pod's two: the kubelet retries the failing sandbox, and each try gives its back.
        deadline = time.monotonic() + 15
        while True:
            lan_leases = {lease for lease in state.leases() - before["leases"] if lease.startswith(f"lan-{tag}/")}
            if len(lan_leases) == 2 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert len(lan_leases) == 2, lan_leases

        # Deleting the pods gives every address back and removes every netns and veth at once (the API
        # objects go later, after the kubelet's container GC).
        node.kubectl("-n", namespace, "delete", "pods", "--all", "--wait=false")
        deadline = time.monotonic() + 60
        while True:
            left = {key: value for key, value in state.left_since(before, "", []).items() if value}
            left["links"] = {link for link in left.get("links", set()) if not link.startswith("sy")}
            if not any(left.values()) or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert not any(left.values()), f"left on the node after the pods were deleted: {left}"
    finally:
        node.kubectl("delete", "namespace", namespace, "--wait=false", check=False)
