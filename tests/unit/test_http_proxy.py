"""The HTTP proxy's pure parts: what passes each way by where content is served, proxy origins, the transfer
limits, and the caps on concurrent uses."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from api.proxy_origin import PROXY_ORIGIN, ProxyOrigins
from syringe.access.http_proxy import (
    ENDPOINT_COOKIE,
    ProxyRequest,
    Served,
    endpoint_cookies,
    request_headers,
    response_headers,
    rewrite_cookie,
    without_token,
)
from syringe.access.probes import Target
from syringe.access.proxy_origin import Addressed, OriginTemplate, proxy_url
from syringe.access.slots import Admission, Slots
from syringe.access.transfer import RateGuard, TooSlow, TransferLimits, paced
from syringe.errors import LimitReached, Unreachable

TARGET = Target("10.0.0.5", 8080, "http")
PREFIX = "/api/v1/livelessons/abc/endpoints/web1/http/ui"
SHARED = Served(own_origin=False)
OWN = Served(own_origin=True)


async def _nothing() -> AsyncIterator[bytes]:
    return
    yield b""


def _request(headers: list[tuple[str, str]], cookies: dict[str, str]) -> ProxyRequest:
    return ProxyRequest("GET", "x", [], headers, cookies, _nothing(), "https")


# ---------------------------------------------------------------- what passes, by where content is served


def test_origin_wide_headers_are_dropped_on_syringes_origin_and_kept_on_the_endpoints_own() -> None:
    upstream = httpx.Headers(
        [
            ("Access-Control-Allow-Origin", "https://evil.example"),
            ("access-control-allow-credentials", "true"),
            ("Service-Worker-Allowed", "/"),
            ("Clear-Site-Data", '"*"'),
            ("Strict-Transport-Security", "max-age=0"),
            ("Alt-Svc", 'h2="evil.example:443"'),
            ("NEL", "{}"),
            ("Report-To", "{}"),
            ("Content-Security-Policy", "default-src 'self'"),
            ("X-Endpoint", "kept"),
            ("Transfer-Encoding", "chunked"),
        ]
    )
    shared = dict(response_headers(upstream, TARGET, PREFIX, SHARED))
    assert {k.lower() for k in shared} == {"content-security-policy", "x-endpoint"}
    own = {k.lower() for k, _ in response_headers(upstream, TARGET, "", OWN)}
    assert "access-control-allow-origin" in own and "service-worker-allowed" in own
    assert "transfer-encoding" not in own  # hop-by-hop either way


def test_a_configured_policy_is_added_beside_the_endpoints_own() -> None:
    upstream = httpx.Headers([("Content-Security-Policy", "default-src 'self'")])
    served = Served(own_origin=False, content_security_policy="sandbox allow-scripts")
    policies = [
        v for k, v in response_headers(upstream, TARGET, PREFIX, served) if k.lower() == "content-security-policy"
    ]
    assert policies == ["default-src 'self'", "sandbox allow-scripts"]
    assert len(response_headers(upstream, TARGET, "", Served(True, "sandbox"))) == 1  # not on its own origin


def test_cookies_the_endpoint_sets_are_marked_scoped_under_the_prefix_and_lose_their_domain() -> None:
    rewritten = rewrite_cookie("session=abc; HttpOnly; Path=/app; Domain=example.net", PREFIX, ENDPOINT_COOKIE)
    assert rewritten == f"{ENDPOINT_COOKIE}session=abc; HttpOnly; Path={PREFIX}/app"
    assert rewrite_cookie("__Host-id=1; Secure; Path=/", PREFIX, ENDPOINT_COOKIE) == (
        f"{ENDPOINT_COOKIE}__Host-id=1; Secure; Path={PREFIX}/"
    )
    assert rewrite_cookie("nameless", PREFIX, ENDPOINT_COOKIE) is None
    assert rewrite_cookie("a=1; Path=/x; Domain=lab", "", "") == "a=1; Path=/x"  # its own origin: as set
    headers = httpx.Headers([("Set-Cookie", "a=1; Path=/"), ("Set-Cookie", "bare")])
    assert [v for _, v in response_headers(headers, TARGET, PREFIX, SHARED)] == [
        f"{ENDPOINT_COOKIE}a=1; Path={PREFIX}/"
    ]


def test_only_the_endpoints_own_cookies_go_back_to_it() -> None:
    cookies = {
        "syringe_token": "secret",
        "frontend_session": "theirs",
        "_ga": "tracking",
        f"{ENDPOINT_COOKIE}session": "abc",
        ENDPOINT_COOKIE: "nameless",
    }
    assert endpoint_cookies(cookies, SHARED, "syringe_token") == ["session=abc"]
    assert sorted(endpoint_cookies(cookies, OWN, "syringe_token")) == sorted(
        ["frontend_session=theirs", "_ga=tracking", f"{ENDPOINT_COOKIE}session=abc", f"{ENDPOINT_COOKIE}=nameless"]
    )


def test_the_token_never_leaves_in_a_header_a_cookie_or_the_referer() -> None:
    referer = f"https://syringe.example{PREFIX}/?token=secret&tab=2"
    headers = [
        ("Host", "syringe.example"),
        ("Authorization", "Bearer secret"),
        ("Cookie", "syringe_token=secret"),
        ("Referer", referer),
        ("Accept", "text/html"),
        ("X-Forwarded-Proto", "https"),
    ]
    sent = request_headers(_request(headers, {"syringe_token": "secret"}), PREFIX, SHARED, "token", "syringe_token")
    assert "secret" not in repr(sent)
    assert dict(sent)["Referer"] == f"https://syringe.example{PREFIX}/?tab=2"
    assert [v for k, v in sent if k.lower() == "x-forwarded-proto"] == ["https"]  # the proxy's, once
    assert dict(sent)["Accept"] == "text/html"
    assert without_token("https://a/b?x=%20y", "token") == "https://a/b?x=%20y"  # untouched without a token


# ---------------------------------------------------------------- proxy origins


def test_an_origin_template_gives_each_presentation_its_own_origin() -> None:
    template = OriginTemplate("https://{livelesson}-{endpoint}-{presentation}.labs.example.net")
    assert template.url("3f9a1c2b7e", "web1", "ui") == "https://3f9a1c2b7e-web1-ui.labs.example.net/"
    assert template.match("3F9A1C2B7E-web1-ui.labs.example.net:443") == [Addressed("3f9a1c2b7e", "web1", "ui")]
    # Names may hold hyphens: every split is a candidate, and the proxy keeps the one that exists.
    assert template.match("3f9a1c2b7e-my-web-ui.labs.example.net") == [
        Addressed("3f9a1c2b7e", "my", "web-ui"),
        Addressed("3f9a1c2b7e", "my-web", "ui"),
    ]
    for host in (
        "syringe.example.net",
        "a-b.labs.example.net",
        "a-b-c.labs.example.net.evil",
        "a-b-c.d.labs.example.net",
    ):
        assert template.match(host) == [], host
    assert proxy_url("", "ll", "ep", "ui") == "/api/v1/livelessons/ll/endpoints/ep/http/ui/"
    assert proxy_url("http://{presentation}.{endpoint}.{livelesson}.lab:8080", "ll", "ep", "ui") == (
        "http://ui.ep.ll.lab:8080/"
    )


@pytest.mark.parametrize(
    "bad",
    [
        "https://{livelesson}-{endpoint}.labs.example.net",
        "https://{livelesson}-{endpoint}-{endpoint}.labs.example.net",
        "ftp://{livelesson}-{endpoint}-{presentation}.labs.example.net",
        "https://labs.example.net/{livelesson}/{endpoint}/{presentation}",
        "https://{livelesson}-{endpoint}-{presentation}",
        "https://u@{livelesson}-{endpoint}-{presentation}.lab.net",
    ],
)
def test_origin_templates_that_cannot_work_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        OriginTemplate(bad)


async def test_a_request_to_a_proxy_origin_goes_to_that_presentations_proxy_whatever_its_path() -> None:
    seen: list[dict[str, object]] = []

    async def app(scope: dict[str, object], receive: object, send: object) -> None:
        seen.append(scope)

    middleware = ProxyOrigins(app, "https://{livelesson}-{endpoint}-{presentation}.labs.example.net")  # type: ignore[arg-type]
    for host, path in ((b"ab12-web1-ui.labs.example.net", "/api/v1/sessions"), (b"syringe.example.net", "/healthz")):
        scope = {"type": "http", "path": path, "raw_path": path.encode(), "headers": [(b"host", host)]}
        await middleware(scope, None, None)  # type: ignore[arg-type]
    lab, own = seen
    assert lab["path"] == "/api/v1/livelessons/ab12/endpoints/web1/http/ui/api/v1/sessions"
    assert lab[PROXY_ORIGIN] == [Addressed("ab12", "web1", "ui")]
    assert own["path"] == "/healthz" and PROXY_ORIGIN not in own


# ---------------------------------------------------------------- transfer limits


def test_the_rate_is_judged_per_window_after_the_grace_period() -> None:
    guard = RateGuard(min_rate=100, window=10, start=0)
    guard.record(999, now=5)  # the first window is the grace period: nothing is judged before it ends
    with pytest.raises(TooSlow, match="below 100 bytes/s"):
        guard.check(now=10)
    guard = RateGuard(min_rate=100, window=10, start=0)
    guard.record(1000, now=1)
    guard.check(now=10)  # the first window carried enough
    assert guard.wake_at() == 20
    with pytest.raises(TooSlow):  # ... but the second did not: bytes after its end do not count for it
        guard.record(5000, now=25)
    idle = RateGuard(min_rate=0, window=10, start=0)
    idle.check(now=1e9)  # no minimum
    assert idle.wake_at() == float("inf")


async def _trickle(pause: float, chunks: int | None = None) -> AsyncIterator[bytes]:
    sent = 0
    while chunks is None or sent < chunks:
        await asyncio.sleep(pause)
        sent += 1
        yield b"."


async def _drain(body: AsyncIterator[bytes]) -> int:
    return sum([len(chunk) async for chunk in body])


async def test_a_body_that_trickles_below_the_rate_is_ended() -> None:
    loop = asyncio.get_running_loop()
    limits = TransferLimits(deadline=3600, min_rate=1000, grace=0.05)
    with pytest.raises(TooSlow, match="trickled"):
        await _drain(paced(_trickle(0.01), limits, loop.time() + 3600, loop.time))


async def test_a_body_past_the_deadline_is_ended_however_fast_it_comes() -> None:
    loop = asyncio.get_running_loop()
    limits = TransferLimits(deadline=0.1, min_rate=0, grace=1)
    with pytest.raises(TooSlow, match="deadline"):
        await _drain(paced(_trickle(0.005), limits, loop.time() + 0.1, loop.time))


async def test_a_body_that_keeps_up_passes_whole_and_transport_errors_are_unreachable() -> None:
    loop = asyncio.get_running_loop()
    limits = TransferLimits(deadline=3600, min_rate=1, grace=60)
    assert await _drain(paced(_trickle(0, 500), limits, loop.time() + 3600, loop.time)) == 500

    async def broken() -> AsyncIterator[bytes]:
        yield b"x"
        raise httpx.RemoteProtocolError("peer closed")

    with pytest.raises(Unreachable, match="broke off: peer closed"):
        await _drain(paced(broken(), limits, loop.time() + 3600, loop.time, (httpx.HTTPError,)))


async def test_a_body_abandoned_mid_read_cancels_that_read() -> None:
    """As when the client goes: Starlette cancels the task streaming the body."""
    loop = asyncio.get_running_loop()
    started, cancelled = asyncio.Event(), asyncio.Event()

    async def hangs() -> AsyncIterator[bytes]:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise
        yield b""

    body = paced(hangs(), TransferLimits(3600, 0, 60), loop.time() + 3600, loop.time)
    reading = asyncio.ensure_future(anext(body))
    await started.wait()
    reading.cancel()
    with pytest.raises(asyncio.CancelledError):
        await reading
    assert cancelled.is_set()


# ---------------------------------------------------------------- caps


def test_admission_takes_a_slot_of_each_cap_or_none() -> None:
    per_lesson, per_session = Slots(2, "proxied requests in flight"), Slots(3, "proxied requests in flight", "session")
    admission = Admission(per_lesson, per_session)
    a1, a2 = admission.admit("ll-a", "s1"), admission.admit("ll-a", "s1")
    with pytest.raises(LimitReached, match="live lesson ll-a already has 2 proxied requests in flight"):
        admission.admit("ll-a", "s1")
    admission.admit("ll-b", "s1")
    with pytest.raises(LimitReached, match="session s1 already has 3"):
        admission.admit("ll-c", "s1")
    assert per_lesson.count("ll-c") == 0  # a refusal takes nothing
    assert admission.admit("ll-c", "s2") is not None  # other sessions and lessons are not affected
    a1.release()
    a1.release()  # twice is once
    assert per_lesson.count("ll-a") == 1 and per_session.count("s1") == 2
    a2.release()
    assert per_lesson.count("ll-a") == 0
    with pytest.raises(ValueError):
        Slots(0, "nothing")
