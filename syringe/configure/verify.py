"""`syringe verify`: run a stage's learner checks and report each result, for the learner to read.

A failed check is a result, not an error: the command exits 0 whenever it could run the checks. The
results go, as JSON, to the termination log, where Syringe reads them from the Job's pod status.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from syringe.access.ssh import login
from syringe.errors import ConfigureError, LoginFailed
from syringe.plan import jobenv
from syringe.plan.jobs import CREDENTIALS_PATH
from syringe.plan.volume import CHECKS_FILE


def _credentials(endpoint: str) -> tuple[str, str]:
    directory = Path(os.environ.get(jobenv.CREDENTIALS_DIR, CREDENTIALS_PATH))
    try:
        return (directory / f"{endpoint}.username").read_text(), (directory / f"{endpoint}.password").read_text()
    except OSError as exc:
        raise ConfigureError(f"no credentials for {endpoint} in {directory}") from exc


def _host(endpoint: str) -> str:
    return os.environ.get(jobenv.host_variable(endpoint), endpoint)


def _port(endpoint: str, served: int) -> int:
    return jobenv.parse_ports(os.environ.get(jobenv.ports_variable(endpoint), "")).get(served, served)


async def _command_check(check: dict[str, Any], timeout: float) -> tuple[bool, str]:
    user, password = _credentials(check["endpoint"])
    try:
        connection = await login(_host(check["endpoint"]), _port(check["endpoint"], 22), user, password, timeout)
    except LoginFailed as exc:
        return False, f"could not reach {check['endpoint']}: {exc}"
    async with connection:
        result = await asyncio.wait_for(connection.run(check["command"]), timeout)
    output = "".join(str(part) for part in (result.stdout, result.stderr) if part)
    if check.get("expect"):
        if re.search(check["expect"], str(output), re.MULTILINE):
            return True, check.get("description") or "passed"
        return False, f"expected /{check['expect']}/ in the output of `{check['command']}`; got: {str(output)[-300:]}"
    if result.exit_status == 0:
        return True, check.get("description") or "passed"
    return False, f"`{check['command']}` exited with status {result.exit_status}: {str(output)[-300:]}"


def _script_check(check: dict[str, Any], stage: int, timeout: float) -> tuple[bool, str]:
    user, password = _credentials(check["endpoint"])
    script = Path(os.environ.get(jobenv.LESSON_DIR, "/antidote")) / f"stage{stage}" / "checks" / check["script"]
    env = {
        **os.environ,
        jobenv.TARGET_HOST: _host(check["endpoint"]),
        jobenv.TARGET_PORT: str(_port(check["endpoint"], 22)),
        jobenv.TARGET_USER: user,
        jobenv.TARGET_PASSWORD: password,
        jobenv.STAGE: str(stage),
    }
    try:
        done = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return False, f"{check['script']} did not finish within {timeout:g}s"
    last = (done.stdout.strip().splitlines() or [""])[-1]
    if done.returncode == 0:
        return True, last or check.get("description") or "passed"
    return False, last or (done.stderr.strip().splitlines() or ["failed"])[-1]


async def _run(checks: list[dict[str, Any]], stage: int, timeout: float) -> list[dict[str, Any]]:
    results = []
    for check in checks:
        if check.get("command"):
            passed, message = await _command_check(check, timeout)
        else:
            passed, message = await asyncio.to_thread(_script_check, check, stage, timeout)
        results.append(
            {"name": check["name"], "description": check.get("description", ""), "passed": passed, "message": message}
        )
    return results


def verify(stage: int, timeout: float) -> list[dict[str, Any]]:
    path = Path(os.environ.get(jobenv.CHECKS, f"/antidote/{CHECKS_FILE}"))
    try:
        checks = json.loads(path.read_text()).get(str(stage), [])
    except (OSError, ValueError) as exc:
        raise ConfigureError(f"cannot read the checks in {path}: {exc}") from exc
    results = asyncio.run(_run(checks, stage, timeout))
    report = {"stage": stage, "results": results}
    text = json.dumps(report)
    while len(text.encode()) > jobenv.TERMINATION_MESSAGE_LIMIT:  # shorten messages until the report fits
        for result in report["results"]:  # type: ignore[attr-defined]
            result["message"] = result["message"][: max(20, len(result["message"]) // 2)]
        text = json.dumps(report)
    Path(os.environ.get(jobenv.TERMINATION_LOG, jobenv.TERMINATION_MESSAGE_PATH)).write_text(text)
    return results
