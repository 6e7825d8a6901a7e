"""Schema fuzzing: schemathesis generates requests from the OpenAPI document of a running Syringe
(authenticated, against the real control plane) and none may be answered with a server error."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.integration.helpers import ServedSyringe, StandInProcess, failure_curriculum, syringe_env

pytestmark = pytest.mark.integration
ADMIN = "admin-secret-for-fuzzing"
EXAMPLES_PER_OPERATION = 60
MINIMUM_REQUESTS = 500


@pytest.fixture(scope="module")
def served(standin: StandInProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    directory = tmp_path_factory.mktemp("fuzz")
    server = ServedSyringe(
        syringe_env(f"fz{os.getpid()}", failure_curriculum(directory / "curriculum"), ADMIN), directory / "serve.log"
    )
    try:
        yield server.start()
    finally:
        log = server.stop()
    assert "Traceback" not in log, log[-4000:]


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
