"""The Antidote dialect through a running Syringe on the real control plane with the pod stand-in: the whole
journey antidote-web takes through /exp (session, live lesson, polls through BOOTING to READY, a stage change,
the guide and an http tab), and its terminal over socket.io v2 (a python-socketio 4 client, engine.io protocol
3) to the stand-in's real SSH server: `echo hello`, a resize, and a refusal for a host of no live lesson."""

from __future__ import annotations

import asyncio
import json
import os
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
import socketio

from tests.integration.helpers import ServedSyringe, StandInProcess, failure_curriculum, syringe_env

pytestmark = pytest.mark.integration
TEXT = {"Content-Type": "text/plain;charset=UTF-8"}  # what antidote-web's fetch() sends with a string body
LESSON = "antidote-journey"


def _journey_lesson(root: Path) -> Path:
    """A lesson with a slow endpoint (the stand-in starts its pod two seconds late, so BOOTING lasts), an http
    presentation, and two stages."""
    lesson = root / "lessons" / LESSON
    for stage in (0, 1):
        (lesson / f"stage{stage}").mkdir(parents=True)
        (lesson / f"stage{stage}" / "guide.md").write_text(f"# Stage {stage}\n\nRun `echo hello`.\n")
    (lesson / "lesson.meta.yaml").write_text(
        f"name: Antidote journey\nslug: {LESSON}\ncategory: tools\nendpoints:\n"
        "- name: linux1\n  image: slow\n  presentations: [{name: cli, port: 22, type: ssh}]\n"
        "- name: web1\n  image: api-server\n  presentations: [{name: web, port: 8080, type: http}]\n"
        "stages:\n- description: zero\n- description: one\n"
    )
    return root


