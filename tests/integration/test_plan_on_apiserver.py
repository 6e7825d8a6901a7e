"""Every object the plan renders is accepted by a real kube-apiserver, and reads back as planned."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from kubernetes import client, dynamic
from kubernetes.client.rest import ApiException

from syringe.curriculum import load_curriculum
from syringe.curriculum.files import read_lesson_files
from syringe.plan import LiveLessonIdentity, PlanSettings, build_plan

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
TREE = load_curriculum(REPO / "lessons")


@pytest.mark.parametrize("slug", sorted(TREE.lessons))
def test_plan_is_accepted_and_stored_as_planned(slug: str, kube_dynamic: dynamic.DynamicClient) -> None:
    source = TREE.lessons[slug]
    who = LiveLessonIdentity(id=f"it-{uuid.uuid4().hex[:8]}", session="integration", created_at=datetime.now(UTC))
    settings = PlanSettings(instance="syringe-test")
    plan = build_plan(source.lesson, TREE.images, 0, who, settings, read_lesson_files(source))
    core = client.CoreV1Api(kube_dynamic.client)
    try:
        for obj in plan.objects:
            resource = kube_dynamic.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
            namespace = obj["metadata"].get("namespace")
            # A server-side dry run first: admission and schema checks without side effects.
            if obj["kind"] != "Namespace":
                resource.create(body=obj, namespace=namespace, query_params=[("dryRun", "All")])
            resource.create(body=obj, namespace=namespace)

        stored_ns = core.read_namespace(plan.namespace)
        assert stored_ns.metadata.labels["syringe.io/lesson"] == slug
        assert stored_ns.metadata.annotations["syringe.io/status"] == "INITIALIZED"

        for pod in (o for o in plan.objects if o["kind"] == "Pod"):
            stored = core.read_namespaced_pod(pod["metadata"]["name"], plan.namespace)
            annotations = stored.metadata.annotations or {}
            assert annotations.get("k8s.v1.cni.cncf.io/networks") == pod["metadata"].get("annotations", {}).get(
                "k8s.v1.cni.cncf.io/networks"
            )
            assert [p.container_port for p in stored.spec.containers[0].ports] == [
                p["containerPort"] for p in pod["spec"]["containers"][0]["ports"]
            ]

        nads = kube_dynamic.resources.get(api_version="k8s.cni.cncf.io/v1", kind="NetworkAttachmentDefinition")
        stored_nads = {n.metadata.name: json.loads(n.spec.config) for n in nads.get(namespace=plan.namespace).items}
        assert set(stored_nads) == {
            o["metadata"]["name"] for o in plan.objects if o["kind"] == "NetworkAttachmentDefinition"
        }
        assert all(c["type"] == "bridge" and len(c["bridge"]) <= 15 for c in stored_nads.values())

        services = core.list_namespaced_service(plan.namespace).items
        assert sorted(s.metadata.name for s in services) == sorted(e.name for e in source.lesson.endpoints)
        assert all(s.spec.cluster_ip for s in services)
    finally:
        try:
            core.delete_namespace(plan.namespace)
        except ApiException as exc:
            if exc.status != 404:
                raise


def test_server_rejects_what_the_schema_forbids(kube_dynamic: dynamic.DynamicClient) -> None:
    """The dry run above is a real check: the same server refuses a broken object."""
    pods = kube_dynamic.resources.get(api_version="v1", kind="Pod")
    bad = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "bad"},
        "spec": {"containers": [{"name": "c", "image": "i", "ports": [{"containerPort": 70000}]}]},
    }
    with pytest.raises(ApiException) as error:
        pods.create(body=bad, namespace="default", query_params=[("dryRun", "All")])
    assert error.value.status == 422
