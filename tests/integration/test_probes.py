"""Protocol probes against real servers, including every way a presentation fails to answer."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import asyncssh
import pytest
from aiohttp import web

from syringe.access.netconf import BASE_10, BASE_11
from syringe.access.probes import Target, http_probe, netconf_probe, ssh_probe, sweep, tcp_probe
from syringe.errors import ProbeFailed
from tests.standin.servers import PodServers

pytestmark = pytest.mark.integration
HOST = "127.105.0.1"


@pytest.fixture
async def servers() -> AsyncIterator[PodServers]:
    pod = PodServers(
        HOST,
        "probe-target",
        [("ssh-2222", 2222), ("netconf-2830", 2830), ("http-2080", 2080)],
        asyncssh.generate_private_key("ssh-ed25519"),
    )
    await pod.start()
    yield pod
    await pod.stop()


async def _serve(handler: object, port: int) -> asyncio.AbstractServer:
    return await asyncio.start_server(handler, HOST, port)  # type: ignore[arg-type]


async def test_each_probe_succeeds_against_its_real_server(servers: PodServers) -> None:
    await tcp_probe(HOST, 2222)
    await ssh_probe(HOST, 2222)
    capabilities = await netconf_probe(HOST, 2830, "antidote", "secret")
    assert BASE_10 in capabilities and BASE_11 in capabilities
    assert await http_probe(HOST, 2080, "/healthz") == 200


async def test_netconf_probe_speaks_base_1_0_framing_too() -> None:
    pod = PodServers(
        "127.105.0.2",
        "old",
        [("netconf-2830", 2830)],
        asyncssh.generate_private_key("ssh-ed25519"),
        netconf_capabilities=[BASE_10],
    )
    await pod.start()
    try:
        assert await netconf_probe("127.105.0.2", 2830, "u", "p") == [BASE_10]
    finally:
        await pod.stop()


async def test_refused() -> None:
    for attempt in (tcp_probe(HOST, 2999), ssh_probe(HOST, 2999), http_probe(HOST, 2999)):
        with pytest.raises(ProbeFailed, match="connection refused"):
            await attempt
    with pytest.raises(ProbeFailed, match="ssh connect: connection refused"):
        await netconf_probe(HOST, 2999, "u", "p")


async def test_silent_port() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()

    server = await _serve(silent, 2901)
    try:
        await tcp_probe(HOST, 2901)  # TCP alone cannot tell a hung server from a healthy one
        with pytest.raises(ProbeFailed, match=r"ssh handshake: no banner and key exchange within 0.5s"):
            await ssh_probe(HOST, 2901, timeout=0.5)
        with pytest.raises(ProbeFailed, match=r"timed out"):
            await netconf_probe(HOST, 2901, "u", "p", timeout=0.5)
        with pytest.raises(ProbeFailed, match=r"http GET /: timed out after 0.5s"):
            await http_probe(HOST, 2901, timeout=0.5)
    finally:
        server.close()


async def test_wrong_protocol_on_the_port(servers: PodServers) -> None:
    with pytest.raises(ProbeFailed, match=r"^ssh handshake: ") as wrong:
        await ssh_probe(HOST, 2080)  # an HTTP server where SSH is expected
    assert "timed out" not in str(wrong.value), wrong.value  # refused at once, not waited out
    with pytest.raises(ProbeFailed, match=r"^http GET /: "):
        await http_probe(HOST, 2222)  # an SSH server where HTTP is expected
    with pytest.raises(ProbeFailed, match=r"^ssh connect: "):
        await netconf_probe(HOST, 2080, "u", "p")  # an HTTP server where NETCONF is expected
    plain = PodServers("127.105.0.4", "plain", [("tcp-2222", 2222)], asyncssh.generate_private_key("ssh-ed25519"))
    await plain.start()
    try:
        with pytest.raises(ProbeFailed, match=r"^ssh handshake: "):
            await ssh_probe("127.105.0.4", 2222)  # a TCP service that talks, but not SSH
    finally:
        await plain.stop()


async def test_http_error_status() -> None:
    async def starting(_: web.Request) -> web.Response:
        return web.Response(status=503, text="starting")

    app = web.Application()
    app.router.add_get("/", starting)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, HOST, 2902).start()
    try:
        with pytest.raises(ProbeFailed, match="http GET /: status 503"):
            await http_probe(HOST, 2902)
    finally:
        await runner.cleanup()


async def _slow_banner_server(port: int, delay: float) -> asyncio.AbstractServer:
    async def slow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(delay)
        writer.write(b"SSH-2.0-Slow_1.0\r\n")
        await writer.drain()
        await reader.read()

    return await _serve(slow, port)


async def test_slow_banner() -> None:
    server = await _slow_banner_server(2903, delay=2.0)
    try:
        started = time.monotonic()
        with pytest.raises(ProbeFailed, match=r"no banner and key exchange within 0.5s"):
            await ssh_probe(HOST, 2903, timeout=0.5)
        assert time.monotonic() - started < 2.0  # it gave up at its timeout, not when the banner came
    finally:
        server.close()


async def test_sweep_retries_until_ready_and_names_the_failure(servers: PodServers) -> None:
    loop = asyncio.get_running_loop()
    ready: list[object] = []
    targets = {
        "r1/cli": Target(HOST, 2222, "ssh"),
        "r1/netconf": Target(HOST, 2830, "netconf", "u", "p"),
        "r1/web": Target(HOST, 2080, "http"),
    }
    await sweep(targets, loop.time() + 10, 2.0, ready.append)
    assert sorted(ready) == sorted(targets)  # type: ignore[type-var]

    late = PodServers("127.105.0.3", "late", [("ssh-2222", 2222)], asyncssh.generate_private_key("ssh-ed25519"))
    starter = loop.call_later(0.5, lambda: asyncio.ensure_future(late.start()))
    try:
        await sweep({"late/cli": Target("127.105.0.3", 2222, "ssh")}, loop.time() + 10, 1.0)
    finally:
        starter.cancel()
        await late.stop()

    with pytest.raises(ProbeFailed, match=r"^vqfx1/cli: ssh handshake: connection refused$"):
        await sweep({"vqfx1/cli": Target(HOST, 2999, "ssh")}, loop.time() + 0.5, 0.5)


async def _closing_server(host: str) -> tuple[asyncio.Server, int]:
    """Accepts, then closes at once without a word: a NAT in front of a port nothing listens on (QEMU's
    user networking does this)."""

    async def close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    server = await asyncio.start_server(close, host, 0)
    return server, server.sockets[0].getsockname()[1]


async def test_a_port_that_keeps_refusing_fails_after_the_refusal_grace_not_the_deadline() -> None:
    loop = asyncio.get_running_loop()
    # Refused outright: the deadline is a minute away, the grace one second.
    refused = r"^r1/cli: ssh handshake: connection refused \(every try for 1s after the endpoint was up\)$"
    with pytest.raises(ProbeFailed, match=refused) as e:
        await sweep({"r1/cli": Target(HOST, 2999, "ssh")}, loop.time() + 60, 0.5, refusal_grace=1.0)
    assert e.value.refused
    # Accepted and cut: for each protocol, the same.
    server, port = await _closing_server(HOST)
    try:
        for kind in ("http", "ssh", "tcp", "netconf"):
            target = Target(HOST, port, kind, "u", "p")
            with pytest.raises(ProbeFailed, match=r"\(every try for 1s after the endpoint was up\)$") as cut:
                await sweep({f"r1/{kind}": target}, loop.time() + 60, 0.5, refusal_grace=1.0)
            assert cut.value.refused, (kind, str(cut.value))
    finally:
        server.close()
        await server.wait_closed()


async def test_a_port_that_is_only_slow_waits_for_the_deadline() -> None:
    """A server that accepts and says nothing is slow, not absent: the grace does not cut it short."""
    loop = asyncio.get_running_loop()
    held: list[asyncio.StreamWriter] = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(silent, HOST, 0)
    port = server.sockets[0].getsockname()[1]
    try:
        timed_out = r"^r1/cli: ssh handshake: no banner and key exchange within 0.5s$"
        with pytest.raises(ProbeFailed, match=timed_out) as slow:
            await sweep({"r1/cli": Target(HOST, port, "ssh")}, loop.time() + 2, 0.5, refusal_grace=0.2)
        assert not slow.value.refused
    finally:
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()
