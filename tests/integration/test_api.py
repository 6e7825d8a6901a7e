"""The REST API over HTTP, against the real control plane and the pod stand-in."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from kubernetes import client

from api.app import create_app
from syringe.settings import LocalSettings, Settings
from tests.integration.api_client import Follow, follow_in_process, follow_over_http
from tests.integration.helpers import ServedSyringe, StandInProcess, failure_curriculum, syringe_env

pytestmark = pytest.mark.integration
ADMIN = "admin-secret-for-tests"
PROBLEM = "application/problem+json"


@pytest.fixture
def curriculum(tmp_path: Path) -> Path:
    return failure_curriculum(tmp_path / "curriculum")


@pytest.fixture
async def app_client(
    standin: StandInProcess, instance: str, curriculum: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[httpx.AsyncClient, FastAPI]]:
    # Launches are polled for a free slot below, faster than a client should: not what this fixture tests.
    env = syringe_env(
        instance, curriculum, ADMIN, SYRINGE_LIFECYCLE__MAX_LIVE_LESSONS="3", SYRINGE_API__LAUNCH_BURST="1000"
    )
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    app = create_app(Settings())
    async with app.router.lifespan_context(app):
        assert app.state.manager is not None, app.state.runtime_problem
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://syringe") as http:
            yield http, app


@pytest.fixture
async def uvicorn_client(
    standin: StandInProcess, instance: str, curriculum: Path, tmp_path: Path
) -> AsyncIterator[httpx.AsyncClient]:
    server = ServedSyringe(syringe_env(instance, curriculum, ADMIN), tmp_path / "serve.log")
    base = await asyncio.to_thread(server.start)
    try:
        async with httpx.AsyncClient(base_url=base) as http:
            yield http
    finally:
        log = await asyncio.to_thread(server.stop)
        assert "Traceback" not in log, log[-4000:]


async def _session(http: httpx.AsyncClient) -> dict[str, str]:
    response = await http.post("/api/v1/sessions")
    assert response.status_code == 201
    body = response.json()
    assert body["token"] and body["id"] and datetime.fromisoformat(body["expiresAt"])
    return {"Authorization": f"Bearer {body['token']}"}


async def journey(http: httpx.AsyncClient, follow: Follow) -> None:
    auth = await _session(http)
    launched = await http.post("/api/v1/livelessons", json={"lesson": "routing-triangle", "stage": 0}, headers=auth)
    assert launched.status_code == 202, launched.text
    livelesson = launched.json()["id"]
    assert launched.headers["location"] == f"/api/v1/livelessons/{livelesson}"
    again = await http.post("/api/v1/livelessons", json={"lesson": "routing-triangle"}, headers=auth)
    assert again.json()["id"] == livelesson  # one live lesson per (session, lesson)

    events = await follow(f"/api/v1/livelessons/{livelesson}/events", auth, lambda e: e.get("status") == "READY")
    statuses = [data["status"] for kind, data in events if kind == "status"]
    assert statuses[-1] == "READY"
    assert "BOOTING" in statuses or "INITIALIZED" in statuses

    view = (await http.get(f"/api/v1/livelessons/{livelesson}", headers=auth)).json()
    assert (view["status"], view["stage"], view["healthy"], view["total"]) == ("READY", 0, 3, 3)
    assert {e["name"] for e in view["endpoints"]} == {"r1", "r2", "r3"}
    assert all(p["reachable"] for e in view["endpoints"] for p in e["presentations"])

    staged = await http.put(f"/api/v1/livelessons/{livelesson}/stage", json={"stage": 1}, headers=auth)
    assert staged.status_code == 202
    assert staged.json()["status"] == "CONFIGURATION"
    busy = await http.put(f"/api/v1/livelessons/{livelesson}/stage", json={"stage": 0}, headers=auth)
    assert busy.status_code == 409 and busy.json()["type"].endswith("/livelesson-busy")
    await follow(
        f"/api/v1/livelessons/{livelesson}/events", auth, lambda e: e.get("status") == "READY" and e.get("stage") == 1
    )
    guide = (await http.get(f"/api/v1/livelessons/{livelesson}/guide", headers=auth)).json()
    assert guide["stage"] == 1 and "Turning on OSPF" in guide["html"]

    before = view["expiresAt"]
    kept = await http.post(f"/api/v1/livelessons/{livelesson}/keepalive", headers=auth)
    assert kept.status_code == 200 and kept.json()["expiresAt"] >= before

    deleted = await http.delete(f"/api/v1/livelessons/{livelesson}", headers=auth)
    assert deleted.status_code == 202
    events = await follow(f"/api/v1/livelessons/{livelesson}/events", auth, lambda e: False)
    assert events[-1][0] == "deleted"
    assert (await http.get(f"/api/v1/livelessons/{livelesson}", headers=auth)).status_code == 404
    return None


async def test_journey_in_process(app_client: tuple[httpx.AsyncClient, FastAPI], kube_api: client.ApiClient) -> None:
    http, app = app_client

    async def follow(path: str, headers: dict[str, str], until: Any) -> list[Any]:
        return await follow_in_process(app, path, headers, until)

    await journey(http, follow)
    assert (
        not client.CoreV1Api(kube_api)
        .list_namespace(label_selector=f"syringe.io/instance={app.state.settings.plan.instance}")
        .items
    )


async def test_journey_against_uvicorn(
    uvicorn_client: httpx.AsyncClient, instance: str, kube_api: client.ApiClient
) -> None:
    async def follow(path: str, headers: dict[str, str], until: Any) -> list[Any]:
        return await follow_over_http(uvicorn_client, path, headers, until)

    await journey(uvicorn_client, follow)
    namespaces = client.CoreV1Api(kube_api).list_namespace(label_selector=f"syringe.io/instance={instance}").items
    assert not namespaces


async def test_one_learner_cannot_touch_anothers_live_lesson(app_client: tuple[httpx.AsyncClient, FastAPI]) -> None:
    http, _ = app_client
    alice, bob = await _session(http), await _session(http)
    launched = (await http.post("/api/v1/livelessons", json={"lesson": "linux-basics"}, headers=bob)).json()["id"]
    base = f"/api/v1/livelessons/{launched}"
    attempts = [
        http.get(base, headers=alice),
        http.put(f"{base}/stage", json={"stage": 0}, headers=alice),
        http.post(f"{base}/keepalive", headers=alice),
        http.delete(base, headers=alice),
        http.get(f"{base}/events", headers=alice),
        http.get(f"{base}/guide", headers=alice),
    ]
    for response in await asyncio.gather(*attempts):
        assert response.status_code == 404, response.text
        assert response.headers["content-type"] == PROBLEM
        assert response.json()["type"].endswith("/livelesson-not-found")
    assert (await http.get("/api/v1/livelessons", headers=alice)).json() == []
    assert [ll["id"] for ll in (await http.get("/api/v1/livelessons", headers=bob)).json()] == [launched]
    assert (await http.get(base, headers=bob)).status_code == 200

    for headers in ({}, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Basic abc"}):
        response = await http.get(base, headers=headers)
        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith("Bearer")


async def test_limits_and_bad_requests(app_client: tuple[httpx.AsyncClient, FastAPI]) -> None:
    http, _ = app_client  # the app's global limit is 3
    sessions = [await _session(http) for _ in range(4)]
    ids = []
    for auth in sessions[:3]:
        response = await http.post("/api/v1/livelessons", json={"lesson": "linux-basics"}, headers=auth)
        assert response.status_code == 202
        ids.append(response.json()["id"])
    refused = await http.post("/api/v1/livelessons", json={"lesson": "linux-basics"}, headers=sessions[3])
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "30"
    assert refused.json()["type"].endswith("/global-limit")
    assert (await http.delete(f"/api/v1/livelessons/{ids[0]}", headers=sessions[0])).status_code == 202
    for _ in range(300):
        again = await http.post("/api/v1/livelessons", json={"lesson": "linux-basics"}, headers=sessions[3])
        if again.status_code == 202:
            break
        await asyncio.sleep(0.1)  # the deleted live lesson frees its slot once its namespace is gone
    assert again.status_code == 202

    auth = sessions[3]
    cases: list[tuple[str, str, Any, int, str]] = [
        ("post", "/api/v1/livelessons", {"lesson": "nope"}, 404, "lesson-not-found"),
        ("post", "/api/v1/livelessons", {"lesson": "linux-basics", "stage": 9}, 422, "invalid-stage"),
        ("post", "/api/v1/livelessons", {"lesson": "linux-basics", "stage": -1}, 422, "invalid-request"),
        ("post", "/api/v1/livelessons", {"stage": 0}, 422, "invalid-request"),
        ("post", "/api/v1/livelessons", "not json", 422, "invalid-request"),
        ("put", f"/api/v1/livelessons/{again.json()['id']}/stage", {"stage": "x"}, 422, "invalid-request"),
        ("get", "/api/v1/livelessons/does-not-exist", None, 404, "livelesson-not-found"),
    ]
    for method, path, body, status, kind in cases:
        kwargs: dict[str, Any] = {"headers": auth}
        if isinstance(body, str):
            kwargs["content"] = body
            kwargs["headers"] = {**auth, "Content-Type": "application/json"}
        elif body is not None:
            kwargs["json"] = body
        response = await http.request(method.upper(), path, **kwargs)
        assert response.status_code == status, (path, body, response.text)
        assert response.headers["content-type"] == PROBLEM
        assert response.json()["type"].endswith(f"/{kind}"), response.json()

    huge = await http.post(
        "/api/v1/livelessons", content=b"x" * 200_000, headers={**auth, "Content-Type": "application/json"}
    )
    assert huge.status_code == 413
    assert huge.json()["type"].endswith("/body-too-large")


async def test_admin_and_status_reads_cost_no_api_calls(app_client: tuple[httpx.AsyncClient, FastAPI]) -> None:
    http, app = app_client
    admin = {"Authorization": f"Bearer {ADMIN}"}
    learner = await _session(http)
    assert (await http.get("/api/v1/admin/stats", headers=learner)).status_code == 403
    assert (await http.get("/api/v1/admin/stats")).status_code == 401

    livelesson = (await http.post("/api/v1/livelessons", json={"lesson": "netconf-basics"}, headers=learner)).json()[
        "id"
    ]
    await follow_in_process(
        app, f"/api/v1/livelessons/{livelesson}/events", learner, lambda e: e.get("status") == "READY"
    )

    before = (await http.get("/api/v1/admin/stats", headers=admin)).json()["kubernetesCalls"]
    for _ in range(200):
        assert (await http.get(f"/api/v1/livelessons/{livelesson}", headers=learner)).json()["status"] == "READY"
    await follow_in_process(app, f"/api/v1/livelessons/{livelesson}/events", learner, lambda e: True)
    stats = (await http.get("/api/v1/admin/stats", headers=admin)).json()
    assert stats["kubernetesCalls"] == before
    for _ in range(50):  # a wrong token is looked up once, then remembered as unknown
        assert (
            await http.get(f"/api/v1/livelessons/{livelesson}", headers={"Authorization": "Bearer x"})
        ).status_code == 401
    after = (await http.get("/api/v1/admin/stats", headers=admin)).json()["kubernetesCalls"]
    assert sum(after.values()) - sum(before.values()) == 1
    assert stats["byStatus"] == {"READY": 1}

    sessions = (await http.get("/api/v1/admin/sessions", headers=admin)).json()
    mine = next(s for s in sessions if livelesson in s["livelessons"])
    made = await http.put(f"/api/v1/admin/sessions/{mine['id']}/persistent", json={"persistent": True}, headers=admin)
    assert made.json()["persistent"] is True
    assert app.state.manager.expired() == []
    listed = (await http.get("/api/v1/admin/livelessons", headers=admin)).json()
    assert [ll["id"] for ll in listed] == [livelesson]
    assert (await http.delete(f"/api/v1/admin/livelessons/{livelesson}", headers=admin)).status_code == 202
    assert (await http.delete("/api/v1/admin/livelessons/nope", headers=admin)).status_code == 404


async def test_live_lessons_answer_503_without_a_cluster_or_local_vms(
    curriculum: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("KUBECONFIG", "SYRINGE_KUBECONFIG"):
        monkeypatch.delenv(name, raising=False)
    app = create_app(Settings(curriculum=curriculum, local=LocalSettings(enabled=False)))
    transport = httpx.ASGITransport(app=app)
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport, base_url="http://s") as http:
        auth = await _session(http)
        response = await http.post("/api/v1/livelessons", json={"lesson": "linux-basics"}, headers=auth)
        assert response.status_code == 503
        assert "no Kubernetes cluster configured" in response.json()["detail"]
        assert (await http.get("/api/v1/lessons")).status_code == 200
        assert (await http.get("/readyz")).json()["status"] == "ready"  # catalog-only is ready


async def test_metrics_and_json_logs(standin: StandInProcess, instance: str, curriculum: Path, tmp_path: Path) -> None:
    server = ServedSyringe(syringe_env(instance, curriculum, ADMIN), tmp_path / "serve.log")
    base = await asyncio.to_thread(server.start)
    try:
        async with httpx.AsyncClient(base_url=base, timeout=60) as http:
            created = (await http.post("/api/v1/sessions")).json()
            auth = {"Authorization": f"Bearer {created['token']}"}
            good = (await http.post("/api/v1/livelessons", json={"lesson": "linux-basics"}, headers=auth)).json()["id"]
            bad = (await http.post("/api/v1/livelessons", json={"lesson": "broken-image"}, headers=auth)).json()["id"]
            for _ in range(600):
                statuses = {
                    (await http.get(f"/api/v1/livelessons/{i}", headers=auth)).json()["status"] for i in (good, bad)
                }
                if statuses == {"READY", "ERROR"}:
                    break
                await asyncio.sleep(0.1)
            assert statuses == {"READY", "ERROR"}
            assert (await http.get("/readyz")).json()["status"] == "ready"
            text = (await http.get("/metrics")).text
    finally:
        log = await asyncio.to_thread(server.stop)

    def value(pattern: str) -> float:
        found = re.search(pattern + r" ([0-9.e+]+)", text)
        assert found, pattern
        return float(found.groups()[-1])

    assert value(r'syringe_live_lessons\{status="READY"\}') == 1
    assert value(r'syringe_live_lessons\{status="ERROR"\}') == 1
    assert value(r'syringe_launch_duration_seconds_count\{lesson="linux-basics"\}') == 1
    assert value(r'syringe_livelesson_errors_total\{reason="(ErrImagePull|ImagePullBackOff)"\}') >= 1
    assert value(r'syringe_kubernetes_api_calls_total\{verb="create"\}') > 10
    route = re.escape('route="/api/v1/livelessons/{livelesson_id}"')
    assert value(r'syringe_http_request_duration_seconds_count\{method="GET",' + route + r',status="200"\}') >= 1

    records = [json.loads(line) for line in log.splitlines() if line.strip()]
    assert records and all({"time", "level", "logger", "message"} <= set(r) for r in records)
    mine = [r for r in records if r.get("livelesson") == bad]
    assert mine and all(r["session"] == created["id"] for r in mine)
    assert any("ImagePull" in r["message"] for r in mine)
    assert created["token"] not in log
    assert "antidotepassword" not in log
