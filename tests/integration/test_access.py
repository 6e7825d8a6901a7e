"""Endpoint access through a running Syringe: terminal, HTTP proxy, NETCONF, isolation, exposure.
Real servers behind every path: the stand-in's asyncssh shell, NETCONF and REST servers, and Debian's sshd."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import websockets
from websockets.asyncio.client import ClientConnection

from api.deps import BEARER_PROTOCOL_PREFIX, TERMINAL_PROTOCOL
from tests.integration.helpers import ServedSyringe, StandInProcess, failure_curriculum, syringe_env

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def served(standin: StandInProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    directory = tmp_path_factory.mktemp("access")
    env = syringe_env(
        f"ac{os.getpid()}",
        failure_curriculum(directory / "curriculum"),
        SYRINGE_PLAN__EXPOSE='["netconf"]',
        SYRINGE_KUBERNETES__EXTERNAL_HOST="lab.example.net",
        SYRINGE_ACCESS__TERMINALS_PER_LIVELESSON="3",
        SYRINGE_ACCESS__TERMINAL_IDLE_TIMEOUT="4",
    )
    server = ServedSyringe(env, directory / "serve.log")
    try:
        yield server.start()
    finally:
        log = server.stop()
    assert "Traceback" not in log, log[-4000:]


@pytest.fixture
async def http(served: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=served, timeout=60) as client:
        yield client


async def _ready(http: httpx.AsyncClient, lesson: str) -> tuple[dict[str, str], str, dict[str, Any]]:
    token = (await http.post("/api/v1/sessions")).json()["token"]
    auth = {"Authorization": f"Bearer {token}"}
    livelesson = (await http.post("/api/v1/livelessons", json={"lesson": lesson}, headers=auth)).json()["id"]
    for _ in range(600):
        view = (await http.get(f"/api/v1/livelessons/{livelesson}", headers=auth)).json()
        if view["status"] in ("READY", "ERROR"):
            break
        await asyncio.sleep(0.1)
    assert view["status"] == "READY", view["error"]
    return auth, token, view


def _presentation(view: dict[str, Any], endpoint: str, name: str) -> dict[str, Any]:
    ep = next(e for e in view["endpoints"] if e["name"] == endpoint)
    found: dict[str, Any] = next(p for p in ep["presentations"] if p["name"] == name)
    return found


async def _read_until(ws: ClientConnection, pattern: str, timeout: float = 10) -> str:
    seen = ""
    async with asyncio.timeout(timeout):
        while not re.search(pattern, seen):
            message = await ws.recv()
            seen += message.decode(errors="replace") if isinstance(message, bytes) else message
    return seen


async def _terminal(served: str, url: str, token: str, extra: str = "") -> ClientConnection:
    ws_url = served.replace("http://", "ws://") + url + f"&token={token}" + extra
    return await websockets.connect(ws_url, max_size=None)


@pytest.mark.parametrize("lesson", ["linux-basics", "openssh-host"])
async def test_terminal_types_resizes_and_closes(served: str, http: httpx.AsyncClient, lesson: str) -> None:
    """Against the stand-in's asyncssh shell, and against Debian's own OpenSSH server."""
    _, token, view = await _ready(http, lesson)
    endpoint = view["endpoints"][0]["name"]
    url = _presentation(view, endpoint, "cli")["access"]["terminalUrl"]
    assert url == f"/api/v1/livelessons/{view['id']}/endpoints/{endpoint}/terminal?presentation=cli"

    ws = await _terminal(served, url, token, "&cols=100&rows=30")
    await ws.send(b"echo hel''lo\n")
    assert "hello" in await _read_until(ws, r"[\r\n]hello\r?\n")
    await ws.send(json.dumps({"type": "resize", "cols": 132, "rows": 50}))
    await ws.send(json.dumps({"type": "input", "data": "stty size; echo pid=$$\n"}))
    output = await _read_until(ws, r"pid=\d+")
    assert "50 132" in output
    shell_pid = int(re.search(r"pid=(\d+)", output).group(1))  # type: ignore[union-attr]
    os.kill(shell_pid, 0)  # the shell runs on this machine: it exists now
    await ws.close()
    for _ in range(100):  # closing the WebSocket ends the SSH session, and with it the shell
        try:
            os.kill(shell_pid, 0)
        except ProcessLookupError:
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError(f"shell {shell_pid} still running after the WebSocket closed")

    ws = await _terminal(served, url, token)
    await ws.send(b"exit 3\n")
    with pytest.raises(websockets.ConnectionClosed) as closed:
        await _read_until(ws, r"will not appear")
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1000
    assert closed.value.rcvd.reason == "session ended (exit status 3)"


async def test_terminal_is_binary_safe_and_refuses_clearly(served: str, http: httpx.AsyncClient) -> None:
    _, token, view = await _ready(http, "linux-basics")
    url = _presentation(view, "linux1", "cli")["access"]["terminalUrl"]
    ws = await _terminal(served, url, token)
    await ws.send(b"printf '\\xff\\x00\\xfe|d''one'\n")
    raw = b""
    async with asyncio.timeout(10):
        while b"\xfe|done" not in raw:
            chunk = await ws.recv()
            raw += chunk if isinstance(chunk, bytes) else chunk.encode()
    assert b"\xff\x00\xfe|done" in raw
    others = [await _terminal(served, url, token) for _ in range(2)]  # the cap is 3 per live lesson
    refused = await _terminal(served, url, token)
    with pytest.raises(websockets.ConnectionClosed) as closed:
        await refused.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4429
    for open_ws in [ws, *others]:
        await open_ws.close()

    with pytest.raises(websockets.ConnectionClosed) as closed:
        async with asyncio.timeout(30):
            while True:  # the server frees the slots of closed terminals a moment after they close
                idle = await _terminal(served, url, token)  # the idle timeout is 4 s here
                with contextlib.suppress(websockets.ConnectionClosed):
                    while True:
                        await idle.recv()
                if idle.close_code != 4429:
                    await idle.recv()  # raises with this terminal's own close
    assert closed.value.rcvd is not None
    assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (4408, "closed after inactivity")

    bad = await websockets.connect(served.replace("http://", "ws://") + url + "&token=nope")
    with pytest.raises(websockets.ConnectionClosed) as closed:
        await bad.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401


async def test_a_browser_gives_the_terminal_its_token_as_a_subprotocol(served: str, http: httpx.AsyncClient) -> None:
    """What the web front end does: no token in the URL; the server answers with the terminal protocol."""
    _, token, view = await _ready(http, "two-hosts")
    url = served.replace("http://", "ws://") + _presentation(view, "linux1", "cli")["access"]["terminalUrl"]
    offered = [TERMINAL_PROTOCOL, BEARER_PROTOCOL_PREFIX + token]
    ws = await websockets.connect(url, subprotocols=offered)  # type: ignore[arg-type]
    assert ws.subprotocol == TERMINAL_PROTOCOL
    await ws.send(b"echo sub''protocol\n")
    assert "subprotocol" in await _read_until(ws, r"[\r\n]subprotocol\r?\n")
    await ws.close()

    stranger = await websockets.connect(url, subprotocols=[TERMINAL_PROTOCOL, BEARER_PROTOCOL_PREFIX + "nope"])  # type: ignore[list-item]
    with pytest.raises(websockets.ConnectionClosed) as closed:
        await stranger.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401


async def test_http_proxy(served: str, http: httpx.AsyncClient) -> None:
    auth, token, view = await _ready(http, "rest-api-basics")
    prefix = _presentation(view, "inventory", "web")["access"]["proxyUrl"]
    assert prefix == f"/api/v1/livelessons/{view['id']}/endpoints/inventory/http/web/"

    page = await http.get(prefix, headers=auth)
    assert page.status_code == 200 and "<h1>inventory:8080</h1>" in page.text
    devices = [{"name": f"r{i}", "notes": "x" * 100} for i in range(3)]
    put = await http.put(prefix + "api/devices", json=devices, headers=auth)
    assert put.status_code == 200 and put.json() == devices
    assert (await http.get(prefix + "api/devices", headers=auth)).json() == devices

    moved = await http.get(prefix + "redirect?to=/api/devices", headers=auth)
    assert moved.status_code == 302
    assert moved.headers["location"] == prefix + "api/devices"

    posted = await http.post(prefix + "api/echo", json={"hello": "world"}, headers=auth)
    assert posted.status_code == 200 and posted.json() == {"bytes": len(b'{"hello":"world"}')}
    big = await http.post(prefix + "api/echo", content=os.urandom(3 * 1024 * 1024), headers=auth)
    assert big.status_code == 200 and big.headers["x-received-bytes"] == str(3 * 1024 * 1024)
    streamed = await http.get(prefix + "api/stream?megabytes=4", headers=auth)
    assert len(streamed.content) == 4 * 1024 * 1024

    # The endpoint's cookies live under the prefix, marked as its own: only those go back to it.
    cookie = await http.get(prefix + "api/login", headers=auth)
    assert cookie.headers["set-cookie"] == f"syringe-ep.session=abc; HttpOnly; Path={prefix}app"
    echoed = await http.get(prefix + "api/whoami", headers={**auth, "Cookie": "syringe-ep.session=abc"})
    assert echoed.json() == {"session": "abc", "authorization": None}
    unmarked = await http.get(prefix + "api/whoami", headers={**auth, "Cookie": "session=abc"})
    assert unmarked.json() == {"session": None, "authorization": None}

    # An iframe cannot send the header: ?token= once, then the cookie scoped to the prefix.
    async with httpx.AsyncClient(base_url=served) as browser:
        first = await browser.get(prefix + f"?token={token}")
        assert first.status_code == 200
        assert (await browser.get(prefix + "api/devices")).json() == devices


async def test_netconf_rpc_through_the_api(served: str, http: httpx.AsyncClient) -> None:
    auth, _, view = await _ready(http, "netconf-basics")
    netconf = _presentation(view, "vr1", "netconf")["access"]["netconf"]
    assert netconf["port"] == 830 and netconf["username"] == "antidote" and netconf["password"] is None
    rpc_url = netconf["rpcUrl"]
    config = '<system xmlns="urn:ietf:params:xml:ns:yang:ietf-system"><hostname>edited</hostname></system>'
    edit = (
        '<edit-config xmlns="urn:ietf:params:xml:ns:netconf:base:1.0"><target><running/></target>'
        f"<config>{config}</config></edit-config>"
    )
    xml = {**auth, "Content-Type": "application/xml"}
    edited = await http.post(rpc_url, content=edit, headers=xml)
    assert edited.status_code == 200 and edited.headers["content-type"].startswith("application/xml")
    assert "<ok" in edited.text
    got = await http.post(
        rpc_url,
        headers=xml,
        content='<get-config xmlns="urn:ietf:params:xml:ns:netconf:base:1.0"><source><running/></source></get-config>',
    )
    assert got.status_code == 200 and re.search(r"<(\w+:)?hostname>edited</(\w+:)?hostname>", got.text)
    bad = await http.post(rpc_url, content="<get-config><unclosed>", headers=xml)
    assert bad.status_code == 422 and bad.json()["type"].endswith("/invalid-xml")
    bomb = '<!DOCTYPE x [<!ENTITY a "aaaa">]><get-config>&a;</get-config>'
    assert (await http.post(rpc_url, content=bomb, headers=xml)).status_code == 422

    exposed = _presentation(view, "vr1", "netconf")["access"]["external"]
    assert exposed["host"] == "lab.example.net"
    assert 30000 <= exposed["port"] <= 32767
    assert _presentation(view, "vr1", "cli")["access"]["external"] is None


async def test_another_learner_gets_404_on_every_access_path(served: str, http: httpx.AsyncClient) -> None:
    _, _, rest = await _ready(http, "rest-api-basics")
    _, _, nc = await _ready(http, "netconf-basics")
    stranger = (await http.post("/api/v1/sessions")).json()["token"]
    headers = {"Authorization": f"Bearer {stranger}"}
    proxy = _presentation(rest, "inventory", "web")["access"]["proxyUrl"]
    rpc = _presentation(nc, "vr1", "netconf")["access"]["netconf"]["rpcUrl"]
    for response in (
        await http.get(proxy, headers=headers),
        await http.post(proxy + "api/devices", json=[], headers=headers),
        await http.post(rpc, content="<get/>", headers={**headers, "Content-Type": "application/xml"}),
    ):
        assert response.status_code == 404
        assert response.json()["type"].endswith("/livelesson-not-found")
    ws = await _terminal(served, _presentation(nc, "vr1", "cli")["access"]["terminalUrl"], stranger)
    with pytest.raises(websockets.ConnectionClosed) as closed:
        await ws.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4404
