"""A live lesson's Jobs (configuration, verification), run as local processes: what a kubelet would do
with the Job's one container, its env and its mounts, with no cluster.

`run_container` is the one way a Job's container runs as a process on this machine. The local runtime
calls it through `run_job`, with the mounts made from its own files and, since what a Job runs is the
lesson's code, in a sandbox (sandbox.py); the tests' pod stand-in calls it with the mounts it materialized
from the API server (tests/standin/jobs.py), with no sandbox: it plays a kubelet, whose pods are theirs.
"""

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

from syringe.plan import jobenv
from syringe.runtime.base import Reach
from syringe.runtime.local.sandbox import Sandbox, relays_to
from syringe.runtime.local.state import read_tail

FALLBACK_TO_LOGS = "FallbackToLogsOnError"


@dataclass(frozen=True)
class JobOutcome:
    """How a Job's container ended. Messages are capped at jobenv.TERMINATION_MESSAGE_LIMIT, keeping their end."""

    exit_code: int
    # The termination message off-cluster: what the process wrote to its termination log, else the tail of
    # its output on failure, whatever the container's terminationMessagePolicy.
    message: str
    written: str = ""  # what the process wrote to its termination log
    output: str = ""  # the tail of its output when it failed (or why it was stopped at its deadline)

    def reported(self, policy: str | None) -> str:
        """The termination message a kubelet reports: the termination log, else the output's tail, but only
        for a failure under the FallbackToLogsOnError policy."""
        if self.written:
            return self.written
        return self.output if policy == FALLBACK_TO_LOGS else ""


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
    target = reach.get(env.get(jobenv.TARGET_HOST, ""))
    if target is not None:
        port = int(env.get(jobenv.TARGET_PORT, "22"))
        env[jobenv.TARGET_HOST] = target.host
        env[jobenv.TARGET_PORT] = str(target.port(port))
    for endpoint, where in reach.items():
        if jobenv.host_variable(endpoint) in env:
            env[jobenv.host_variable(endpoint)] = where.host
            env[jobenv.ports_variable(endpoint)] = jobenv.format_ports(where.ports)
    return env


async def _tail(stream: asyncio.StreamReader, limit: int) -> bytes:
    """Everything the stream says, of which only the last ``limit`` bytes are kept: a job that prints
    without end costs no memory."""
    kept = bytearray()
    while chunk := await stream.read(64 * 1024):
        kept += chunk
        if len(kept) > 2 * limit:
            del kept[:-limit]
    return bytes(kept[-limit:])


def _last(data: bytes) -> str:
    return data.decode(errors="replace")[-jobenv.TERMINATION_MESSAGE_LIMIT :]


async def run_container(
    container: Mapping[str, Any],
    secret: Mapping[str, str],
    mounts: Mapping[str, Path],
    reach: Mapping[str, Reach],
    workdir: Path,
    deadline: float,
    on_start: Callable[[asyncio.subprocess.Process], None] | None = None,
    sandbox: Sandbox | None = None,
) -> JobOutcome:
    """Run a Job's container (as JSON, camelCase) as a local process to its end, within ``deadline`` seconds:
    its env resolved by `job_environment` against ``secret``, the ``mounts`` already materialized (mount path
    -> local directory), and ``workdir`` (which the caller owns) as its working directory and the home of its
    termination log. With a ``sandbox``, the process runs in it (sandbox.py): as its unprivileged user, the
    mounts read-only, ``workdir`` its only writable directory on disk, and only ``reach``'s ports reachable."""
    env = job_environment(container, secret, mounts, reach)
    log = workdir / "termination-log"
    env[jobenv.TERMINATION_LOG] = str(log)
    async with contextlib.AsyncExitStack() as stack:
        command = command_of(container)
        if sandbox is not None:
            relays = await stack.enter_async_context(relays_to(reach))
            await asyncio.to_thread(sandbox.hand_over, workdir)
            command = sandbox.command(command, workdir, mounts.values(), relays)
        process = await asyncio.create_subprocess_exec(
            *command,
            env=env,
            cwd=workdir,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        if on_start is not None:
            on_start(process)
        assert process.stdout is not None
        # UTF-8 takes at most 4 bytes a character: enough bytes for the message's characters.
        output = asyncio.ensure_future(_tail(process.stdout, 4 * jobenv.TERMINATION_MESSAGE_LIMIT))
        try:
            await asyncio.wait_for(asyncio.gather(asyncio.shield(output), process.wait()), deadline)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
            expired = f"the Job's deadline of {deadline:.0f}s passed"
            return JobOutcome(137, expired, output=expired)
        finally:
            if not output.done():
                output.cancel()
    # The job may have made its termination log a link, a FIFO or a hard link to a file it cannot read.
    written = _last(await asyncio.to_thread(read_tail, log, 4 * jobenv.TERMINATION_MESSAGE_LIMIT))
    code = process.returncode or 0
    tail = _last(output.result()) if code else ""
    if code < 0:
        return JobOutcome(128 - code, written or "stopped", written, tail)
    return JobOutcome(code, written or tail, written, tail)


async def run_job(
    job: Mapping[str, Any],
    lesson_dir: Path,
    secret: Mapping[str, str],
    reach: Mapping[str, Reach],
    on_start: Callable[[asyncio.subprocess.Process], None] | None = None,
    sandbox: Sandbox | None = None,
    scratch: Path | None = None,
) -> JobOutcome:
    """Run the Job's container to its end, within the Job's deadline: the lesson's files as its projected
    volume, the credentials Secret as files in its secret volume, its working directory made in ``scratch``
    (a directory no one else may enter), in the ``sandbox`` when there is one."""
    spec = job["spec"]
    container = spec["template"]["spec"]["containers"][0]
    deadline = float(spec.get("activeDeadlineSeconds", 600))
    volumes = {v["name"]: v for v in spec["template"]["spec"].get("volumes", [])}
    workdir = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="syringe-job-", dir=scratch))
    try:
        mounts = await asyncio.to_thread(_materialize, container, volumes, lesson_dir, secret, workdir)
        return await run_container(container, secret, mounts, reach, workdir, deadline, on_start, sandbox)
    finally:
        await asyncio.to_thread(shutil.rmtree, workdir, True)


def _materialize(
    container: Mapping[str, Any],
    volumes: Mapping[str, Mapping[str, Any]],
    lesson_dir: Path,
    secret: Mapping[str, str],
    workdir: Path,
) -> dict[str, Path]:
    """The container's mounts as local directories: the projected volume is the lesson's files; any other
    volume a new directory in ``workdir``, holding the Secret's values as files for a secret volume."""
    mounts: dict[str, Path] = {}
    for mount in container.get("volumeMounts", []):
        volume = volumes.get(mount["name"], {})
        if "projected" in volume:
            mounts[mount["mountPath"]] = lesson_dir
            continue
        local = workdir / mount["name"]
        local.mkdir()
        if "secret" in volume:
            for key, value in secret.items():
                (local / key).write_text(value)
        mounts[mount["mountPath"]] = local
    return mounts
