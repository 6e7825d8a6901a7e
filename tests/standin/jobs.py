"""Running a configuration Job's pod for real: its command and env, its mounts materialized."""

from __future__ import annotations

import asyncio
import base64
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from kubernetes import client

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


def _service_address(core: client.CoreV1Api, namespace: str, name: str) -> str:
    """What cluster DNS and kube-proxy would make of a Service name here: its endpoint pod's address."""
    for pod in core.list_namespaced_pod(namespace, label_selector=f"syringe.io/endpoint={name}").items:
        if not (pod.metadata.labels or {}).get("syringe.io/purpose") and pod.status.pod_ip:
            return str(pod.status.pod_ip)
    return name


def prepare(core: client.CoreV1Api, pod: Any, workdir: Path) -> tuple[list[str], dict[str, str]]:
    namespace = pod.metadata.namespace
    container = pod.spec.containers[0]
    volumes = {v.name: v for v in pod.spec.volumes or []}
    mounts: dict[str, str] = {}
    for mount in container.volume_mounts or []:
        local = workdir / mount.name
        local.mkdir(parents=True, exist_ok=True)
        volume = volumes.get(mount.name)
        if volume is not None and volume.projected is not None:
            _materialize(core, namespace, volume, local)
        if volume is not None and volume.secret is not None:
            secret = core.read_namespaced_secret(volume.secret.secret_name, namespace)
            for key, value in (secret.data or {}).items():
                (local / key).write_bytes(base64.b64decode(value))
        mounts[mount.mount_path] = str(local)
    env = {"PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '/usr/bin:/bin')}"}
    for variable in container.env or []:
        value = variable.value
        if variable.value_from is not None and variable.value_from.secret_key_ref is not None:
            ref = variable.value_from.secret_key_ref
            secret = core.read_namespaced_secret(ref.name, namespace)
            value = base64.b64decode((secret.data or {})[ref.key]).decode()
        value = value or ""
        for path, local in sorted(mounts.items(), key=lambda item: -len(item[0])):
            if value == path or value.startswith(path + "/"):
                value = local + value[len(path) :]
                break
        env[variable.name] = value
    for name in [n for n in env if n == "SYRINGE_TARGET_HOST" or n.startswith("SYRINGE_HOST_")]:
        env[name] = _service_address(core, namespace, env[name])
    # Where the container's termination message file would be; read back when the process ends.
    env["SYRINGE_TERMINATION_LOG"] = str(workdir / "termination-log")
    command = list(container.command or []) + list(container.args or [])
    if command and command[0] == "syringe":
        command = [sys.executable, "-m", "syringe.cli", *command[1:]]
    return command, env


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
