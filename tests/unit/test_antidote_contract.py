"""The Antidote dialect's contract (issue 16), in-process over httpx with no cluster: every path under /exp and
/acore/exp, key names and case, zero values left out, text/plain bodies, the 400 that renews a session, 404s,
grpc-gateway's error shape, CORS, and the socket.io terminal's refusals. Live lessons come from a real
LiveLessons façade over a runtime that applies nothing, so the test says where each one stands."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from api.antidote import mount
from api.antidote.cors import OriginPolicy, parse_origin
from api.antidote.guesses import Guesses
from api.antidote.views import message, parse_terminal_host, terminal_host
from api.app import create_app
from syringe.livelessons import LiveLesson, LiveLessons, Status
from syringe.plan import PlanSettings
from syringe.runtime.base import EndpointObservation, Reach
from syringe.settings import AccessSettings, AntidoteSettings, LifecycleSettings, LocalSettings, Settings

REPO = Path(__file__).resolve().parents[2]
BASE = "http://syringe.test"
TEXT = {"Content-Type": "text/plain;charset=UTF-8"}  # what antidote-web's fetch() sends with a string body
PREFIXES = ["", "/acore"]


class HeldRuntime:
    """Applies nothing and reports nothing: a live lesson stays where the test puts it."""

    def __init__(self) -> None:
        self.never = asyncio.Event()

    async def check(self) -> list[str]:
        return []

    async def start(self) -> None:
        return None

    async def apply(self, plan: object) -> None:
        await self.never.wait()

    async def create(self, objects: object) -> None:
        return None

    async def delete_jobs(self, namespace: str, label_selector: str) -> None:
        return None

    async def annotate(self, namespace: str, annotations: object) -> None:
        return None

    async def delete(self, namespace: str, timeout: float) -> bool:
        return True

    async def list_live_lessons(self) -> list[object]:
        return []

    async def events(self) -> AsyncIterator[object]:
        await self.never.wait()
        yield None

    async def close(self) -> None:
        return None


def _settings(**antidote: Any) -> Settings:
    return Settings(
        curriculum=REPO / "lessons",
        local=LocalSettings(enabled=False),
        antidote=AntidoteSettings(**antidote),
        access=AccessSettings(terminals_per_livelesson=2),
    )


@pytest.fixture
def app() -> FastAPI:
    """The app as it is with no runtime: the catalog serves, live lessons answer 503."""
    return create_app(_settings())


@pytest.fixture
async def live(app: FastAPI) -> AsyncIterator[LiveLessons]:
    """The same app with live lessons, on a runtime that never moves them on."""
    manager = LiveLessons(app.state.catalog.tree, HeldRuntime(), PlanSettings(instance="ut"), LifecycleSettings())
    app.state.manager, app.state.learners = manager, manager.learners
    yield manager
    await mount.close(app)
    await manager.stop()


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as c:
        yield c


def _grpc_error(response: httpx.Response, status: int, code: int) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"error", "code", "message"} and body["code"] == code
    assert body["error"] == body["message"]
    message_text: str = body["message"]
    return message_text


async def _session(client: httpx.AsyncClient) -> str:
    answer = await client.post("/exp/livesession", content="{}", headers=TEXT)
    assert answer.status_code == 200 and list(answer.json()) == ["ID"]
    session: str = answer.json()["ID"]
    return session


async def _launch(
    client: httpx.AsyncClient, session: str, slug: str, stage: Any = 0, prefix: str = ""
) -> httpx.Response:
    body = json.dumps({"lessonSlug": slug, "lessonStage": stage, "sessionId": session})
    return await client.post(f"{prefix}/exp/livelesson", content=body, headers=TEXT)


def _ready(manager: LiveLessons, ll: LiveLesson, ports: dict[int, int] | None = None) -> None:
    """As the lifecycle leaves a launched live lesson: endpoints running where the runtime says, READY."""
    for endpoint in ll.endpoints.values():
        reach = Reach("127.0.0.1", ports or {})
        endpoint.observation = EndpointObservation(
            ll.namespace, endpoint.name, "Running", ready=True, reach=reach, identity_assigned=True
        )
        endpoint.reachable = set(endpoint.ports)
    ll.status = Status.READY
    manager.registry.notify(ll)


# ---------------------------------------------------------------------------------------------- catalog
@pytest.mark.parametrize("prefix", PREFIXES)
async def test_catalog_paths_keys_and_zero_values(client: httpx.AsyncClient, prefix: str) -> None:
    curriculum = (await client.get(f"{prefix}/exp/curriculum")).json()
    assert curriculum == {
        "Name": "syringe-examples",
        "Description": "Example lessons for Syringe, one of each shape the platform supports",
        "Website": "https://github.com/syringe-labs/syringe",
        "AVer": "0.7.0",
        "GitRoot": "https://github.com/syringe-labs/syringe",
    }

    lessons = (await client.get(f"{prefix}/exp/lesson")).json()
    assert list(lessons) == ["lessons"]
    assert [lesson["Slug"] for lesson in lessons["lessons"]] == [
        "linux-basics", "netconf-basics", "rest-api-basics", "routing-triangle", "static-routing", "two-hosts"
    ]  # fmt: skip
    fundamentals = (await client.get(f"{prefix}/exp/lesson?Category=fundamentals")).json()["lessons"]
    assert {lesson["Category"] for lesson in fundamentals} == {"fundamentals"}

    linux = (await client.get(f"{prefix}/exp/lesson/linux-basics")).json()
    assert linux == next(lesson for lesson in lessons["lessons"] if lesson["Slug"] == "linux-basics")
    assert set(linux) == {
        "Slug",
        "Stages",
        "Name",
        "Endpoints",
        "Authors",
        "Category",
        "Tier",
        "Tags",
        "Collection",
        "Description",
        "ShortDescription",
    }  # fmt: skip   no Diagram, Video, Prereqs, Connections or ReadyDelay: all zero here
    assert linux["Stages"] == [{"Description": "Using the Bash shell", "GuideType": "markdown"}]  # no StageVideo
    assert linux["Authors"] == [{"Name": "Syringe maintainers", "Link": "https://github.com/syringe-labs/syringe"}]
    assert linux["Endpoints"] == [
        {"Name": "linux1", "Image": "utility", "Presentations": [{"Name": "cli", "Port": 22, "Type": "ssh"}]}
    ]
    assert linux["Tags"] == ["linux", "bash"] and linux["Collection"] == "syringe-basics"
    triangle = (await client.get(f"{prefix}/exp/lesson/routing-triangle")).json()
    assert triangle["ReadyDelay"] == 2 and triangle["Prereqs"] == ["linux-basics"]
    assert triangle["Connections"][0] == {"A": "r1", "B": "r2"}
    rest = (await client.get(f"{prefix}/exp/lesson/rest-api-basics")).json()
    inventory = next(e for e in rest["Endpoints"] if e["Name"] == "inventory")
    assert inventory["ConfigurationType"] == "python" and inventory["AdditionalPorts"] == [22]

    assert (await client.get(f"{prefix}/exp/lesson/netconf-basics/prereqs")).json() == {"prereqs": ["linux-basics"]}
    assert (await client.get(f"{prefix}/exp/lesson/linux-basics/prereqs")).json() == {}  # an empty list is a zero

    collections = (await client.get(f"{prefix}/exp/collection")).json()
    assert list(collections) == ["collections"]
    assert [c["Slug"] for c in collections["collections"]] == ["syringe-basics"]
    assert "Lessons" not in collections["collections"][0]
    basics = (await client.get(f"{prefix}/exp/collection/syringe-basics")).json()
    assert {"Slug", "Title", "Website", "ContactEmail", "BriefDescription", "LongDescription", "Type", "Tier"} <= set(
        basics
    )
    assert basics["Lessons"][0] == {
        "Slug": "linux-basics",
        "Name": "Linux Basics",
        "Description": linux["Description"],
    }
    assert len(basics["Lessons"]) == 6


@pytest.mark.parametrize("prefix", PREFIXES)
async def test_unknown_things_are_grpc_404s(client: httpx.AsyncClient, prefix: str) -> None:
    for path in (
        "/exp/lesson/nope",
        "/exp/lesson/nope/prereqs",
        "/exp/collection/nope",
        "/exp/nothing/here",
        "/exp/lesson/linux-basics/notebooks/stage9/guide.ipynb",
        "/exp/lesson/linux-basics/notebooks/guide/guide.ipynb",
    ):
        _grpc_error(await client.get(prefix + path), 404, 5)
    _grpc_error(await client.put(f"{prefix}/exp/lesson"), 404, 5)  # grpc-gateway's answer, not a problem document


async def test_a_jupyter_guide_is_a_page_where_antidote_web_looks_for_it(client: httpx.AsyncClient) -> None:
    page = await client.get("/acore/exp/lesson/rest-api-basics/notebooks/stage1/guide.ipynb")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "<h1>Calling the API from Python</h1>" in page.text


# ---------------------------------------------------------------------------------------------- sessions
async def test_bodies_are_json_whatever_the_content_type(client: httpx.AsyncClient, live: LiveLessons) -> None:
    for headers in (TEXT, {"Content-Type": "application/json"}, {}):
        answer = await client.post("/exp/livesession", content="{}", headers=headers)
        assert answer.status_code == 200 and list(answer.json()) == ["ID"]
    assert (await client.post("/exp/livesession")).status_code == 200  # no body at all
    assert "not JSON" in _grpc_error(await client.post("/exp/livesession", content="{nope", headers=TEXT), 400, 3)
    assert "object" in _grpc_error(await client.post("/exp/livelesson", content="[]", headers=TEXT), 400, 3)
    session = await _session(client)
    for stage in (None, "0", 0, 0.0):
        assert (await _launch(client, session, "linux-basics", stage)).status_code == 200
    for stage in ("one", 0.5, True, [0]):
        _grpc_error(await _launch(client, session, "linux-basics", stage), 400, 3)


@pytest.mark.parametrize("prefix", PREFIXES)
async def test_launch_refusals_say_what_antidote_said(
    client: httpx.AsyncClient, live: LiveLessons, prefix: str
) -> None:
    session = await _session(client)
    # The text antidote-web matches to renew its session and retry.
    refused = _grpc_error(await _launch(client, "a-session-id-from-yesterday", "linux-basics", prefix=prefix), 400, 3)
    assert refused == "Invalid session ID a-session-id-from-yesterday"
    assert _grpc_error(await _launch(client, "", "linux-basics", prefix=prefix), 400, 3) == "Session ID cannot be nil"
    assert _grpc_error(await _launch(client, session, "", prefix=prefix), 400, 3) == "Lesson Slug cannot be nil"
    assert "nope" in _grpc_error(await _launch(client, session, "nope", prefix=prefix), 404, 5)
    invalid_stage = _grpc_error(await _launch(client, session, "linux-basics", 1, prefix=prefix), 400, 3)
    assert invalid_stage == "Invalid stage ID for this lesson"
    assert not live.all()  # nothing was launched by any of these


async def test_without_a_runtime_live_lessons_are_unavailable(client: httpx.AsyncClient) -> None:
    session = await _session(client)
    assert "unavailable" in _grpc_error(await _launch(client, session, "linux-basics"), 503, 14)
    _grpc_error(await client.get("/exp/livelesson/0123456789"), 503, 14)


# ---------------------------------------------------------------------------------------------- live lessons
@pytest.mark.parametrize("prefix", PREFIXES)
async def test_a_live_lesson_as_antidote_web_polls_it(
    client: httpx.AsyncClient, live: LiveLessons, prefix: str
) -> None:
    session = await _session(client)
    launched = await _launch(client, session, "rest-api-basics", prefix=prefix)
    assert launched.status_code == 200 and list(launched.json()) == ["id"]  # lower-case id
    livelesson = launched.json()["id"]
    assert (await _launch(client, session, "rest-api-basics", prefix=prefix)).json() == {"id": livelesson}
    ll = live.get(livelesson)
    assert ll.session == live.learners.all()[0].id  # the token's session: the same state as /api/v1

    polled = await client.get(f"{prefix}/exp/livelesson/{livelesson}")
    assert polled.status_code == 200
    view = polled.json()
    assert view["ID"] == livelesson and view["SessionID"] == ll.session and view["SessionID"] != session
    assert view["LessonSlug"] == "rest-api-basics" and view["Status"] == "INITIALIZED"
    assert "CurrentStage" not in view and "HealthyTests" not in view  # stage 0 and no healthy endpoint: zeros
    assert view["TotalTests"] == 2
    assert view["GuideType"] == "markdown" and view["GuideContents"].startswith("#")
    assert "GuideDomain" not in view and "Error" not in view
    assert set(view["LiveEndpoints"]) == {"linux1", "inventory"}
    linux1 = view["LiveEndpoints"]["linux1"]
    assert linux1 == {
        "Name": "linux1",
        "Image": "utility",
        "Ports": [22],
        "LivePresentations": [{"Name": "cli", "Port": 22, "Type": "ssh"}],
        "Host": f"linux1.{livelesson}",
        "SSHUser": "antidote",
        "SSHPassword": "antidotepassword",  # shown to the browser, as antidote-core did
    }
    inventory = view["LiveEndpoints"]["inventory"]
    assert inventory["Ports"] == [8080, 22]
    assert inventory["LivePresentations"] == [
        {
            "Name": "web",
            "Port": 8080,
            "Type": "http",
            "HepDomain": f"syringe.test{prefix}/exp/livelesson/{livelesson}/endpoints/inventory/http/web",
        }
    ]

    _ready(live, ll)
    view = (await client.get(f"{prefix}/exp/livelesson/{livelesson}")).json()
    assert view["Status"] == "READY" and view["HealthyTests"] == 2
    # Another stage of a READY live lesson moves it there: the same live lesson, configuring the new stage.
    assert (await _launch(client, session, "rest-api-basics", 1, prefix=prefix)).json() == {"id": livelesson}
    view = (await client.get(f"{prefix}/exp/livelesson/{livelesson}")).json()
    assert view["CurrentStage"] == 1 and view["Status"] == "CONFIGURATION"
    assert view["GuideType"] == "jupyter" and "GuideContents" not in view
    assert view["GuideDomain"] == f"syringe.test{prefix}/exp/lesson/rest-api-basics"
    # ... and while it is not READY, another stage is an error.
    busy = _grpc_error(await _launch(client, session, "rest-api-basics", 0, prefix=prefix), 400, 9)
    assert "READY" in busy


async def test_asking_again_keeps_the_live_lesson_alive(client: httpx.AsyncClient, live: LiveLessons) -> None:
    session = await _session(client)
    livelesson = (await _launch(client, session, "linux-basics")).json()["id"]
    later = live.clock() + timedelta(minutes=20)
    live.clock = lambda: later
    await _launch(client, session, "linux-basics")
    assert live.get(livelesson).expires_at == later + timedelta(seconds=live.settings.ttl_seconds)


async def test_errors_and_unknown_live_lessons(client: httpx.AsyncClient, live: LiveLessons) -> None:
    _grpc_error(await client.get("/exp/livelesson/0123456789"), 404, 5)
    session = await _session(client)
    livelesson = (await _launch(client, session, "linux-basics")).json()["id"]
    ll = live.get(livelesson)
    ll.status, ll.error = Status.ERROR, "endpoint linux1: starting pod: ImagePullBackOff: no such image"
    live.registry.notify(ll)
    # As antidote-core answered a live lesson in error: the front end shows the message.
    assert "ImagePullBackOff" in _grpc_error(await client.get(f"/exp/livelesson/{livelesson}"), 500, 2)
    # Asking again is how the learner retries: the failed live lesson goes, a new one is launched.
    again = (await _launch(client, session, "linux-basics")).json()["id"]
    assert again != livelesson and live.get(again).status is Status.INITIALIZED
    _grpc_error(await client.get(f"/exp/livelesson/{livelesson}"), 404, 5)
    live.get(again).deleting = True
    _grpc_error(await client.get(f"/exp/livelesson/{again}"), 404, 5)


async def test_the_presentation_host_can_be_set(live: LiveLessons) -> None:
    app = create_app(_settings(public_base="labs.example.net/acore/"))
    app.state.manager, app.state.learners = live, live.learners
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as client:
        session = await _session(client)
        livelesson = (await _launch(client, session, "rest-api-basics")).json()["id"]
        view = (await client.get(f"/exp/livelesson/{livelesson}")).json()
    hep = view["LiveEndpoints"]["inventory"]["LivePresentations"][0]["HepDomain"]
    assert hep == f"labs.example.net/acore/exp/livelesson/{livelesson}/endpoints/inventory/http/web"


# ---------------------------------------------------------------------------------------------- CORS
@pytest.mark.parametrize(
    ("origin", "allowed"),
    [
        ("http://127.0.0.1:8080", True),  # antidote-web in mock mode on this machine, by default
        ("http://localhost:3000", True),
        ("http://localhost", True),
        ("http://syringe.test", True),  # the page's own origin
        ("https://syringe.test", True),  # TLS may end at a proxy in front
        ("https://127.0.0.1:8080", False),
        ("http://evil.example", False),
        ("http://127.0.0.1.evil.example", False),
        ("null", False),
    ],
)
async def test_cors_echoes_allowed_origins_only(client: httpx.AsyncClient, origin: str, allowed: bool) -> None:
    answer = await client.get("/exp/lesson/linux-basics", headers={"Origin": origin})
    assert answer.status_code == 200  # CORS decides what the page may read, not what is served
    assert answer.headers.get("access-control-allow-origin") == (origin if allowed else None)
    assert "Origin" in answer.headers["vary"]
    preflight = await client.options(
        "/acore/exp/livelesson",
        headers={"Origin": origin, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "x-y"},
    )
    if allowed:
        assert preflight.status_code == 204
        assert preflight.headers["access-control-allow-origin"] == origin
        assert "POST" in preflight.headers["access-control-allow-methods"]
        assert preflight.headers["access-control-allow-headers"] == "x-y"
    else:
        assert preflight.status_code == 403 and "access-control-allow-origin" not in preflight.headers
    # The terminal polls with credentials; from an origin that may not, it is refused outright.
    handshake = await client.get("/socket.io/?EIO=3&transport=polling&host=x&port=22", headers={"Origin": origin})
    if allowed:
        assert handshake.headers["access-control-allow-origin"] == origin
        assert handshake.headers["access-control-allow-credentials"] == "true"
    else:
        assert handshake.status_code == 403


async def test_cors_settings() -> None:
    assert OriginPolicy(["*"]).allows("https://anything.example:8443", None)
    listed = OriginPolicy(["https://labs.example.net", "http://10.0.0.5:*"])
    assert listed.allows("https://labs.example.net", None) and listed.allows("https://labs.example.net:443", None)
    assert not listed.allows("https://labs.example.net:8443", None)
    assert listed.allows("http://10.0.0.5:8080", None) and not listed.allows("https://10.0.0.5", None)
    assert parse_origin("http://[::1]:8080") == ("http", "[::1]", "8080")
    assert parse_origin("http://a.example/path") is None
    with pytest.raises(ValueError, match="allowed origin"):
        AntidoteSettings(allowed_origins=["labs.example.net"])
    with pytest.raises(ValueError, match="without a scheme"):
        AntidoteSettings(public_base="https://labs.example.net")


async def test_the_dialect_can_be_turned_off() -> None:
    app = create_app(_settings(enabled=False))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as client:
        for path in ("/exp/lesson", "/acore/exp/curriculum", "/socket.io/?EIO=3&transport=polling"):
            answer = await client.get(path)
            assert answer.status_code == 404 and answer.headers["content-type"] == "application/problem+json"
        assert (await client.get("/api/v1/lessons")).status_code == 200


# ---------------------------------------------------------------------------------------------- the terminal
def test_terminal_hosts_are_names_syringe_gave_out() -> None:
    assert parse_terminal_host(terminal_host("3f9a1c2b7e", "linux1")) == ("3f9a1c2b7e", "linux1")
    for host in ("10.0.0.1", "linux1", "linux1.", ".3f9a", "a.b.c", ""):
        assert parse_terminal_host(host) is None
    assert message(A=0, B="", C=[], D={}, E=False, F=None, G="x", H=1, I=True) == {"G": "x", "H": 1, "I": True}


def _payload(*packets: str) -> str:
    """Engine.io 3's text payload, as antidote-web's polling transport posts it."""
    return "".join(f"{len(packet)}:{packet}" for packet in packets)


def _packets(payload: str) -> list[str]:
    packets, at = [], 0
    while at < len(payload):
        colon = payload.index(":", at)
        size = int(payload[at:colon])
        packets.append(payload[colon + 1 : colon + 1 + size])
        at = colon + 1 + size
    return packets


async def _terminal(client: httpx.AsyncClient, host: str, port: str | int) -> list[str]:
    """antidote-web's terminal, spoken by hand over engine.io 3 polling: the handshake with its query, then
    ``geometry``, then every socket.io packet until the server disconnects (``41``)."""
    query = {"EIO": "3", "transport": "polling", "b64": "1", "host": host, "port": str(port), "username": "antidote",
             "userpassword": "antidotepassword"}  # fmt: skip
    opened = await client.get("/socket.io/", params=query)
    assert opened.status_code == 200, opened.text
    handshake, *received = _packets(opened.text)
    sid = json.loads(handshake[1:])["sid"]
    session = {"EIO": "3", "transport": "polling", "b64": "1", "sid": sid}
    posted = await client.post("/socket.io/", params=session, content=_payload('42["geometry",100,30]'), headers=TEXT)
    assert posted.status_code == 200
    for _ in range(20):
        if "41" in received:
            break
        poll = await client.get("/socket.io/", params=session)
        if poll.status_code != 200:
            break
        received += _packets(poll.text)
    assert received[0] == "40" and "41" in received, received  # connected, then disconnected by the server
    return received


def _ssherror(received: list[str]) -> str:
    errors = [json.loads(p[2:])[1] for p in received if p.startswith('42["ssherror"')]
    assert len(errors) == 1 and not any(p.startswith('42["data"') for p in received), received
    error: str = errors[0]
    return error


async def test_the_terminal_opens_only_for_a_live_lesson_presentation(
    app: FastAPI, client: httpx.AsyncClient, live: LiveLessons
) -> None:
    session = await _session(client)
    livelesson = (await _launch(client, session, "rest-api-basics")).json()["id"]
    ll = live.get(livelesson)
    slots = app.state.terminal_slots
    # Never a relay: an address, a port of nothing, a live lesson that does not exist, an http presentation.
    # A refusal is an ssherror and the server's disconnect, which socket.io v2 clients do not retry.
    for host, port in (
        ("127.0.0.1", 22),
        ("10.0.0.1", 22),
        (f"linux1.{livelesson}", 2222),
        (f"linux1.{livelesson}", "22; rm"),
        ("linux1.0000000000", 22),
        (f"nobody.{livelesson}", 22),
        (f"inventory.{livelesson}", 8080),
        (f"inventory.{livelesson}", 22),  # an additional port is no ssh presentation
    ):
        refusal = _ssherror(await _terminal(client, host, port))
        assert refusal == f"{host}:{port} is not a terminal of any live lesson", (host, port)
    # A presentation of a live lesson whose endpoint is not running yet.
    assert "not running yet" in _ssherror(await _terminal(client, f"linux1.{livelesson}", 22))
    assert slots.total == 0
    # Running: the cap per live lesson (shared with the native terminal) still holds.
    _ready(live, ll, {22: 1})
    slots.acquire(livelesson)
    slots.acquire(livelesson)
    assert "terminals open" in _ssherror(await _terminal(client, f"linux1.{livelesson}", 22))
    slots.release(livelesson)
    # Let in: Syringe dials where the runtime says the endpoint is (here a port where nothing listens).
    assert _ssherror(await _terminal(client, f"linux1.{livelesson}", 22)).startswith("ssh to 127.0.0.1:1: ")
    await mount.close(app)
    assert slots.total == 1  # the terminal gave its slot back


async def test_live_lesson_ids_cannot_be_guessed(app: FastAPI, live: LiveLessons) -> None:
    """The id is the only credential: an address naming ids that do not exist is soon refused every lookup,
    of existing ids too (so a refusal says nothing), by REST and by the terminal; other addresses are not."""
    now = [0.0]
    app.state.antidote_guesses = Guesses(100, clock=lambda: now[0])

    def from_address(address: str) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=(address, 40000)), base_url=BASE)

    async with from_address("203.0.113.7") as guesser, from_address("2001:db8::1") as learner:
        session = await _session(learner)
        real = (await _launch(learner, session, "linux-basics")).json()["id"]
        for guess in range(30):
            _grpc_error(await guesser.get(f"/exp/livelesson/{guess:010x}"), 404, 5)
        _grpc_error(await guesser.get("/exp/livelesson/ffffffffff"), 429, 8)  # one too many
        refused = await guesser.get(f"/exp/livelesson/{real}")
        assert "try again later" in _grpc_error(refused, 429, 8) and int(refused.headers["retry-after"]) >= 1
        _grpc_error(await guesser.get(f"/exp/livelesson/{real}/endpoints/linux1/http/cli/"), 429, 8)
        assert "try again later" in _ssherror(await _terminal(guesser, f"linux1.{real}", 22))
        assert (await learner.get(f"/exp/livelesson/{real}")).status_code == 200
        for guess in range(31):  # an IPv6 client is its /64
            await learner.get(f"/exp/livelesson/{guess:010x}")
        other = httpx.ASGITransport(app=app, client=("2001:db8::2", 40000))
        async with httpx.AsyncClient(transport=other, base_url=BASE) as neighbour:
            _grpc_error(await neighbour.get(f"/exp/livelesson/{real}"), 429, 8)
        now[0] += 60.0  # the bucket refills
        assert (await guesser.get(f"/exp/livelesson/{real}")).status_code == 200
        assert "is not a terminal" in _ssherror(await _terminal(guesser, "linux1.0000000000", 22))
