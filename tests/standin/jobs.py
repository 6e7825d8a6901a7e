"""Running a configuration Job's pod for real, as the local runtime runs a Job (the same code:
`syringe.runtime.local.jobs.run_container`). What is left here is what only a pod on a cluster has: its
mounts, Secrets and Service names, read from the API server."""

from __future__ import annotations

import asyncio
import base64
import tempfile
from pathlib import Path
from typing import Any

from kubernetes import client

from syringe.plan import labels
from syringe.runtime.base import Reach
from syringe.runtime.local.jobs import JobOutcome, run_container

# A Job's pod gets no deadline of its own (the Job controller enforces activeDeadlineSeconds by deleting it);
# the stand-in stops a process that outlives this.
DEADLINE = 600.0


def _materialize(core: client.CoreV1Api, namespace: str, volume: Any, into: Path) -> None:
    """A projected volume of ConfigMaps, written where the pod would see it."""
    for source in volume.projected.sources or []:
        config_map = core.read_namespaced_config_map(source.config_map.name, namespace)
        for item in source.config_map.items or []:
            target = into / item.path
            target.parent.mkdir(parents=True, exist_ok=True)
            if config_map.data and item.key in config_map.data:
                target.write_text(config_map.data[item.key])
            elif config_map.binary_data and item.key in config_map.binary_data:
                target.write_bytes(base64.b64decode(config_map.binary_data[item.key]))


def _endpoint_addresses(core: client.CoreV1Api, namespace: str) -> dict[str, Reach]:
    """What cluster DNS and kube-proxy would make of each endpoint's Service name: its pod's address."""
    reach = {}
    for pod in core.list_namespaced_pod(namespace, label_selector=labels.ENDPOINT).items:
        pod_labels = pod.metadata.labels or {}
        if not pod_labels.get(labels.PURPOSE) and pod.status.pod_ip:
            reach[pod_labels[labels.ENDPOINT]] = Reach(str(pod.status.pod_ip))
    return reach


def prepare(
    core: client.CoreV1Api, pod: Any, workdir: Path
) -> tuple[dict[str, Any], dict[str, str], dict[str, Path], dict[str, Reach]]:
    """The pod's container (as JSON), the Secret values its env refers to, its mounts materialized under
    ``workdir``, and where its Service names lead: all read from the cluster."""
    namespace = pod.metadata.namespace
    container: dict[str, Any] = core.api_client.sanitize_for_serialization(pod.spec.containers[0])
    volumes = {v.name: v for v in pod.spec.volumes or []}
    mounts: dict[str, Path] = {}
    for mount in pod.spec.containers[0].volume_mounts or []:
        local = workdir / mount.name
        local.mkdir(parents=True, exist_ok=True)
        volume = volumes.get(mount.name)
        if volume is not None and volume.projected is not None:
            _materialize(core, namespace, volume, local)
        if volume is not None and volume.secret is not None:
            secret = core.read_namespaced_secret(volume.secret.secret_name, namespace)
            for key, value in (secret.data or {}).items():
                (local / key).write_bytes(base64.b64decode(value))
        mounts[mount.mount_path] = local
    secrets: dict[str, str] = {}
    for name in {v["valueFrom"]["secretKeyRef"]["name"] for v in container.get("env", []) if "valueFrom" in v}:
        stored = core.read_namespaced_secret(name, namespace)
        secrets.update({k: base64.b64decode(v).decode() for k, v in (stored.data or {}).items()})
    return container, secrets, mounts, _endpoint_addresses(core, namespace)


async def run_job_pod(core: client.CoreV1Api, pod: Any, deadline: float = DEADLINE) -> JobOutcome:
    """Runs the pod's container command as a local process, to its end."""
    with tempfile.TemporaryDirectory(prefix="syringe-job-") as directory:
        container, secrets, mounts, reach = await asyncio.to_thread(prepare, core, pod, Path(directory))
        return await run_container(container, secrets, mounts, reach, Path(directory), deadline)
