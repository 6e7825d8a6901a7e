"""Endpoint access against hostile endpoints and greedy learners: the learner controls what the endpoint sends
back. Real servers behind every path (the stand-in's REST, SSH and NETCONF servers, misbehaving on request),
and a real `syringe serve` whose memory is read from /proc."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import websockets

from tests.integration.helpers import ServedSyringe, StandInProcess, failure_curriculum, syringe_env
from tests.integration.test_access import _presentation, _read_until, _ready, _terminal
from tests.standin.hostile import ORIGIN_WIDE_HEADERS

pytestmark = pytest.mark.integration

PER_LIVELESSON = 8
MAX_REPLY = 2 * 1024 * 1024
TEMPLATE = "http://{livelesson}-{endpoint}-{presentation}.labs.test"
MiB = 1024 * 1024


@pytest.fixture(scope="module")
def served(standin: StandInProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedSyringe]:
    directory = tmp_path_factory.mktemp("hostile")
    env = syringe_env(
        f"ho{os.getpid()}",
        failure_curriculum(directory / "curriculum"),
        SYRINGE_ACCESS__PROXY_PER_LIVELESSON=str(PER_LIVELESSON),
        SYRINGE_ACCESS__PROXY_TIMEOUT="10",
        SYRINGE_ACCESS__PROXY_MIN_RATE="64",
        SYRINGE_ACCESS__PROXY_RATE_GRACE="2",
        SYRINGE_ACCESS__PROXY_ORIGIN_TEMPLATE=TEMPLATE,
        SYRINGE_ACCESS__NETCONF_PER_LIVELESSON="2",
        SYRINGE_ACCESS__NETCONF_MAX_REPLY_BYTES=str(MAX_REPLY),
        SYRINGE_ACCESS__NETCONF_TIMEOUT="20",
        SYRINGE_API__TRUSTED_PROXIES='["127.0.0.1/32"]',
    )
    server = ServedSyringe(env, directory / "serve.log")
    try:
        server.start()
        yield server
    finally:
        log = server.stop()
    assert "Traceback" not in log, log[-4000:]


@pytest.fixture
async def http(served: ServedSyringe) -> AsyncIterator[httpx.AsyncClient]:
    limits = httpx.Limits(max_connections=400, max_keepalive_connections=50)
    async with httpx.AsyncClient(base_url=served.base, timeout=60, limits=limits) as client:
        yield client


def _memory(served: ServedSyringe) -> tuple[int, int]:
    """(resident, peak resident) bytes of the served process, from /proc."""
    assert served.process is not None
    status = Path(f"/proc/{served.process.pid}/status").read_text()
    found = {m.group(1): int(m.group(2)) * 1024 for m in re.finditer(r"^(VmRSS|VmHWM):\s+(\d+) kB", status, re.M)}
    return found["VmRSS"], found["VmHWM"]


def _problem(response: httpx.Response, status: int, kind: str) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["type"].endswith(f"/{kind}"), body
    detail: str = body["detail"]
    return detail


# ---------------------------------------------------------------- the HTTP proxy: greedy learners


async def test_one_lessons_slow_bodies_do_not_starve_another_lessons_proxy(
    served: ServedSyringe, http: httpx.AsyncClient
) -> None:
    """210 responses that trickle a byte every 5 s, more than the old shared pool's 200 connections: the other
    live lesson's proxy still answers, the greedy one is capped with 429, and a trickle is cut off."""
    greedy_auth, _, greedy = await _ready(http, "rest-api-basics")
    other_auth, _, other = await _ready(http, "rest-api-basics")
    greedy_api = f"/api/v1/livelessons/{greedy['id']}/endpoints/inventory/http/web/"

    async with contextlib.AsyncExitStack() as stack:

        async def trickle() -> httpx.Response:
            request = http.build_request(
                "GET", greedy_api + "hostile/trickle?interval=5&count=100", headers=greedy_auth
            )
            response = await http.send(request, stream=True)
            stack.push_async_callback(response.aclose)
            return response

        responses = await asyncio.gather(*(trickle() for _ in range(210)))

        # Meanwhile another learner's live lesson is served as if nothing were happening.
        other_api = f"/api/v1/livelessons/{other['id']}/endpoints/inventory/http/web/"
        page = await http.get(other_api, headers=other_auth)
        assert page.status_code == 200 and "<h1>inventory:8080</h1>" in page.text, page.text

        # The greedy one got its cap's worth, and a problem for the rest.
        admitted = [r for r in responses if r.status_code == 200]
        refused = [r for r in responses if r.status_code != 200]
        assert len(admitted) == PER_LIVELESSON
        for response in refused:
            await response.aread()
            detail = _problem(response, 429, "access-limit")
            assert f"live lesson {greedy['id']} already has {PER_LIVELESSON} proxied requests in flight" in detail
            assert response.headers["retry-after"] == "1"

        # A body below the minimum rate (64 B/s here, judged after 2 s) is cut off: the client sees it incomplete.
        async with asyncio.timeout(120):  # a liveness bound: the old proxy waits on the trickle for 500 s
            with pytest.raises(httpx.RemoteProtocolError):
                await admitted[0].aread()

    # Every slot comes back once the responses end, however they end.
    for _ in range(200):
        page = await http.get(greedy_api, headers=greedy_auth)
        if page.status_code == 200:
            break
        await asyncio.sleep(0.1)
    assert page.status_code == 200, page.text


