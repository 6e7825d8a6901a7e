"""Readiness probes by protocol. A probe returns, or raises ProbeFailed with a reason a person can read.

- ssh: a full SSH handshake (the server's version string and key exchange), not just a TCP connect;
- netconf: the SSH subsystem ``netconf`` and the server's <hello> with its capabilities;
- http: a request to a path, expecting a 2xx or 3xx answer;
- tcp: a plain connect.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Hashable, Mapping
from dataclasses import dataclass

import asyncssh
import httpx

from syringe.access.netconf import NetconfSession
from syringe.access.ssh import reason
from syringe.errors import NetconfError, ProbeFailed


@dataclass(frozen=True)
class Target:
    """Where and how to probe one presentation."""

    host: str
    port: int
    kind: str  # ssh, netconf, http, tcp
    username: str = ""
    password: str = ""
    http_path: str = "/"


# What a connection to a port nothing listens on ends in: refused outright, or (through a NAT that accepts
# first, as QEMU's user networking does) reset or closed before the server said anything.
REFUSALS: tuple[type[BaseException], ...] = (
    ConnectionRefusedError,
    ConnectionResetError,
    BrokenPipeError,
    asyncio.IncompleteReadError,
    asyncssh.ConnectionLost,
    httpx.RemoteProtocolError,
)


def _chain(exc: BaseException) -> list[BaseException]:
    seen, chain = {id(exc)}, [exc]
    while (inner := exc.__cause__ or exc.__context__) is not None and id(inner) not in seen:
        seen.add(id(inner))
        chain.append(inner)
        exc = inner
    return chain


def is_refusal(exc: BaseException) -> bool:
    """Whether a failed probe saw the port refuse or cut the connection, anywhere in its cause chain."""
    return any(isinstance(link, REFUSALS) for link in _chain(exc))


def _innermost(exc: BaseException) -> BaseException:
    """The exception at the bottom of a chain: httpx wraps the OSError that says what happened."""
    return _chain(exc)[-1]


async def _connect(
    host: str, port: int, timeout: float, limit: int = 2**16
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A TCP connection, or ProbeFailed saying why not (a refusal is recognised by is_refusal)."""
    try:
        return await asyncio.wait_for(asyncio.open_connection(host, port, limit=limit), timeout)
    except TimeoutError as exc:
        raise ProbeFailed(f"tcp connect to {host}:{port}: timed out") from exc
    except OSError as exc:
        raise ProbeFailed(f"tcp connect to {host}:{port}: {reason(exc)}") from exc


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()


async def tcp_probe(host: str, port: int, timeout: float = 2.0, linger: float = 0.25) -> None:
    """Succeeds when ``host:port`` accepts a TCP connection and keeps it open for ``linger`` seconds (or
    sends something): a NAT in front of a closed port (QEMU's user networking) accepts, then cuts at once."""
    reader, writer = await _connect(host, port, timeout)
    try:
        first = await asyncio.wait_for(reader.read(1), linger)
    except TimeoutError:
        first = b"open"  # connected, and quiet: a server waiting for its client to speak
    except OSError as exc:
        raise ProbeFailed(f"tcp connect to {host}:{port}: {reason(exc)}") from exc
    finally:
        await _close(writer)
    if not first:
        raise ProbeFailed(f"tcp connect to {host}:{port}: closed at once", refused=True)


async def ssh_probe(host: str, port: int, timeout: float = 5.0) -> None:
    """Succeeds once the server has sent its version string and completed a key exchange."""
    try:
        key = await asyncio.wait_for(asyncssh.get_server_host_key(host, port), timeout)
    except TimeoutError as exc:
        raise ProbeFailed(f"ssh handshake: no banner and key exchange within {timeout:g}s") from exc
    except (OSError, asyncssh.Error) as exc:
        raise ProbeFailed(f"ssh handshake: {reason(exc)}") from exc
    if key is None:
        raise ProbeFailed("ssh handshake: the server sent no host key")


async def ssh_banner_probe(host: str, port: int, timeout: float = 5.0) -> None:
    """Succeeds once the server has sent its SSH version string ("SSH-" at the start of a line, which RFC
    4253 lets other lines precede): it is up and taking connections. A configurator that waits for its
    endpoint uses it, and logs in right after: ssh_probe's key exchange costs a guest under TCG a good
    part of a second, spent again by the login."""
    reader, writer = await _connect(host, port, timeout, limit=1024)
    try:
        async with asyncio.timeout(timeout):
            for _ in range(16):
                line = await reader.readline()
                if not line:
                    raise ProbeFailed("ssh handshake: closed before the server's version string", refused=True)
                if line.startswith(b"SSH-"):
                    return
        raise ProbeFailed("ssh handshake: no version string in the server's first lines")
    except TimeoutError as exc:
        raise ProbeFailed(f"ssh handshake: no version string within {timeout:g}s") from exc
    except ValueError as exc:  # a line longer than the limit
        raise ProbeFailed("ssh handshake: the server sent a line too long for a version string") from exc
    except OSError as exc:
        raise ProbeFailed(f"ssh handshake: {reason(exc)}") from exc
    finally:
        await _close(writer)


