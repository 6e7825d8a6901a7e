"""Observing: Kubernetes objects (pods, Jobs, namespaces) turned into observations a person can act on.
Pure: no API calls.

Objects are the API server's JSON (dicts with camelCase keys): the runtime skips the client's model
classes, whose deserialisation costs more CPU than anything else Syringe does per event.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from syringe.plan import labels, podenv
from syringe.runtime.base import (
    EndpointObservation,
    Exposure,
    JobObservation,
    JobPodObservation,
    LiveLessonRecord,
    Reach,
)

# Waiting reasons after which a container will not start without someone changing something.
FATAL_WAITING = {
    "ErrImagePull": "pulling the image failed",
    "ImagePullBackOff": "pulling the image failed",
    "InvalidImageName": "the image name is invalid",
    "ErrImageNeverPull": "the image is not on the node and the pull policy is Never",
    "CreateContainerConfigError": "the container's configuration is invalid",
    "CreateContainerError": "the container could not be created",
    "CrashLoopBackOff": "the container keeps crashing",
    "RunContainerError": "the container could not be started",
}


def _get(obj: Any, *path: str) -> Any:
    for name in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(name)
    return obj


def identity_assigned(pod: Any, endpoint: str) -> bool:
    """Whether the pod itself gives the endpoint its identity, so that no login is needed for it: its hostname
    is in the spec, and every attachment's address is either in its network selection (static IPAM) or given
    to the VM by the wrapper's launcher."""
    if _get(pod, "spec", "hostname") != endpoint:
        return False
    try:
        selections = json.loads((_get(pod, "metadata", "annotations") or {}).get(labels.NETWORKS) or "[]")
    except ValueError:
        return False
    if not isinstance(selections, list):
        return False
    if all(isinstance(s, dict) and s.get("ips") for s in selections):
        return True
    containers = _get(pod, "spec", "containers") or []
    return any(_get(v, "name") == podenv.VM_ADDRESSES for c in containers for v in _get(c, "env") or [])


def observe_pod(
    pod: Any,
    reach: Callable[[str, str, str | None], Reach | None] = lambda namespace, endpoint, pod_ip: None,
    exposure: Exposure | None = None,
) -> EndpointObservation | None:
    """An observation of a lesson pod, or None for pods that are not endpoints. ``reach`` says where Syringe
    dials the endpoint (given its namespace, name and pod IP); ``exposure`` where learners' clients do."""
    pod_labels = _get(pod, "metadata", "labels") or {}
    endpoint = pod_labels.get(labels.ENDPOINT)
    if not endpoint or pod_labels.get(labels.PURPOSE):
        return None
    namespace = _get(pod, "metadata", "namespace")
    status = _get(pod, "status")
    phase = _get(status, "phase") or "Pending"
    if _get(pod, "metadata", "deletionTimestamp"):
        phase = "Terminating"
    conditions = _get(status, "conditions") or []
    ready = any(_get(c, "type") == "Ready" and _get(c, "status") == "True" for c in conditions)
    reason = message = None
    fatal = False
    for container in _get(status, "containerStatuses") or []:
        waiting = _get(container, "state", "waiting")
        terminated = _get(container, "state", "terminated")
        if waiting is not None and _get(waiting, "reason"):
            reason = _get(waiting, "reason")
            detail = _get(waiting, "message") or ""
            explanation = FATAL_WAITING.get(reason)
            if explanation:
                fatal = True
                image = _get(container, "image") or ""
                message = f"{explanation} ({image}): {detail}".rstrip(": ") if image else detail
                # A crashing container's last words (its termination message, or its log's end).
                last = str(_get(container, "lastState", "terminated", "message") or "").strip()
                if last:
                    message = f"{message}; it said: {last.splitlines()[-1][:300]}"
            else:
                message = detail or None
        elif terminated is not None and phase not in ("Running",):
            reason = _get(terminated, "reason") or "Terminated"
            message = f"exit code {_get(terminated, 'exitCode')}: {_get(terminated, 'message') or ''}".strip()
    if phase == "Failed":
        fatal = True
        reason = reason or _get(status, "reason") or "Failed"
        message = message or _get(status, "message")
    if reason is None:
        for condition in conditions:
            if _get(condition, "type") == "PodScheduled" and _get(condition, "status") == "False":
                reason = _get(condition, "reason") or "Unschedulable"
                message = _get(condition, "message")
    return EndpointObservation(
        namespace=namespace,
        endpoint=endpoint,
        phase=phase,
        ready=ready,
        reason=reason,
        message=message,
        fatal=fatal,
        reach=reach(namespace, endpoint, _get(status, "podIP")),
        exposure=exposure,
        identity_assigned=identity_assigned(pod, endpoint),
    )


def observe_job_pod(pod: Any) -> JobPodObservation | None:
    """A configuration Job's pod: its phase, and the termination message a failed container left."""
    pod_labels = _get(pod, "metadata", "labels") or {}
    job = pod_labels.get("job-name")
    if not pod_labels.get(labels.PURPOSE) or not job:
        return None
    message = None
    for container in _get(pod, "status", "containerStatuses") or []:
        terminated = _get(container, "state", "terminated")
        if terminated is not None and _get(terminated, "message"):
            message = str(_get(terminated, "message")).strip()
    return JobPodObservation(
        namespace=_get(pod, "metadata", "namespace"),
        job=job,
        phase=_get(pod, "status", "phase") or "Pending",
        message=message,
    )


def observe_job(job: Any) -> JobObservation:
    status = _get(job, "status")
    conditions = _get(status, "conditions") or []
    failed = any(_get(c, "type") == "Failed" and _get(c, "status") == "True" for c in conditions)
    succeeded = bool(_get(status, "succeeded")) or any(
        _get(c, "type") == "Complete" and _get(c, "status") == "True" for c in conditions
    )
    return JobObservation(
        namespace=_get(job, "metadata", "namespace"),
        name=_get(job, "metadata", "name"),
        succeeded=succeeded,
        failed=failed,
    )


def observe_namespace(namespace: Any, endpoints: list[EndpointObservation] | None = None) -> LiveLessonRecord:
    """A live lesson's namespace as a record: its labels, its state (annotations), whether it is going."""
    metadata = namespace["metadata"]
    return LiveLessonRecord(
        namespace=metadata["name"],
        labels=dict(metadata.get("labels") or {}),
        annotations=dict(metadata.get("annotations") or {}),
        terminating=bool(metadata.get("deletionTimestamp")),
        endpoints=endpoints if endpoints is not None else [],
    )
