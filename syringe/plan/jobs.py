"""Configuration Jobs: one per endpoint with a configurationType, per stage change. Pure, like the plan."""

from __future__ import annotations

from typing import Any

from syringe.curriculum.models import Endpoint, Lesson, Presentation
from syringe.plan import jobenv, labels
from syringe.plan.builder import Plan
from syringe.plan.credentials import CREDENTIALS_SECRET
from syringe.plan.objects import K8sObject
from syringe.plan.quantity import format_mebibytes, format_millicores, mebibytes, millicores
from syringe.plan.settings import PlanSettings
from syringe.plan.volume import CHECKS_FILE, TOPOLOGY_FILE

# The values of labels.PURPOSE on a Job and its pod.
CONFIGURATION = "configuration"
VERIFICATION = "verification"
# Where a verification Job's container sees the credentials Secret.
CREDENTIALS_PATH = "/var/run/syringe/credentials"


# A configurator or checker needs no privilege; it writes only to its own /tmp.
CONTAINER_SECURITY: dict[str, Any] = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "runAsNonRoot": True,
    "runAsUser": 10001,
    "capabilities": {"drop": ["ALL"]},
}


def _job(
    name: str,
    plan: Plan,
    job_labels: dict[str, str],
    container: dict[str, Any],
    volumes: list[dict[str, Any]],
    backoff_limit: int,
    settings: PlanSettings,
) -> K8sObject:
    """A Job of the live lesson: one pod, never restarted, no service account, a deadline. Its pod does not
    carry labels.ENDPOINT, which the Job may: an endpoint's Services select its pod by that label, and a
    Job's pod they also selected would get a share of the endpoint's traffic (and its name's addresses)."""
    pod_labels = {key: value for key, value in job_labels.items() if key != labels.ENDPOINT}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": plan.namespace, "labels": job_labels},
        "spec": {
            "backoffLimit": backoff_limit,
            "activeDeadlineSeconds": settings.job_timeout_seconds,
            "ttlSecondsAfterFinished": 3600,
            "template": {
                "metadata": {"labels": pod_labels},
                "spec": {
                    "restartPolicy": "Never",
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
                    "containers": [container],
                    "volumes": [
                        {"name": "lesson-files", "projected": {"sources": plan.volume_sources}},
                        *volumes,
                        {"name": "tmp", "emptyDir": {}},
                    ],
                },
            },
        },
    }


