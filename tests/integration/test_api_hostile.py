"""Hostile callers against the real control plane: invented tokens, floods of launches and event streams,
forged X-Forwarded-For. What one caller may cost is bounded, and real learners still get in."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from kubernetes import client

from api.app import create_app
from syringe.learners import LearnerSession
from syringe.learners.model import token_hash
from syringe.runtime.kubernetes.sessions import session_secret
from syringe.settings import Settings
from tests.integration.api_client import follow_in_process, get_scope, parse_sse
from tests.integration.helpers import ServedSyringe, StandInProcess, failure_curriculum, syringe_env

pytestmark = pytest.mark.integration
ADMIN = "admin-secret-for-hostile-tests"
PROBLEM = "application/problem+json"
AppFactory = Callable[..., Awaitable[FastAPI]]


@pytest.fixture
async def make_app(
    standin: StandInProcess, instance: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[AppFactory]:
    """A Syringe app in process, with extra settings; garbage collection (three list calls) kept out of the
    way of the call counts."""
    stack: list[Any] = []
    curriculum = failure_curriculum(tmp_path / "curriculum")

    async def make(**extra: str) -> FastAPI:
        env = syringe_env(instance, curriculum, ADMIN, SYRINGE_LIFECYCLE__GC_INTERVAL="3600", **extra)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        app = create_app(Settings())
        context = app.router.lifespan_context(app)
        await context.__aenter__()
        stack.append(context)
        assert app.state.manager is not None, app.state.runtime_problem
        return app

    yield make
    for context in reversed(stack):
        await context.__aexit__(None, None, None)


def _http(app: FastAPI, address: str = "127.0.0.1") -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://syringe", timeout=60)


async def _session(http: httpx.AsyncClient) -> tuple[str, dict[str, str]]:
    created = await http.post("/api/v1/sessions")
    assert created.status_code == 201, created.text
    return created.json()["id"], {"Authorization": f"Bearer {created.json()['token']}"}


async def _calls(http: httpx.AsyncClient) -> int:
    stats = (await http.get("/api/v1/admin/stats", headers={"Authorization": f"Bearer {ADMIN}"})).json()
    return sum(stats["kubernetesCalls"].values())


def _foreign_session(app: FastAPI, kube_api: client.ApiClient) -> str:
    """A session saved as another replica saves it: a Secret this process did not write. Returns its token."""
    plan = app.state.settings.plan
    token = secrets.token_urlsafe(32)
    now = datetime.now(UTC)
    record = LearnerSession(f"fr{secrets.token_hex(5)}", token_hash(token), now, now + timedelta(hours=1))
    body = session_secret(record, plan.syringe_namespace, plan.instance)
    client.CoreV1Api(kube_api).create_namespaced_secret(plan.syringe_namespace, body)
    return token


async def test_invented_tokens_cost_at_most_the_lookup_bound(make_app: AppFactory, kube_api: client.ApiClient) -> None:
    burst = 10
    app = await make_app(SYRINGE_API__TOKEN_LOOKUP_BURST=str(burst), SYRINGE_API__TOKEN_LOOKUPS_PER_SECOND="0.001")
    async with _http(app) as http:
        # The normal case: a session another replica made a moment ago works at once here.
        fresh = {"Authorization": f"Bearer {_foreign_session(app, kube_api)}"}
        assert (await http.get("/api/v1/livelessons", headers=fresh)).status_code == 200

        before = await _calls(http)

        async def invented() -> int:
            headers = {"Authorization": f"Bearer {secrets.token_urlsafe(32)}"}
            return (await http.get("/api/v1/livelessons", headers=headers)).status_code

        statuses = []
        for _ in range(20):  # 1,000 random tokens, 50 at a time
            statuses += await asyncio.gather(*(invented() for _ in range(50)))
        assert statuses == [401] * 1000
        looked_up = await _calls(http) - before
        print(f"1000 invented tokens cost {looked_up} session lookups (bound {burst})")
        assert looked_up <= burst + 1  # the burst, plus what 0.001/s refills meanwhile

        # Even with the bucket empty, a new session from another replica gets in: the session watch brings it.
        late = {"Authorization": f"Bearer {_foreign_session(app, kube_api)}"}
        for _ in range(300):
            if (await http.get("/api/v1/livelessons", headers=late)).status_code == 200:
                break
            await asyncio.sleep(0.1)
        assert (await http.get("/api/v1/livelessons", headers=late)).status_code == 200
        assert await _calls(http) - before <= burst + 1


async def test_launches_are_rate_limited_per_client_address(make_app: AppFactory) -> None:
    app = await make_app(SYRINGE_API__LAUNCH_BURST="2", SYRINGE_API__LAUNCHES_PER_MINUTE="0.01")
    async with _http(app, "198.51.100.1") as flood, _http(app, "198.51.100.2") as other:
        _, auth = await _session(flood)
        first = await flood.post("/api/v1/livelessons", json={"lesson": "linux-basics"}, headers=auth)
        again = await flood.post("/api/v1/livelessons", json={"lesson": "linux-basics"}, headers=auth)
        assert first.status_code == again.status_code == 202 and first.json()["id"] == again.json()["id"]
        # Invalid launches are answered before they count.
        assert (await flood.post("/api/v1/livelessons", json={"lesson": "nope"}, headers=auth)).status_code == 404
        refused = await flood.post("/api/v1/livelessons", json={"lesson": "rest-api-basics"}, headers=auth)
        assert refused.status_code == 429, refused.text
        assert refused.headers["content-type"] == PROBLEM
        assert refused.json()["type"].endswith("/rate-limited")
        assert int(refused.headers["retry-after"]) >= 1
        assert len(app.state.manager.all()) == 1  # refused before anything was made

        _, theirs = await _session(other)
        launched = await other.post("/api/v1/livelessons", json={"lesson": "linux-basics"}, headers=theirs)
        assert launched.status_code == 202
        for http, headers, livelesson in ((flood, auth, first), (other, theirs, launched)):
            await http.delete(f"/api/v1/livelessons/{livelesson.json()['id']}", headers=headers)


@asynccontextmanager
async def open_stream(app: FastAPI, path: str, headers: dict[str, str]) -> AsyncIterator[tuple[int, list[Any]]]:
    """An event stream held open in process until the block ends (then the client disconnects): its status
    and the events it has sent so far (a list that grows)."""
    started: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    gone = asyncio.Event()
    events: list[Any] = []
    buffer = ""

    async def receive() -> dict[str, Any]:
        await gone.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal buffer
        if message["type"] == "http.response.start" and not started.done():
            started.set_result(message["status"])
        elif message["type"] == "http.response.body":
            parsed, buffer = parse_sse(buffer + message.get("body", b"").decode())
            events.extend(parsed)

    scope = get_scope(path, headers)
    task = asyncio.create_task(app(scope, receive, send))  # type: ignore[arg-type]
    try:
        status = await asyncio.wait_for(started, 30)
        if status == 200:
            for _ in range(300):  # the first event: the stream is listening
                if events:
                    break
                await asyncio.sleep(0.01)
        yield status, events
    finally:
        gone.set()
        await asyncio.wait_for(task, 10)


async def test_event_streams_per_session_are_capped_and_released(make_app: AppFactory) -> None:
    app = await make_app(SYRINGE_API__EVENT_STREAMS_PER_SESSION="2")
    slots, registry = app.state.limits.streams, app.state.manager.registry
    async with _http(app) as http:
        session, auth = await _session(http)
        livelesson = (await http.post("/api/v1/livelessons", json={"lesson": "linux-basics"}, headers=auth)).json()[
            "id"
        ]
        path = f"/api/v1/livelessons/{livelesson}/events"
        async with open_stream(app, path, auth) as (one, _), open_stream(app, path, auth) as (two, _):
            assert one == two == 200
            refused = await http.get(path, headers=auth)
            assert refused.status_code == 429
            assert refused.headers["content-type"] == PROBLEM
            assert refused.json()["type"].endswith("/too-many-streams")
            async with open_stream(app, path, auth) as (three, _):
                assert three == 429
            assert slots.open(session) == 2 and registry.listeners(livelesson) == 2
        # Both clients went away: their slots and listeners are given back.
        assert slots.open(session) == 0 and registry.listeners(livelesson) == 0
        async with open_stream(app, path, auth) as (again, events):
            assert again == 200 and events[0][0] == "status"
            assert slots.open(session) == 1
        await http.delete(f"/api/v1/livelessons/{livelesson}", headers=auth)
        await follow_in_process(app, path, auth, lambda _: False)  # until `deleted`
    assert slots.open(session) == 0 and registry.listeners(livelesson) == 0


async def test_a_change_to_one_live_lesson_does_not_wake_anothers_stream(make_app: AppFactory) -> None:
    app = await make_app()
    manager = app.state.manager
    async with _http(app) as http:
        _, auth = await _session(http)
        a, b = [
            (await http.post("/api/v1/livelessons", json={"lesson": lesson}, headers=auth)).json()["id"]
            for lesson in ("linux-basics", "rest-api-basics")
        ]
        for livelesson in (a, b):  # launches change their live lessons by themselves until READY
            await follow_in_process(
                app, f"/api/v1/livelessons/{livelesson}/events", auth, lambda e: e.get("status") == "READY"
            )
        async with open_stream(app, f"/api/v1/livelessons/{b}/events", auth) as (status, events):
            assert status == 200 and len(events) == 1
            on_b = manager.listen(b)  # a listener like the stream's own
            try:
                for _ in range(20):
                    assert (await http.post(f"/api/v1/livelessons/{a}/keepalive", headers=auth)).status_code == 200
                assert on_b.empty()
                assert (await http.post(f"/api/v1/livelessons/{b}/keepalive", headers=auth)).status_code == 200
                assert not on_b.empty()
            finally:
                manager.unlisten(on_b)
            for _ in range(300):
                if len(events) == 2:
                    break
                await asyncio.sleep(0.01)
            assert [kind for kind, _ in events] == ["status", "status"]  # B's own change, and nothing of A's
        for livelesson in (a, b):
            await http.delete(f"/api/v1/livelessons/{livelesson}", headers=auth)


async def test_forged_x_forwarded_for_buys_no_sessions_under_uvicorn(
    standin: StandInProcess, instance: str, tmp_path: Path
) -> None:
    """`syringe serve` itself: with no trusted proxy configured, uvicorn's own X-Forwarded-For handling
    (which trusts 127.0.0.1) must not hand each forged address a fresh bucket."""
    env = syringe_env(instance, failure_curriculum(tmp_path / "curriculum"), ADMIN, SYRINGE_API__SESSION_BURST="3")
    server = ServedSyringe(env, tmp_path / "serve.log")
    base = await asyncio.to_thread(server.start)
    try:
        async with httpx.AsyncClient(base_url=base, timeout=60) as http:
            statuses = [
                (await http.post("/api/v1/sessions", headers={"X-Forwarded-For": f"203.0.113.{i}"})).status_code
                for i in range(6)
            ]
            refused = await http.post("/api/v1/sessions")
    finally:
        log = await asyncio.to_thread(server.stop)
    assert "Traceback" not in log, log[-4000:]
    assert statuses == [201, 201, 201, 429, 429, 429]
    assert refused.status_code == 429 and refused.headers["content-type"] == PROBLEM
    assert "127.0.0.1" in refused.json()["detail"] and int(refused.headers["retry-after"]) >= 1