async def netconf_probe(host: str, port: int, username: str, password: str, timeout: float = 10.0) -> list[str]:
    """Opens a NETCONF session, reads the server's capabilities from its <hello>, and closes it."""
    try:
        session = await NetconfSession.open(host, port, username, password, timeout)
    except NetconfError as exc:
        raise ProbeFailed(str(exc)) from exc
    async with session:
        return session.server_capabilities


async def http_probe(host: str, port: int, path: str = "/", timeout: float = 5.0) -> int:
    """Succeeds when GET ``path`` answers 2xx or 3xx (redirects are not followed)."""
    url = f"http://{host}:{port}{path if path.startswith('/') else '/' + path}"
    try:
        async with httpx.AsyncClient(timeout=timeout, follow_redirects=False) as client:
            response = await client.get(url)
    except httpx.TimeoutException as exc:
        raise ProbeFailed(f"http GET {path}: timed out after {timeout:g}s") from exc
    except httpx.HTTPError as exc:
        raise ProbeFailed(f"http GET {path}: {reason(_innermost(exc))}") from exc
    if not 200 <= response.status_code < 400:
        raise ProbeFailed(f"http GET {path}: status {response.status_code}")
    return response.status_code


async def _probe_once(target: Target, timeout: float) -> None:
    if target.kind == "ssh":
        await ssh_probe(target.host, target.port, timeout)
    elif target.kind == "netconf":
        await netconf_probe(target.host, target.port, target.username, target.password, timeout)
    elif target.kind == "http":
        await http_probe(target.host, target.port, target.http_path, timeout)
    else:
        await tcp_probe(target.host, target.port, timeout)


async def probe(target: Target, timeout: float) -> None:
    """One probe of ``target`` by its protocol; a failure says whether the port refused the connection."""
    try:
        await _probe_once(target, timeout)
    except ProbeFailed as exc:
        if exc.refused or not is_refusal(exc):
            raise
        raise ProbeFailed(str(exc), refused=True) from exc


async def retry_until(
    attempt: Callable[[], Awaitable[object]],
    deadline: float,
    first_delay: float = 0.05,
    max_delay: float = 2.0,
    refusal_grace: float | None = None,
) -> None:
    """Run ``attempt`` until it succeeds, backing off between tries; raise its last failure at ``deadline``.
    With ``refusal_grace``, give up sooner when every attempt for that long was refused: nothing listens."""
    loop = asyncio.get_running_loop()
    delay = first_delay
    refused_since: float | None = None
    while True:
        try:
            await attempt()
            return
        except ProbeFailed as exc:
            now = loop.time()
            refused_since = (refused_since if refused_since is not None else now) if exc.refused else None
            if refusal_grace is not None and refused_since is not None and now - refused_since >= refusal_grace:
                raise ProbeFailed(f"{exc} (every try for {refusal_grace:g}s after the endpoint was up)", True) from exc
            if now + delay >= deadline:
                raise
        await asyncio.sleep(delay)
        delay = min(delay * 2, max_delay)


async def sweep(
    targets: Mapping[Hashable, Target],
    deadline: float,
    attempt_timeout: float,
    on_ready: Callable[[Hashable], None] = lambda key: None,
    refusal_grace: float | None = None,
) -> None:
    """Probe every target at once, each with backoff, until it answers or ``deadline`` passes.

    A sweep takes as long as its slowest target, not the sum. The first target that cannot be reached by
    the deadline raises ProbeFailed("<key>: <reason>"). With ``refusal_grace``, a target whose port refused
    every connection for that long fails at once: its endpoint is up, and nothing listens there.
    """

    async def one(key: Hashable, target: Target) -> None:
        try:
            await retry_until(lambda: probe(target, attempt_timeout), deadline, refusal_grace=refusal_grace)
        except ProbeFailed as exc:
            raise ProbeFailed(f"{key}: {exc}", exc.refused) from exc
        on_ready(key)

    tasks = [asyncio.ensure_future(one(key, target)) for key, target in targets.items()]
    if not tasks:
        return
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
    finally:
        for task in tasks:  # the first failure ends the sweep: the others are stopped, not left behind
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    for task in tasks:
        if not task.cancelled() and (error := task.exception()) is not None:
            raise error