# ---------------------------------------------------------------- the proxy's origin


async def test_on_syringes_origin_nothing_the_endpoint_sends_acts_on_the_origin(
    served: ServedSyringe, http: httpx.AsyncClient
) -> None:
    auth, token, view = await _ready(http, "rest-api-basics")
    prefix = f"/api/v1/livelessons/{view['id']}/endpoints/inventory/http/web"

    page = await http.get(f"{prefix}/hostile/origin-wide", headers=auth)
    assert page.status_code == 200 and "origin-wide" in page.text
    for name in ORIGIN_WIDE_HEADERS:
        assert name.lower() not in page.headers, name
    assert page.headers["x-endpoint"] == "kept"
    assert page.headers["content-security-policy"] == "default-src 'self'"  # the page's own policy stays
    assert page.headers.get_list("set-cookie") == [
        f"syringe-ep.tracker=1; Path={prefix}/",  # marked as the endpoint's, under the prefix, no Domain
        f"syringe-ep.prefs=dark; Path={prefix}/",
    ]

    # A service worker would outlive the page and could take the origin's scope: refused.
    refused = await http.get(f"{prefix}/hostile/sw.js", headers={**auth, "Service-Worker": "script"})
    assert "service workers" in _problem(refused, 403, "forbidden")
    script = await http.get(f"{prefix}/hostile/sw.js", headers=auth)
    assert script.status_code == 200 and "service-worker-allowed" not in script.headers

    # The endpoint sees the cookies it set, and none of Syringe's origin; the token is not in the Referer.
    cookies = f"syringe_token={token}; frontend_session=s3cr3t; _ga=GA1; syringe-ep.session=abc"
    referer = f"http://127.0.0.1{prefix}/?token={token}&tab=2"
    seen = await http.get(f"{prefix}/api/seen", headers={**auth, "Cookie": cookies, "Referer": referer})
    assert seen.json() == {"cookies": {"session": "abc"}, "referer": f"http://127.0.0.1{prefix}/?tab=2"}

    # The token's cookie is Secure when the browser came over TLS (a trusted proxy says so), and only then.
    over_tls = await http.get(f"{prefix}/?token={token}", headers={"X-Forwarded-Proto": "https"})
    assert re.search(r"syringe_token=[^;]+;.*\bSecure\b", over_tls.headers["set-cookie"], re.I)
    assert "httponly" in over_tls.headers["set-cookie"].lower()
    plain = await http.get(f"{prefix}/?token={token}")
    assert "secure" not in plain.headers["set-cookie"].lower()


