"""Running a configuration Job's pod for real: its command and env, its mounts materialized."""

from __future__ import annotations

import asyncio
import base64
import tempfile
from pathlib import Path
from typing import Any

from kubernetes import client

from syringe.runtime.local.jobs import Reach, command_of, job_environment

MESSAGE_LIMIT = 2048  # what a kubelet keeps of a termination message


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
    for pod in core.list_namespaced_pod(namespace, label_selector="syringe.io/endpoint").items:
        labels = pod.metadata.labels or {}
        if not labels.get("syringe.io/purpose") and pod.status.pod_ip:
            reach[labels["syringe.io/endpoint"]] = Reach(str(pod.status.pod_ip), {})
    return reach


def prepare(core: client.CoreV1Api, pod: Any, workdir: Path) -> tuple[list[str], dict[str, str]]:
    """The pod's command and env, as the local runtime makes them (the same code), with the pod's
    mounts, Secrets and Service names taken from the cluster."""
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
    env = job_environment(container, secrets, mounts, _endpoint_addresses(core, namespace))
    # Where the container's termination message file would be; read back when the process ends.
    env["SYRINGE_TERMINATION_LOG"] = str(workdir / "termination-log")
    return command_of(container), env


def _read_if_there(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


async def run_job_pod(core: client.CoreV1Api, pod: Any, timeout: float = 600) -> tuple[int, str, str]:
    """Runs the pod's container command as a local process; returns its exit code, its output and what it
    wrote to its termination log."""
    with tempfile.TemporaryDirectory(prefix="syringe-job-") as directory:
        command, env = await asyncio.to_thread(prepare, core, pod, Path(directory))
        process = await asyncio.create_subprocess_exec(
            *command, env=env, cwd=directory, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
        )
        try:
            output, _ = await asyncio.wait_for(process.communicate(), timeout)
        except TimeoutError:
            process.kill()
            return 137, "killed: the Job's deadline passed", ""
        written = await asyncio.to_thread(_read_if_there, Path(env["SYRINGE_TERMINATION_LOG"]))
        return process.returncode or 0, output.decode(errors="replace"), written
