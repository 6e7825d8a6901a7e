"""A configuration Job's done line, on a real node: the Kubernetes runtime follows the Job pod's log through the
API server and the kubelet, and reports the Job succeeded as the line is written, while the pod still runs.
A line that is not the pod's own token changes nothing."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from datetime import UTC, datetime
from pathlib import Path

from syringe.curriculum import load_curriculum
from syringe.plan import LiveLessonIdentity, PlanSettings, build_plan, jobenv, labels
from syringe.runtime.base import JobPodObservation
from syringe.runtime.kubernetes import KubernetesRuntime, api_client_from
from syringe.settings import KubernetesSettings
from tests.e2e.conftest import Node
from tests.e2e.test_node_pods import LESSON, busybox_curriculum

TOKEN = uuid.uuid4().hex


def job_pod(namespace: str, common: dict[str, str], image: str, name: str, script: str) -> dict[str, object]:
    """A pod as a configuration Job's would be labelled, its container given a done token, running ``script``."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {**common, labels.PURPOSE: "configuration", "job-name": name},
        },
        "spec": {
            "restartPolicy": "Never",
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,
            "terminationGracePeriodSeconds": 0,
            "containers": [
                {
                    "name": "configure",
                    "image": image,
                    "imagePullPolicy": "Never",
                    "command": ["sh", "-c", script],
                    "env": [{"name": jobenv.DONE_TOKEN, "value": TOKEN}],
                }
            ],
        },
    }


async def test_the_done_line_reports_the_job_before_its_pod_ends(node: Node, tmp_path: Path) -> None:
    registry, slug_tag = node.busybox_image.rsplit("/", 1)
    image, tag = slug_tag.split(":")
    tree = load_curriculum(busybox_curriculum(tmp_path / "curriculum", image))
    instance = f"e2e{uuid.uuid4().hex[:6]}"
    settings = PlanSettings(instance=instance, image_registry=registry, image_tag=tag, image_pull_policy="Never")
    who = LiveLessonIdentity(id="l1", session="s1", created_at=datetime.now(UTC))
    plan = build_plan(tree.lessons[LESSON].lesson, tree.images, 0, who, settings)
    namespace_object = next(o for o in plan.objects if o["kind"] == "Namespace")
    namespace = plan.namespace
    done = jobenv.done_line(TOKEN)
    # Not done: another token, the line inside a longer one, the prefix alone. Then the line, and a long sleep.
    honest = (
        f"echo {jobenv.done_line('0' * 32)}; echo x{done}; echo {jobenv.DONE_PREFIX}; sleep 1; echo {done}; sleep 300"
    )
    never = f"echo {jobenv.done_line('0' * 32)}; echo {done}x; sleep 300"

    runtime = KubernetesRuntime(api_client_from(node.kubeconfig), instance, KubernetesSettings(address_mode="pod-ip"))
    heard: list[JobPodObservation] = []
    try:
        await runtime.start()

        async def until_succeeded() -> None:
            async for event in runtime.events():
                if isinstance(event, JobPodObservation) and event.namespace == namespace:
                    heard.append(event)
                    if event.job == "honest" and event.said_done:
                        return

        listening = asyncio.create_task(until_succeeded())
        await asyncio.sleep(0.1)
        await runtime.create([namespace_object])
        await runtime.create(
            [
                job_pod(namespace, plan.common_labels, node.busybox_image, n, s)
                for n, s in (("honest", honest), ("never", never))
            ]
        )
        await asyncio.wait_for(listening, 90)
        # The word came from the log: the pod itself still runs its sleep, and says so.
        assert heard[-1].phase == "Running"
        pod = json.loads(await asyncio.to_thread(node.kubectl, "-n", namespace, "get", "pod", "honest", "-o", "json"))
        assert pod["status"]["phase"] == "Running"
        await asyncio.sleep(3)  # the other pod printed its lines long ago
        assert not [e for e in heard if e.job == "never" and (e.said_done or e.phase == "Succeeded")], heard
    finally:
        with contextlib.suppress(Exception):
            await runtime.delete(namespace, timeout=120)
        await runtime.close()
