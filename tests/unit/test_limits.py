"""What one caller may cost, without a cluster: token buckets, client addresses behind proxies, session
creation per address (in-process ASGI), unknown-token lookups, and change listeners per live lesson."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from api.app import create_app
from api.limits import StreamSlots, client_address
from api.problems import ProblemError
from syringe.learners import Learners, LearnerSession
from syringe.learners.model import token_hash
from syringe.livelessons.model import LiveLesson
from syringe.livelessons.registry import Registry
from syringe.ratelimit import Buckets, TokenBucket
from syringe.settings import ApiSettings, LocalSettings, Settings

REPO = Path(__file__).resolve().parents[2]
PROBLEM = "application/problem+json"
NOW = datetime(2026, 1, 1, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# ---------------------------------------------------------------------- token buckets
def test_a_bucket_allows_its_burst_then_its_rate() -> None:
    clock = Clock()
    bucket = TokenBucket(rate=2.0, burst=3, clock=clock)
    assert [bucket.take() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take() == pytest.approx(0.5)  # one token every half second
    clock.now += 0.25
    assert bucket.take() == pytest.approx(0.25)
    clock.now += 0.25
    assert bucket.take() == 0.0
    clock.now += 3600
    assert [bucket.take() for _ in range(4)][-1] > 0  # it never holds more than the burst


def test_buckets_per_key_are_independent_and_bounded() -> None:
    clock = Clock()
    buckets = Buckets(rate=1.0, burst=1, capacity=100, clock=clock)
    assert buckets.take("a") == 0.0
    assert buckets.take("a") > 0
    assert buckets.take("b") == 0.0
    for i in range(10_000):
        buckets.take(f"10.0.{i // 256}.{i % 256}")
    assert len(buckets) == 100  # an address flood costs bounded memory
    assert buckets.take("a") == 0.0  # a forgotten key starts again full


def test_bucket_arguments_are_checked() -> None:
    with pytest.raises(ValueError):
        TokenBucket(0, 1)
    with pytest.raises(ValueError):
        Buckets(1, 1, 0)


# ---------------------------------------------------------------------- client addresses
TRUSTED = [ip_network("10.0.0.0/8"), ip_network("192.0.2.7/32")]


@pytest.mark.parametrize(
    ("peer", "forwarded", "trusted", "client"),
    [
        ("203.0.113.9", ["198.51.100.1"], [], "203.0.113.9"),  # nobody trusted: the header is ignored
        ("203.0.113.9", ["198.51.100.1"], TRUSTED, "203.0.113.9"),  # an untrusted peer's header is ignored
        ("10.1.2.3", ["198.51.100.1"], TRUSTED, "198.51.100.1"),
        ("10.1.2.3", ["6.6.6.6, 198.51.100.1"], TRUSTED, "198.51.100.1"),  # the left part is the client's own
        ("10.1.2.3", ["6.6.6.6, 198.51.100.1, 192.0.2.7"], TRUSTED, "198.51.100.1"),  # two trusted hops
        ("10.1.2.3", ["6.6.6.6", "198.51.100.1"], TRUSTED, "198.51.100.1"),  # repeated headers, in order
        ("10.1.2.3", ["10.9.9.9"], TRUSTED, "10.9.9.9"),  # only trusted hops: the leftmost
        ("10.1.2.3", ["not-an-address"], TRUSTED, "10.1.2.3"),
        ("10.1.2.3", ["198.51.100.1:4711"], TRUSTED, "198.51.100.1"),
        ("10.1.2.3", ["[2001:db8::1]:4711"], TRUSTED, "2001:db8::1"),
        ("10.1.2.3", [], TRUSTED, "10.1.2.3"),
        (None, ["198.51.100.1"], TRUSTED, "unknown"),
    ],
)
def test_client_address(
    peer: str | None, forwarded: list[str], trusted: list[IPv4Network | IPv6Network], client: str
) -> None:
    assert client_address(peer, forwarded, trusted) == client


# ---------------------------------------------------------------------- session creation over the API
def _app(**api: object) -> FastAPI:
    limits = ApiSettings.model_validate(api)
    return create_app(Settings(curriculum=REPO / "lessons", local=LocalSettings(enabled=False), api=limits))


def _client(app: FastAPI, address: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://syringe")


async def test_a_burst_of_sessions_from_one_address_gets_429_and_another_address_does_not() -> None:
    app = _app(session_burst=5, sessions_per_minute=1)
    async with _client(app, "203.0.113.1") as flood, _client(app, "203.0.113.2") as learner:
        statuses = [(await flood.post("/api/v1/sessions")).status_code for _ in range(50)]
        assert statuses == [201] * 5 + [429] * 45
        refused = await flood.post("/api/v1/sessions")
        assert refused.headers["content-type"] == PROBLEM
        assert refused.json()["type"].endswith("/rate-limited")
        assert "203.0.113.1" in refused.json()["detail"]
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        assert (await learner.post("/api/v1/sessions")).status_code == 201
    assert len(app.state.learners.all()) == 6  # what was refused made nothing


async def test_x_forwarded_for_counts_only_from_a_trusted_proxy() -> None:
    app = _app(session_burst=2, sessions_per_minute=1, trusted_proxies=["10.0.0.0/8"])
    async with _client(app, "10.0.0.5") as proxy, _client(app, "203.0.113.1") as direct:

        async def through_proxy(client: str) -> int:
            return (await proxy.post("/api/v1/sessions", headers={"X-Forwarded-For": client})).status_code

        assert [await through_proxy("198.51.100.1") for _ in range(3)] == [201, 201, 429]
        assert await through_proxy("198.51.100.2") == 201  # another learner behind the same proxy
        # A client that is not a trusted proxy cannot pick a fresh address with the header.
        spoofed = [
            (await direct.post("/api/v1/sessions", headers={"X-Forwarded-For": f"198.51.100.{i}"})).status_code
            for i in range(10, 14)
        ]
        assert spoofed == [201, 201, 429, 429]


async def test_ipv6_clients_are_counted_per_64() -> None:
    app = _app(session_burst=2, sessions_per_minute=1)
    statuses = []
    for host in ("2001:db8:1:2::1", "2001:db8:1:2::2", "2001:db8:1:2:ffff::3"):
        async with _client(app, host) as http:
            statuses.append((await http.post("/api/v1/sessions")).status_code)
    assert statuses == [201, 201, 429]


def test_stream_slots_release_once() -> None:
    slots = StreamSlots(2)
    first, _ = slots.acquire("s"), slots.acquire("s")
    with pytest.raises(ProblemError) as refused:
        slots.acquire("s")
    assert refused.value.status == 429 and refused.value.kind == "too-many-streams"
    slots.acquire("other")()
    first()
    first()  # a second release frees nothing more
    assert slots.open("s") == 1
    slots.acquire("s")
    with pytest.raises(ProblemError):
        slots.acquire("s")


# ---------------------------------------------------------------------- unknown tokens
class CountingStore:
    """A SessionStore in memory that counts lookups (the Kubernetes one is tested in the integration tests)."""

    def __init__(self) -> None:
        self.sessions: dict[str, LearnerSession] = {}
        self.lookups = 0

    async def save_session(self, session: LearnerSession) -> None:
        self.sessions[session.token_hash] = session

    async def find_session(self, token_hash: str) -> LearnerSession | None:
        self.lookups += 1
        return self.sessions.get(token_hash)

    async def delete_session(self, session_id: str, token_hash: str) -> None:
        self.sessions.pop(token_hash, None)


async def test_invented_tokens_cost_at_most_the_lookup_bucket() -> None:
    store = CountingStore()
    learners = Learners(3600, store, lambda: NOW)
    learners.limit_lookups(per_second=0.001, burst=10)
    for _ in range(1000):
        assert await learners.authenticate(secrets.token_urlsafe(32)) is None
    assert store.lookups == 10
    assert learners.lookups_refused == 990


async def test_a_session_another_replica_just_made_is_looked_up() -> None:
    store = CountingStore()
    learners = Learners(3600, store, lambda: NOW)
    learners.limit_lookups(per_second=5, burst=20)
    token = secrets.token_urlsafe(32)
    await store.save_session(LearnerSession("elsewhere", token_hash(token), NOW, NOW + timedelta(hours=1)))
    found = await learners.authenticate(token)
    assert found is not None and found.id == "elsewhere"
    assert await learners.authenticate(token) is found and store.lookups == 1  # then memory answers


# ---------------------------------------------------------------------- change listeners
def _lesson(livelesson_id: str) -> LiveLesson:
    return LiveLesson(livelesson_id, "s", "l", 0, f"ns-{livelesson_id}", NOW, NOW + timedelta(hours=1))


async def test_a_change_to_one_live_lesson_does_not_wake_anothers_listeners() -> None:
    registry = Registry(lambda: NOW)
    a, b = _lesson("a"), _lesson("b")
    registry.track(a)
    registry.track(b)
    on_a, on_b, everything = registry.listen("a"), registry.listen("b"), registry.listen()
    for _ in range(100):
        registry.notify(a)
    assert on_b.empty()
    assert on_a.qsize() == 1  # one pending wake-up, however many changes: a slow reader costs nothing
    assert everything.qsize() == 100
    registry.untrack(b)
    assert on_b.qsize() == 1  # gone is a change too
    for queue in (on_a, on_b, everything):
        registry.unlisten(queue)
    assert registry.listeners("a") == registry.listeners("b") == 0
    registry.notify(a)
    assert on_a.qsize() == 1 and everything.qsize() == 101  # no longer listening (the 101st: b gone)
