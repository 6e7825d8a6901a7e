"""A live lesson's Jobs (configuration, verification), run as local processes: what a kubelet would do
with the Job's one container, its env and its mounts, with no cluster."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from syringe.plan.jobs import host_variable, ports_variable

MESSAGE_LIMIT = 4000  # what a kubelet keeps of a termination message


@dataclass(frozen=True)
class Reach:
    """Where Syringe's machine reaches one endpoint: an address, and a local port for each served port."""

    address: str
    ports: Mapping[int, int]


@dataclass(frozen=True)
class JobOutcome:
    exit_code: int
    message: str  # the termination message: what it wrote there, else the tail of its output on failure


def selector_matches(selector: str, job_labels: Mapping[str, str]) -> bool:
    """An equality-based label selector ("a=b,c=d"), as Syringe writes them."""
    for term in filter(None, (part.strip() for part in selector.split(","))):
        key, _, value = term.partition("=")
        if job_labels.get(key.strip()) != value.strip():
            return False
    return True


def command_of(container: Mapping[str, Any]) -> list[str]:
    """The container's command line, run by this machine's Python where it is `syringe`."""
    command = [*container.get("command", []), *container.get("args", [])]
    if command and command[0] == "syringe":
        # This machine's Syringe is the configurator image.
        command = [sys.executable, "-m", "syringe.cli", *command[1:]]
    return command


def job_environment(
    container: Mapping[str, Any],
    secret: Mapping[str, str],
    mounts: Mapping[str, Path],
    reach: Mapping[str, Reach],
) -> dict[str, str]:
    """A Job container's env (as JSON, camelCase) as the process must see it: secrets resolved, mount
    paths made local, and endpoint names (Services, in a cluster) made addresses and ports it reaches."""
    env = {"PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '/usr/bin:/bin')}"}
    for variable in container.get("env", []):
        value = variable.get("value", "")
        reference = (variable.get("valueFrom") or {}).get("secretKeyRef")
        if reference is not None:
            value = secret.get(reference["key"], "")
        for path, local in sorted(mounts.items(), key=lambda item: -len(item[0])):
            if value == path or value.startswith(path + "/"):
                value = str(local) + value[len(path) :]
                break
        env[variable["name"]] = value
    target = reach.get(env.get("SYRINGE_TARGET_HOST", ""))
    if target is not None:
        port = int(env.get("SYRINGE_TARGET_PORT", "22"))
        env["SYRINGE_TARGET_HOST"] = target.address
        env["SYRINGE_TARGET_PORT"] = str(target.ports.get(port, port))
    for endpoint, where in reach.items():
        if host_variable(endpoint) in env:
            env[host_variable(endpoint)] = where.address
            env[ports_variable(endpoint)] = ",".join(f"{a}={b}" for a, b in sorted(where.ports.items()))
    return env


async def run_job(
    job: Mapping[str, Any],
    lesson_dir: Path,
    secret: Mapping[str, str],
    reach: Mapping[str, Reach],
    on_start: Callable[[asyncio.subprocess.Process], None] | None = None,
) -> JobOutcome:
    """Run the Job's container command to its end, within the Job's deadline."""
    spec = job["spec"]
    container = spec["template"]["spec"]["containers"][0]
    deadline = float(spec.get("activeDeadlineSeconds", 600))
    volumes = {v["name"]: v for v in spec["template"]["spec"].get("volumes", [])}
    workdir = Path(tempfile.mkdtemp(prefix="syringe-job-"))
    try:
        mounts: dict[str, Path] = {}
        for mount in container.get("volumeMounts", []):
            volume = volumes.get(mount["name"], {})
            if "projected" in volume:
                mounts[mount["mountPath"]] = lesson_dir
            else:
                local = workdir / mount["name"]
                local.mkdir()
                if "secret" in volume:
                    for key, value in secret.items():
                        (local / key).write_text(value)
                mounts[mount["mountPath"]] = local
        env = job_environment(container, secret, mounts, reach)
        log = workdir / "termination-log"
        env["SYRINGE_TERMINATION_LOG"] = str(log)
        process = await asyncio.create_subprocess_exec(
            *command_of(container),
            env=env,
            cwd=workdir,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        if on_start is not None:
            on_start(process)
        try:
            output, _ = await asyncio.wait_for(process.communicate(), deadline)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
            return JobOutcome(137, f"the Job's deadline of {deadline:.0f}s passed")
        written = log.read_text(errors="replace") if log.exists() else ""
        code = process.returncode or 0
        if code < 0:
            return JobOutcome(128 - code, written or "stopped")
        tail = output.decode(errors="replace")[-MESSAGE_LIMIT:] if code else ""
        return JobOutcome(code, (written or tail)[-MESSAGE_LIMIT:])
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
