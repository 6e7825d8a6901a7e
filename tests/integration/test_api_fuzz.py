"""Schema fuzzing: schemathesis generates requests from the OpenAPI document of a running Syringe
(authenticated, against the real control plane) and none may be answered with a server error."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.integration.helpers import REPO, StandInProcess, failure_curriculum

pytestmark = pytest.mark.integration
ADMIN = "admin-secret-for-fuzzing"
EXAMPLES_PER_OPERATION = 60
MINIMUM_REQUESTS = 500


@pytest.fixture(scope="module")
def served(standin: StandInProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    curriculum = failure_curriculum(tmp_path_factory.mktemp("fuzz") / "curriculum")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {
        **os.environ,
        "SYRINGE_CURRICULUM": str(curriculum),
        "SYRINGE_KUBECONFIG": os.environ["SYRINGE_TEST_KUBECONFIG"],
        "SYRINGE_PLAN__INSTANCE": f"fz{os.getpid()}",
        "SYRINGE_PLAN__IMAGE_REGISTRY": "test",
        "SYRINGE_LIFECYCLE__ADDRESS_MODE": "pod-ip",
        "SYRINGE_ADMIN_TOKEN": ADMIN,
    }
    log_path = curriculum.parent / "serve.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "syringe.cli", "serve", "--port", str(port)],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            for _ in range(300):
                try:
                    if httpx.get(f"{base}/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.1)
            yield base
        finally:
            process.terminate()
            process.wait(30)
    server_log = log_path.read_text()
    assert "Traceback" not in server_log, server_log[-4000:]


def _fuzz(operation: Any, bearer: str, base: str, statuses: Counter[int], failures: list[str]) -> None:
    """Send generated requests (valid and invalid, with and without the token) to one operation."""
    strategy = st.one_of(
        operation.as_strategy(schemathesis.GenerationMode.POSITIVE),
        operation.as_strategy(schemathesis.GenerationMode.NEGATIVE),
    )

    @settings(
        max_examples=EXAMPLES_PER_OPERATION, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck)
    )
    @given(case=strategy, authenticated=st.booleans())
    def check(case: schemathesis.Case, authenticated: bool) -> None:
        headers = {"Authorization": f"Bearer {bearer}"} if authenticated else {}
        response = case.call(base_url=base, headers=headers, timeout=30)
        statuses[response.status_code] += 1
        if response.status_code >= 500:
            failures.append(f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:300]}")
        if response.status_code >= 400:
            content_type = response.headers.get("content-type") or [""]
            assert content_type[0] == "application/problem+json", case.formatted_path

    check()


def test_generated_requests_get_no_server_errors(served: str) -> None:
    token = httpx.post(f"{served}/api/v1/sessions").json()["token"]
    schema = schemathesis.openapi.from_url(f"{served}/openapi.json")
    statuses: Counter[int] = Counter()
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 15

    for operation in operations:
        if operation.path.endswith("/events"):
            continue  # a stream: exercised by the journey tests
        bearer = ADMIN if operation.path.startswith("/api/v1/admin") else token
        _fuzz(operation, bearer, served, statuses, failures)
    total = sum(statuses.values())
    print(f"schemathesis: {total} requests, statuses {dict(sorted(statuses.items()))}")
    assert not failures, failures[:5]
    assert total >= MINIMUM_REQUESTS
    assert any(200 <= status < 300 for status in statuses)