def verification_job(lesson: Lesson, plan: Plan, stage: int, run: str, settings: PlanSettings) -> K8sObject:
    """The Job that runs a stage's learner checks (`syringe verify`) and reports each one's result in its
    termination message."""
    name = f"verify-s{stage}-{run}"
    job_labels = {**plan.common_labels, labels.PURPOSE: VERIFICATION, labels.STAGE: str(stage)}
    endpoints = sorted({check.endpoint for check in lesson.stages[stage].verify})
    env: list[dict[str, Any]] = [
        {"name": jobenv.LESSON_DIR, "value": settings.lesson_mount_path},
        {"name": jobenv.CHECKS, "value": f"{settings.lesson_mount_path}/{CHECKS_FILE}"},
        {"name": jobenv.CREDENTIALS_DIR, "value": CREDENTIALS_PATH},
        {"name": "HOME", "value": "/tmp"},
        *[{"name": jobenv.host_variable(endpoint), "value": endpoint} for endpoint in endpoints],
    ]
    container = {
        "name": "verify",
        "image": settings.configurator_image,
        "imagePullPolicy": settings.image_pull_policy,
        "command": ["syringe", "verify", "--stage", str(stage), "--timeout", str(settings.job_timeout_seconds)],
        "env": env,
        "resources": {"requests": {"cpu": settings.job_cpu, "memory": settings.job_memory}},
        "terminationMessagePolicy": "File",
        "securityContext": CONTAINER_SECURITY,
        "volumeMounts": [
            {"name": "lesson-files", "mountPath": settings.lesson_mount_path, "readOnly": True},
            {"name": "credentials", "mountPath": CREDENTIALS_PATH, "readOnly": True},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
    }
    credentials = {"name": "credentials", "secret": {"secretName": CREDENTIALS_SECRET, "defaultMode": 0o440}}
    return _job(name, plan, job_labels, container, [credentials], 0, settings)


CONFIGURATION_JOB_PREFIX = "config-s"


def job_name(stage: int, endpoint: str, run: str) -> str:
    return f"{CONFIGURATION_JOB_PREFIX}{stage}-r{run}-{endpoint}"[:63].rstrip("-")


def is_configuration_job(name: str) -> bool:
    """Whether a Job's name is a configuration Job's (job_name), not a verification Job's."""
    return name.startswith(CONFIGURATION_JOB_PREFIX)


def configured_through(endpoint: Endpoint) -> Presentation | None:
    """The presentation a configurator of the endpoint reaches it through: NETCONF for a netconf
    configuration, SSH for ansible and napalm; for python, SSH where the endpoint presents it, else its
    first presentation (a configurator that calls a REST API). None when the endpoint does not present it."""
    wanted = "netconf" if endpoint.configuration_type == "netconf" else "ssh"
    found = next((p for p in endpoint.presentations if p.type == wanted), None)
    if found is None and endpoint.configuration_type == "python" and endpoint.presentations:
        return endpoint.presentations[0]
    return found


def _target_protocol(endpoint: Endpoint) -> str:
    presentation = configured_through(endpoint)
    if presentation is not None:
        return presentation.type
    return "netconf" if endpoint.configuration_type == "netconf" else "ssh"


def _target_port(endpoint: Endpoint) -> int:
    presentation = configured_through(endpoint)
    if presentation is not None:
        return presentation.port
    return 830 if endpoint.configuration_type == "netconf" else 22


def configuration_jobs(
    lesson: Lesson,
    plan: Plan,
    stage: int,
    run: str,
    settings: PlanSettings,
    wait_for_target: int = 0,
    done_token: str | None = None,
) -> list[K8sObject]:
    """The Jobs that configure ``stage``: ``run`` names each stage change, so every change runs anew. With
    ``wait_for_target`` seconds, each first waits that long for its endpoint to answer: Jobs started while
    the endpoints boot, so that their pods are up and waiting by the time the endpoints are. With
    ``done_token`` (a secret of the caller's), each says it succeeded in its log (jobenv.done_line)."""
    jobs = []
    for endpoint in lesson.endpoints:
        kind = endpoint.configuration_type
        if kind is None:
            continue
        name = job_name(stage, endpoint.name, run)
        job_labels = {
            **plan.common_labels,
            labels.ENDPOINT: endpoint.name,
            labels.PURPOSE: CONFIGURATION,
            labels.STAGE: str(stage),
        }
        secret = {"name": CREDENTIALS_SECRET}
        env: list[dict[str, Any]] = [
            # The endpoint's Service: the Job runs in the lesson's namespace, where its name resolves.
            {"name": jobenv.TARGET_HOST, "value": endpoint.name},
            {"name": jobenv.TARGET_PORT, "value": str(_target_port(endpoint))},
            {"name": jobenv.TARGET_PROTOCOL, "value": _target_protocol(endpoint)},
            {
                "name": jobenv.TARGET_USER,
                "valueFrom": {"secretKeyRef": {**secret, "key": f"{endpoint.name}.username"}},
            },
            {
                "name": jobenv.TARGET_PASSWORD,
                "valueFrom": {"secretKeyRef": {**secret, "key": f"{endpoint.name}.password"}},
            },
            {"name": jobenv.LESSON_DIR, "value": settings.lesson_mount_path},
            {"name": jobenv.TOPOLOGY, "value": f"{settings.lesson_mount_path}/{TOPOLOGY_FILE}"},
            {"name": "HOME", "value": "/tmp"},
            *([{"name": jobenv.DONE_TOKEN, "value": done_token}] if done_token else []),
        ]
        cpu, memory = millicores(settings.job_cpu), mebibytes(settings.job_memory)
        container = {
            "name": "configure",
            "image": settings.configurator_image,
            "imagePullPolicy": settings.image_pull_policy,
            "command": [
                "syringe",
                "configure",
                "--type",
                kind,
                "--endpoint",
                endpoint.name,
                "--stage",
                str(stage),
                "--timeout",
                str(settings.job_timeout_seconds),
                "--napalm-mode",
                settings.napalm_mode,
                *(["--wait-for-target", str(wait_for_target)] if wait_for_target else []),
            ],
            "env": env,
            "resources": {
                "requests": {"cpu": settings.job_cpu, "memory": settings.job_memory},
                "limits": {"cpu": format_millicores(cpu * 2), "memory": format_mebibytes(memory * 2)},
            },
            # The tail of a failure's output reaches the Job's pod status, where Syringe reads it.
            "terminationMessagePolicy": "FallbackToLogsOnError",
            "securityContext": CONTAINER_SECURITY,
            "volumeMounts": [
                {"name": "lesson-files", "mountPath": settings.lesson_mount_path, "readOnly": True},
                {"name": "tmp", "mountPath": "/tmp"},
            ],
        }
        job = _job(name, plan, job_labels, container, [], settings.job_backoff_limit, settings)
        job["spec"]["activeDeadlineSeconds"] += wait_for_target
        jobs.append(job)
    return jobs