async def test_each_live_lesson_presentation_can_have_an_origin_of_its_own(
    served: ServedSyringe, http: httpx.AsyncClient
) -> None:
    auth, token, view = await _ready(http, "rest-api-basics")
    origin = _presentation(view, "inventory", "web")["access"]["proxyUrl"]
    host = httpx.URL(origin).host
    assert host == f"{view['id']}-inventory-web.labs.test"

    async with httpx.AsyncClient(base_url=served.base, headers={"Host": host}, timeout=30) as lab:
        first = await lab.get(f"/hostile/origin-wide?token={token}")
        assert first.status_code == 200 and "origin-wide" in first.text
        # That origin is the endpoint's: its headers pass, its cookies keep their names; only Domain goes.
        assert first.headers["service-worker-allowed"] == "/"
        assert first.headers["access-control-allow-origin"] == "https://evil.example"
        cookies = first.headers.get_list("set-cookie")
        assert "tracker=1; Path=/" in cookies and "prefs=dark; Path=/" in cookies
        assert any(c.startswith("syringe_token=") and "Path=/" in c for c in cookies)
        assert lab.cookies.get("syringe_token") == token

        # The cookie carries the session from then on; the endpoint never sees it.
        seen = await lab.get("/api/seen", headers={"Cookie": f"syringe_token={token}; prefs=dark"})
        assert seen.status_code == 200 and seen.json()["cookies"] == {"prefs": "dark"}
        assert (await lab.get("/hostile/sw.js", headers={"Cookie": f"syringe_token={token}"})).status_code == 200

        # Nothing of Syringe's own API is reachable on that host: every path is the endpoint's.
        sessions = await lab.post("/api/v1/sessions", headers={"Cookie": f"syringe_token={token}"})
        assert sessions.status_code in (404, 405) and "token" not in sessions.text
        stranger = (await http.post("/api/v1/sessions")).json()["token"]
        other = await lab.get("/", headers={"Authorization": f"Bearer {stranger}"})
        assert other.status_code == 404
        lab.cookies.clear()
        assert (await lab.get("/")).status_code == 401

    # On Syringe's own origin the same presentation stays reachable under its prefix.
    api_path = f"/api/v1/livelessons/{view['id']}/endpoints/inventory/http/web/"
    assert (await http.get(api_path, headers=auth)).status_code == 200


# ---------------------------------------------------------------- the terminal


