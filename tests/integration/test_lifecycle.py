"""The live-lesson lifecycle on a real control plane, with the pod stand-in running real servers."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Awaitable, Callable
from datetime import timedelta

import pytest
from kubernetes import client, dynamic
from kubernetes.client.rest import ApiException

from syringe.errors import LimitReached
from syringe.livelessons import LiveLessons, Status
from syringe.plan import labels
from tests.integration.helpers import settled

pytestmark = pytest.mark.integration
Make = Callable[..., Awaitable[LiveLessons]]
EXAMPLES = ["linux-basics", "netconf-basics", "rest-api-basics", "routing-triangle"]


def _namespace_exists(core: client.CoreV1Api, name: str) -> bool:
    try:
        core.read_namespace(name)
        return True
    except ApiException as exc:
        assert exc.status == 404
        return False


@pytest.mark.parametrize("slug", EXAMPLES)
async def test_example_lesson_reaches_ready_with_the_planned_objects(
    slug: str, lifecycle: Make, kube_dynamic: dynamic.DynamicClient
) -> None:
    manager = await lifecycle()
    ll = await manager.launch("learner", slug)
    assert await settled(manager, ll) is Status.READY, ll.error
    assert ll.healthy == ll.total == len(manager.tree.lessons[slug].lesson.endpoints)

    core = client.CoreV1Api(kube_dynamic.client)
    namespace = core.read_namespace(ll.namespace)
    assert namespace.metadata.labels[labels.LESSON] == slug
    assert namespace.metadata.annotations[labels.STATUS] == "READY"
    assert client.NetworkingV1Api(kube_dynamic.client).read_namespaced_network_policy("lesson-isolation", ll.namespace)
    assert core.read_namespaced_resource_quota("lesson-quota", ll.namespace).spec.hard["pods"]

    lesson = manager.tree.lessons[slug].lesson
    nads = kube_dynamic.resources.get(api_version="k8s.cni.cncf.io/v1", kind="NetworkAttachmentDefinition")
    stored = {n.metadata.name: json.loads(n.spec.config) for n in nads.get(namespace=ll.namespace).items}
    assert len(stored) == len(lesson.connections)
    for config in stored.values():
        assert config["type"] == "bridge" and config["ipam"]["type"] == "static"

    pods = {
        p.metadata.name: p
        for p in core.list_namespaced_pod(ll.namespace).items
        if not (p.metadata.labels or {}).get("syringe.io/purpose")  # configuration Jobs' pods
    }
    assert set(pods) == {e.name for e in lesson.endpoints}
    for connection in lesson.connections:
        for side in (connection.a, connection.b):
            networks = json.loads(pods[side].metadata.annotations["k8s.v1.cni.cncf.io/networks"])
            assert all(n["interface"] for n in networks)
            assert any(set(n["name"].split("-")[1:]) >= {connection.a, connection.b} for n in networks)
    services = {s.metadata.name for s in core.list_namespaced_service(ll.namespace).items}
    assert services == {e.name for e in lesson.endpoints}

    assert await manager.delete(ll.id)
    assert not _namespace_exists(core, ll.namespace)
    assert ll.id not in manager.registry.lessons


async def test_restart_recovers_live_lessons_from_the_cluster(lifecycle: Make) -> None:
    first = await lifecycle()
    launched = [await first.launch(f"learner{i}", slug) for i, slug in enumerate(["linux-basics", "rest-api-basics"])]
    for ll in launched:
        assert await settled(first, ll) is Status.READY
    await first.keepalive(launched[0].id)

    second = await lifecycle()  # a fresh process's view: nothing but the cluster
    for ll in launched:
        recovered = second.get(ll.id)
        assert (recovered.lesson, recovered.session, recovered.stage) == (ll.lesson, ll.session, ll.stage)
        assert recovered.status is Status.READY
        assert recovered.healthy == recovered.total == ll.total
        assert recovered.expires_at == ll.expires_at
        for name, endpoint in recovered.endpoints.items():
            assert endpoint.observation is not None
            assert endpoint.observation.reach == ll.endpoints[name].observation.reach  # type: ignore[union-attr]
            assert endpoint.observation.reach is not None


async def test_a_launch_interrupted_by_a_restart_is_finished_by_the_next_process(lifecycle: Make) -> None:
    first = await lifecycle()
    ll = await first.launch("learner", "slow-image")  # the stand-in starts this image's pod two seconds late
    changes = first.listen()
    while ll.status is not Status.BOOTING:
        await asyncio.wait_for(changes.get(), 30)
    assert not ll.endpoints["bad"].running
    await first.stop()  # the process is gone mid-launch

    second = await lifecycle()
    recovered = second.get(ll.id)
    assert recovered.status is Status.BOOTING
    assert await settled(second, recovered) is Status.READY, recovered.error
    assert recovered.healthy == 2


async def test_garbage_collection_spares_unexpired_persistent_and_foreign(
    lifecycle: Make, kube_dynamic: dynamic.DynamicClient, instance: str
) -> None:
    manager = await lifecycle(ttl_seconds=60)
    core = client.CoreV1Api(kube_dynamic.client)
    decoys = {
        f"{instance}-decoy-other": {labels.MANAGED_BY: "syringe", labels.INSTANCE: f"{instance}x"},
        f"{instance}-decoy-foreign": {labels.MANAGED_BY: "someone-else", "owner": instance},
    }
    for name, decoy_labels in decoys.items():
        core.create_namespace({"metadata": {"name": name, "labels": decoy_labels}})
    try:
        expiring = await manager.launch("s-expiring", "linux-basics")
        persistent = await manager.launch("s-persistent", "linux-basics")
        kept = await manager.launch("s-kept", "linux-basics")
        for ll in (expiring, persistent, kept):
            assert await settled(manager, ll) is Status.READY
        await manager.set_persistent("s-persistent", True)

        later = manager.clock() + timedelta(seconds=61)
        kept.expires_at = later + timedelta(seconds=60)  # as if a keepalive came at the last moment
        manager.clock = lambda: later
        removed = await manager.collect_garbage()

        assert removed == [expiring.id]
        assert await _gone(core, expiring.namespace)
        for ll in (persistent, kept):
            assert _namespace_exists(core, ll.namespace)
            assert manager.get(ll.id).status is Status.READY
        for name in decoys:
            assert _namespace_exists(core, name)
    finally:
        for name in decoys:
            core.delete_namespace(name)


async def _gone(core: client.CoreV1Api, namespace: str, timeout: float = 60) -> bool:
    for _ in range(int(timeout * 5)):
        if not _namespace_exists(core, namespace):
            return True
        await asyncio.sleep(0.2)
    return False


@pytest.mark.parametrize(
    ("slug", "reasons"),
    [
        ("broken-image", ("ErrImagePull", "ImagePullBackOff")),
        ("crashing-image", ("CrashLoopBackOff",)),
    ],
)
async def test_failing_endpoint_gives_error_with_endpoint_and_reason(
    slug: str, reasons: tuple[str, ...], lifecycle: Make
) -> None:
    manager = await lifecycle(launch_timeout=600)
    ll = await manager.launch("learner", slug)
    # The launch timeout is 600 s; this settles in seconds because the failure is recognised as fatal.
    assert await settled(manager, ll, timeout=60) is Status.ERROR
    assert ll.error is not None
    assert "endpoint bad" in ll.error
    assert any(reason in ll.error for reason in reasons), ll.error
    assert "test/" in ll.error  # the image that failed


async def test_limits_refuse_clearly(lifecycle: Make) -> None:
    manager = await lifecycle(max_per_session=1, max_live_lessons=2)
    first = await manager.launch("a", "linux-basics")
    assert await manager.launch("a", "linux-basics") is first  # one live lesson per (session, lesson)
    with pytest.raises(LimitReached, match="session a already has 1"):
        await manager.launch("a", "rest-api-basics")
    await manager.launch("b", "linux-basics")
    with pytest.raises(LimitReached, match="all 2 live-lesson slots") as refused:
        await manager.launch("c", "linux-basics")
    assert refused.value.retry_after
    await manager.delete(first.id)
    assert (await manager.launch("c", "linux-basics")).session == "c"


async def test_reading_status_costs_the_api_server_nothing(lifecycle: Make) -> None:
    manager = await lifecycle()
    ll = await manager.launch("learner", "routing-triangle")
    assert await settled(manager, ll) is Status.READY
    counts = manager.runtime.calls.counts  # type: ignore[attr-defined]
    before = dict(counts)
    for _ in range(1000):
        seen = manager.get(ll.id, "learner")
        assert (seen.status, seen.healthy, seen.total) == (Status.READY, 3, 3)
        assert manager.of_session("learner") == [ll]
    assert dict(counts) == before


async def test_an_endpoint_that_never_answers_fails_its_probe_by_name(lifecycle: Make) -> None:
    manager = await lifecycle(probe_timeout=3, probe_attempt_timeout=1)
    ll = await manager.launch("learner", "mute-image")
    assert await settled(manager, ll) is Status.ERROR
    assert ll.error == "bad/cli (port 22): ssh handshake: no banner and key exchange within 1s"
    assert ll.endpoints["good"].healthy and not ll.endpoints["bad"].healthy


async def _marks(address: str) -> str:
    import asyncssh

    async with asyncssh.connect(address, 22, username="u", password="p", known_hosts=None) as conn:
        result = await conn.run(f"cat /tmp/syringe-marks-{address} 2>/dev/null || true")
    return str(result.stdout)


async def test_configuration_jobs_run_per_stage_change_without_recreating_pods(
    lifecycle: Make, kube_dynamic: dynamic.DynamicClient
) -> None:
    manager = await lifecycle()
    ll = await manager.launch("learner", "configured-host")
    assert await settled(manager, ll) is Status.READY, ll.error
    address = ll.endpoints["host"].observation.reach.host  # type: ignore[union-attr]
    assert address
    assert await _marks(address) == "stage 0\n"
    core = client.CoreV1Api(kube_dynamic.client)
    uid = core.read_namespaced_pod("host", ll.namespace).metadata.uid

    for stage, expected in ((1, "stage 0\nstage 1\n"), (0, "stage 0\nstage 1\nstage 0\n")):
        await manager.set_stage(ll.id, stage)
        assert ll.status is Status.CONFIGURATION
        assert await settled(manager, ll) is Status.READY, ll.error
        assert ll.stage == stage
        assert await _marks(address) == expected  # each change ran its stage's configuration once
    assert core.read_namespaced_pod("host", ll.namespace).metadata.uid == uid  # no pod was recreated
    await asyncio.to_thread(os.remove, f"/tmp/syringe-marks-{address}")


async def test_a_failing_configurator_gives_error_with_its_output(lifecycle: Make) -> None:
    manager = await lifecycle()
    ll = await manager.launch("learner", "failing-config")
    assert await settled(manager, ll, timeout=90) is Status.ERROR
    assert ll.error is not None
    assert ll.error.startswith("endpoint host: configuring stage 0: ")
    assert "the device said no" in ll.error
    assert "host.py exited with status 4" in ll.error


async def test_learner_checks_report_pass_and_fail_without_failing_the_lesson(lifecycle: Make) -> None:
    manager = await lifecycle()
    ll = await manager.launch("learner", "checked-host")
    assert await settled(manager, ll) is Status.READY, ll.error
    await manager.verify(ll.id, "learner")
    changes = manager.listen()
    async with asyncio.timeout(60):
        while ll.verification is None or ll.verification.status == "running":
            await changes.get()
    assert ll.verification.status == "done", ll.verification.error
    results = {r["name"]: r for r in ll.verification.results}
    assert results["kernel"]["passed"] and results["kernel"]["message"] == "Runs Linux"
    assert not results["your-file"]["passed"]
    assert "exited with status 1" in results["your-file"]["message"]
    assert results["script"] == {"name": "script", "description": "", "passed": True, "message": "all good"}
    assert ll.status is Status.READY


async def test_pods_come_with_hostname_and_planned_addresses(lifecycle: Make) -> None:
    """The pod spec's hostname and static IPAM (the network selection's ips) give a Linux endpoint its
    identity, so Syringe logs in for nothing: the stand-in applies both as the kubelet and Multus would."""
    import asyncssh

    manager = await lifecycle()
    ll = await manager.launch("learner", "routing-triangle")
    assert await settled(manager, ll) is Status.READY, ll.error
    observation = ll.endpoints["r1"].observation
    assert observation is not None and observation.identity_assigned  # so base configuration was skipped
    address = observation.reach.host  # type: ignore[union-attr]
    async with asyncssh.connect(address, 22, username="u", password="p", known_hosts=None) as conn:
        hostname = (await conn.run("hostname", check=True)).stdout
        addresses = (await conn.run("ip -br -4 address show", check=True)).stdout
    assert str(hostname).strip() == "r1"
    table = {line.split()[0].split("@")[0]: line.split()[2:] for line in str(addresses).splitlines()}
    assert table["eth1"] == ["10.12.0.1/24"]  # r1 is side a of r1-r2
    assert table["eth2"] == ["10.31.0.2/24"]  # and side b of r3-r1