@pytest.fixture(scope="module")
def served(standin: StandInProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    directory = tmp_path_factory.mktemp("antidote")
    curriculum = _journey_lesson(failure_curriculum(directory / "curriculum"))
    server = ServedSyringe(syringe_env(f"an{os.getpid()}", curriculum), directory / "serve.log")
    try:
        yield server.start()
    finally:
        log = server.stop()
    assert "Traceback" not in log, log[-4000:]


@pytest.fixture
async def http(served: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=served, timeout=60) as client:
        yield client


async def _session(http: httpx.AsyncClient, prefix: str = "") -> str:
    answer = await http.post(f"{prefix}/exp/livesession", content="{}", headers=TEXT)
    assert answer.status_code == 200, answer.text
    session: str = answer.json()["ID"]
    return session


async def _request(http: httpx.AsyncClient, session: str, stage: int, prefix: str = "") -> httpx.Response:
    body = json.dumps({"lessonSlug": LESSON, "lessonStage": stage, "sessionId": session})
    return await http.post(f"{prefix}/exp/livelesson", content=body, headers=TEXT)


async def _poll(http: httpx.AsyncClient, path: str, until: str = "READY") -> tuple[list[str], dict[str, Any]]:
    """Poll as antidote-web does (it waits 500 ms between polls; here less, to see every status)."""
    seen: list[str] = []
    for _ in range(3000):
        answer = await http.get(path)
        assert answer.status_code == 200, answer.text
        view: dict[str, Any] = answer.json()
        if not seen or seen[-1] != view["Status"]:
            seen.append(view["Status"])
        if view["Status"] == until:
            return seen, view
        await asyncio.sleep(0.05)
    raise AssertionError(f"still {seen[-1]} after polling: {seen}")


async def _ready(http: httpx.AsyncClient) -> tuple[str, dict[str, Any]]:
    session = await _session(http)
    livelesson = (await _request(http, session, 0)).json()["id"]
    _, view = await _poll(http, f"/exp/livelesson/{livelesson}")
    return session, view


async def test_the_journey_through_exp(served: str, http: httpx.AsyncClient) -> None:
    prefix = "/acore"  # a production front end shares Syringe's origin and calls <origin>/acore/exp/...
    assert (await http.get(f"{prefix}/exp/curriculum")).json()["AVer"] == "0.7.0"
    lesson = (await http.get(f"{prefix}/exp/lesson/{LESSON}")).json()
    assert [s["Description"] for s in lesson["Stages"]] == ["zero", "one"]

    session = await _session(http, prefix)
    launched = await _request(http, session, 0, prefix)
    assert launched.status_code == 200, launched.text
    livelesson = launched.json()["id"]
    assert (await _request(http, session, 0, prefix)).json() == {"id": livelesson}
    statuses, view = await _poll(http, f"{prefix}/exp/livelesson/{livelesson}")
    assert "BOOTING" in statuses and statuses[-1] == "READY", statuses
    order = ["INITIALIZED", "BOOTING", "CONFIGURATION", "READY"]
    assert statuses == sorted(statuses, key=order.index), statuses
    assert view["HealthyTests"] == view["TotalTests"] == 2
    assert view["GuideType"] == "markdown" and view["GuideContents"].startswith("# Stage 0")
    assert "CurrentStage" not in view  # stage 0: a zero value
    linux1 = view["LiveEndpoints"]["linux1"]
    assert linux1["Host"] == f"linux1.{livelesson}" and linux1["SSHUser"] == "u" and linux1["SSHPassword"] == "p"

    # The same live lesson is the session's on /api/v1: the session's ID is its bearer token.
    native = await http.get("/api/v1/livelessons", headers={"Authorization": f"Bearer {session}"})
    assert [ll["id"] for ll in native.json()] == [livelesson]

    # The http tab: <scheme>//<HepDomain>/ in an iframe, through Syringe's proxy.
    hep = view["LiveEndpoints"]["web1"]["LivePresentations"][0]["HepDomain"]
    assert hep == f"{served.removeprefix('http://')}{prefix}/exp/livelesson/{livelesson}/endpoints/web1/http/web"
    async with httpx.AsyncClient() as browser:
        page = await browser.get(f"http://{hep}/")
        assert page.status_code == 200 and re.search(r"<h1>[^<]*:8080</h1>", page.text), page.text
        devices = await browser.get(f"http://{hep}/api/devices")
        assert devices.status_code == 200 and isinstance(devices.json(), list)

    # A stage change: the same live lesson moves to stage 1 and is READY again, with that stage's guide.
    assert (await _request(http, session, 1, prefix)).json() == {"id": livelesson}
    _, view = await _poll(http, f"{prefix}/exp/livelesson/{livelesson}")
    assert view["CurrentStage"] == 1 and view["GuideContents"].startswith("# Stage 1")


async def test_a_lost_session_is_renewed_as_antidote_web_does(http: httpx.AsyncClient) -> None:
    refused = await _request(http, "from-another-syringe", 0)
    assert refused.status_code == 400 and "Invalid session ID from-another-syringe" in refused.json()["message"]
    session = await _session(http)  # what the front end does on that message, then it retries
    assert (await _request(http, session, 0)).status_code == 200


class Terminal:
    """antidote-web's side of the terminal: socket.io v2 with WebSSH2's events."""

    def __init__(self, namespace: str = "/") -> None:
        self.client = socketio.AsyncClient(reconnection=False)
        self.namespace = namespace
        self.output = ""
        self.changed = asyncio.Event()
        self.errors: list[str] = []
        self.disconnected = asyncio.Event()
        self.connected = asyncio.Event()
        self.client.on("connect", self.connected.set, namespace=namespace)
        self.client.on("data", self._data, namespace=namespace)
        self.client.on("ssherror", self.errors.append, namespace=namespace)
        self.client.on("disconnect", self.disconnected.set, namespace=namespace)

    def _data(self, text: str) -> None:
        self.output += text
        self.changed.set()

    async def connect(self, served: str, host: str, port: int, transports: list[str] | None = None) -> None:
        query = urlencode({"host": host, "port": port, "username": "u", "userpassword": "p"})
        namespaces = [self.namespace] if self.namespace != "/" else None
        await self.client.connect(f"{served}?{query}", transports=transports, namespaces=namespaces)
        async with asyncio.timeout(20):
            await self.connected.wait()
        await self.client.emit("geometry", (100, 30), namespace=self.namespace)  # as antidote-web on 'connect'

    async def close(self) -> None:
        await self.client.disconnect()
        session = self.client.eio.http  # python-engineio 3's client leaves it open after a refusal
        if session is not None and not session.closed:
            await session.close()

    async def type(self, text: str) -> None:
        await self.client.emit("data", text, namespace=self.namespace)

    async def read_until(self, pattern: str, timeout: float = 20) -> str:
        try:
            async with asyncio.timeout(timeout):
                while not re.search(pattern, self.output):
                    self.changed.clear()
                    await self.changed.wait()
        except TimeoutError:
            raise AssertionError(f"no {pattern!r} in {self.output!r} (errors: {self.errors})") from None
        return self.output


@pytest.mark.parametrize(
    ("namespace", "transports"),
    [("/", None), ("/", ["websocket"]), ("/acore", ["polling"])],
    ids=["polling-then-websocket", "websocket", "namespace-of-the-url-path"],
)
async def test_the_terminal_over_socket_io(
    served: str, http: httpx.AsyncClient, namespace: str, transports: list[str] | None
) -> None:
    session, view = await _ready(http)
    native = f"/api/v1/livelessons/{view['ID']}"
    auth = {"Authorization": f"Bearer {session}"}
    expires = (await http.get(native, headers=auth)).json()["expiresAt"]
    linux1 = view["LiveEndpoints"]["linux1"]
    port = linux1["LivePresentations"][0]["Port"]
    terminal = Terminal(namespace)
    await terminal.connect(served, linux1["Host"], port, transports)
    try:
        await terminal.type("echo hel''lo\n")
        await terminal.read_until(r"[\r\n]hello\r?\n")
        # antidote-web sends no keepalive: typing into the terminal keeps the live lesson alive.
        for _ in range(200):
            if (await http.get(native, headers=auth)).json()["expiresAt"] > expires:
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("typing did not keep the live lesson alive")
        await terminal.client.emit("resize", {"cols": 132, "rows": 50}, namespace=namespace)
        await terminal.type("stty size\n")
        await terminal.read_until(r"50 132")
        await terminal.type("exit\n")
        async with asyncio.timeout(20):
            await terminal.disconnected.wait()  # the shell ended, so did the terminal
    finally:
        await terminal.close()


async def test_the_terminal_is_no_ssh_relay(served: str, http: httpx.AsyncClient) -> None:
    _, view = await _ready(http)
    linux1 = view["LiveEndpoints"]["linux1"]
    for host, port in (
        ("127.0.0.1", 22),  # an address, even one Syringe can reach
        (linux1["Host"].replace("linux1", "web1"), 8080),  # an http presentation
        (linux1["Host"].split(".")[0] + ".0000000000", 22),  # a live lesson that does not exist
        (linux1["Host"], 2222),  # a port of no presentation
    ):
        # Refused as WebSSH2 says an SSH failure: ssherror, then the server disconnects (a socket.io v2 client
        # retries a failed connection forever, but never one the server ended).
        terminal = Terminal()
        await terminal.connect(served, host, port)
        try:
            async with asyncio.timeout(20):
                await terminal.disconnected.wait()
        finally:
            await terminal.close()
        assert terminal.errors == [f"{host}:{port} is not a terminal of any live lesson"]
        assert not terminal.output
    # A page from an origin that may not use the dialect cannot open one either (browsers send Origin).
    refused = await http.get(
        "/socket.io/",
        params={"EIO": "3", "transport": "polling", "host": linux1["Host"], "port": 22},
        headers={"Origin": "http://evil.example"},
    )
    assert refused.status_code == 403