async def _flood(ws: websockets.ClientConnection, frame: bytes, count: int) -> int | None:
    """Send ``frame`` up to ``count`` times; the close code once Syringe closes the terminal (None if it does
    not within a liveness bound, which is no measurement: the old bridge never closed)."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(120):
            with contextlib.suppress(websockets.ConnectionClosed):
                for _ in range(count):
                    await ws.send(frame)
                while True:
                    await ws.recv()
    return ws.close_code


async def test_a_terminal_flooded_with_large_frames_closes_and_memory_stays_bounded(
    served: ServedSyringe, http: httpx.AsyncClient
) -> None:
    _, token, view = await _ready(http, "linux-basics")
    url = _presentation(view, "linux1", "cli")["access"]["terminalUrl"]
    before, _ = _memory(served)

    ws = await _terminal(served.base, url, token)
    await ws.send(b"stty raw -echo; echo st''alled; sleep 600\n")  # a shell that reads none of its input
    await _read_until(ws, r"stalled")
    code = await _flood(ws, os.urandom(8 * MiB), 100)
    grown = _memory(served)[1] - before
    assert code == 1009, f"not closed for 8 MiB messages ({code}); syringe grew by {grown // MiB} MiB"

    # Frames under the cap, to a shell that does not read them: closed once 1 MiB waits.
    ws = await _terminal(served.base, url, token)
    await ws.send(b"stty raw -echo; echo st''alled; sleep 600\n")
    await _read_until(ws, r"stalled")
    code = await _flood(ws, os.urandom(64 * 1024), 1000)
    grown = _memory(served)[1] - before
    assert code == 4413, f"not closed for input nobody reads ({code}); syringe grew by {grown // MiB} MiB"
    assert ws.close_reason == "the endpoint is not reading its input: over 1048576 bytes wait"
    assert grown < 200 * MiB, f"syringe grew by {grown // MiB} MiB"

    # The endpoint itself is fine: a new terminal works.
    ws = await _terminal(served.base, url, token)
    await ws.send(b"echo f''ine\n")
    await _read_until(ws, r"fine")
    await ws.close()


# ---------------------------------------------------------------- NETCONF


async def test_an_endless_netconf_reply_is_a_clear_error_in_bounded_memory(
    served: ServedSyringe, http: httpx.AsyncClient
) -> None:
    auth, _, view = await _ready(http, "netconf-basics")
    rpc_url = _presentation(view, "vr1", "netconf")["access"]["netconf"]["rpcUrl"]
    xml = {**auth, "Content-Type": "application/xml"}
    before, _ = _memory(served)
    for _ in range(3):
        endless = await http.post(rpc_url, content='<endless-reply xmlns="urn:test:hostile"/>', headers=xml)
        detail = _problem(endless, 502, "endpoint-unreachable")
        assert detail == f"vr1/netconf: the server's message is larger than {MAX_REPLY} bytes (Syringe's cap)"
    _, peak = _memory(served)
    assert peak - before < 100 * MiB, f"syringe grew by {(peak - before) // MiB} MiB"
    get = '<get-config xmlns="urn:ietf:params:xml:ns:netconf:base:1.0"><source><running/></source></get-config>'
    assert (await http.post(rpc_url, content=get, headers=xml)).status_code == 200


async def test_concurrent_netconf_rpcs_are_capped_per_live_lesson(
    served: ServedSyringe, http: httpx.AsyncClient
) -> None:
    auth, _, view = await _ready(http, "netconf-basics")
    other_auth, _, other = await _ready(http, "netconf-basics")
    rpc_url = _presentation(view, "vr1", "netconf")["access"]["netconf"]["rpcUrl"]
    other_url = _presentation(other, "vr1", "netconf")["access"]["netconf"]["rpcUrl"]
    xml = {**auth, "Content-Type": "application/xml"}
    get = '<get-config xmlns="urn:ietf:params:xml:ns:netconf:base:1.0"><source><running/></source></get-config>'

    no_reply = '<no-reply xmlns="urn:test:hostile"/>'
    # RPCs the device takes and never answers, started one by one until one is refused: the others hold
    # every slot (an admitted one hangs for the 20 s timeout; the wait below only paces the probing).
    started: list[asyncio.Task[httpx.Response]] = []
    for _ in range(20):
        started.append(asyncio.create_task(http.post(rpc_url, content=no_reply, headers=xml)))
        done, _ = await asyncio.wait({started[-1]}, timeout=1)
        if done and started[-1].result().status_code == 429:
            break
    detail = _problem(started[-1].result(), 429, "access-limit")
    assert detail == f"live lesson {view['id']} already has 2 NETCONF RPCs in flight (the limit)"
    assert _problem(await http.post(rpc_url, content=get, headers=xml), 429, "access-limit") == detail
    # Another live lesson is not held back.
    elsewhere = await http.post(other_url, content=get, headers={**other_auth, "Content-Type": "application/xml"})
    assert elsewhere.status_code == 200

    answers = [await task for task in started]
    hung = [r for r in answers if r.status_code == 502]
    assert len(hung) == 2 and all(r.status_code == 429 for r in answers if r not in hung)
    for response in hung:
        assert "no reply within 20s" in _problem(response, 502, "endpoint-unreachable")
    assert (await http.post(rpc_url, content=get, headers=xml)).status_code == 200
