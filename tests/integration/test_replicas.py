"""Two Syringe processes on one cluster: every replica serves every live lesson, garbage collection runs on
exactly one, and a dead leader's Lease passes to the other within its duration."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.helpers import ServedSyringe, StandInProcess, failure_curriculum, syringe_env

pytestmark = pytest.mark.integration
ADMIN = "admin-secret-for-replicas"
LEASE_SECONDS = 3


async def _stats(http: httpx.AsyncClient) -> dict[str, Any]:
    found: dict[str, Any] = (await http.get("/api/v1/admin/stats", headers={"Authorization": f"Bearer {ADMIN}"})).json()
    return found


async def _until(check: Any, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.1)


async def test_two_replicas(standin: StandInProcess, tmp_path: Path) -> None:
    env = syringe_env(
        f"rp{uuid.uuid4().hex[:6]}",
        failure_curriculum(tmp_path / "curriculum"),
        ADMIN,
        SYRINGE_LIFECYCLE__GC_INTERVAL="0.5",
        SYRINGE_LIFECYCLE__LEADER_LEASE_SECONDS=str(LEASE_SECONDS),
    )
    servers = [ServedSyringe(env, tmp_path / f"replica{i}.log") for i in range(2)]
    bases = [await asyncio.to_thread(server.start) for server in servers]
    clients = [httpx.AsyncClient(base_url=base, timeout=60) for base in bases]
    try:
        a, b = clients
        # A lesson launched through one is visible, with the same session, through the other.
        token = (await a.post("/api/v1/sessions")).json()["token"]
        auth = {"Authorization": f"Bearer {token}"}
        livelesson = (await a.post("/api/v1/livelessons", json={"lesson": "linux-basics"}, headers=auth)).json()["id"]

        async def ready_on_b() -> bool:
            response = await b.get(f"/api/v1/livelessons/{livelesson}", headers=auth)
            return response.status_code == 200 and response.json()["status"] == "READY"

        await _until(ready_on_b)
        view = (await b.get(f"/api/v1/livelessons/{livelesson}", headers=auth)).json()
        assert view["healthy"] == view["total"] == 1

        # A change saved through one replica reaches the other, and older news never undoes it.
        kept = (await b.post(f"/api/v1/livelessons/{livelesson}/keepalive", headers=auth)).json()["expiresAt"]

        async def expiry_on_a() -> bool:
            return bool((await a.get(f"/api/v1/livelessons/{livelesson}", headers=auth)).json()["expiresAt"] == kept)

        await _until(expiry_on_a)
        assert (await a.get(f"/api/v1/livelessons/{livelesson}", headers=auth)).json()["status"] == "READY"

        second = (await b.post("/api/v1/livelessons", json={"lesson": "rest-api-basics"}, headers=auth)).json()["id"]

        async def listed_on_a() -> bool:
            listed = (await a.get("/api/v1/livelessons", headers=auth)).json()
            return {ll["id"] for ll in listed} == {livelesson, second}

        await _until(listed_on_a)

        # Garbage collection runs on exactly one replica: the leader.
        async def one_leader() -> bool:
            stats = [await _stats(c) for c in clients]
            return sum(s["leader"] for s in stats) == 1 and max(s["gcRuns"] for s in stats) >= 2

        await _until(one_leader)
        stats = [await _stats(c) for c in clients]
        leader = next(i for i, s in enumerate(stats) if s["leader"])
        assert stats[1 - leader]["gcRuns"] == 0

        # Killing the leader hands the Lease over within its duration (plus one renewal period).
        process = servers[leader].process
        assert process is not None
        process.kill()
        killed = time.monotonic()
        follower = clients[1 - leader]

        async def took_over() -> bool:
            return bool((await _stats(follower))["leader"])

        await _until(took_over, timeout=30)
        handover = time.monotonic() - killed
        print(f"lease handed over {handover:.2f}s after the leader was killed (lease {LEASE_SECONDS}s)")
        assert handover <= LEASE_SECONDS + LEASE_SECONDS / 3 + 1.0
        runs = (await _stats(follower))["gcRuns"]

        async def collecting() -> bool:
            return bool((await _stats(follower))["gcRuns"] > runs)

        await _until(collecting, timeout=10)
        assert (await follower.get(f"/api/v1/livelessons/{livelesson}", headers=auth)).json()["status"] == "READY"
        for ll in (livelesson, second):
            await follower.delete(f"/api/v1/livelessons/{ll}", headers=auth)
    finally:
        for http in clients:
            await http.aclose()
        logs = [await asyncio.to_thread(server.stop) for server in servers]
    assert all("Traceback" not in log for log in logs), logs
