"""What one caller may cost: session creations and launches per client address (token buckets in bounded
memory), and event streams per session. The client address is the peer's, or, from a trusted proxy, the
one X-Forwarded-For names.

Routers call these where the work would start; nothing here runs on the status path.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterable, Callable, Mapping, Sequence
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address
from typing import Literal

from starlette.requests import HTTPConnection
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from api.problems import ProblemError
from syringe.ratelimit import Buckets
from syringe.settings import ApiSettings

Address = IPv4Address | IPv6Address
Network = IPv4Network | IPv6Network


def _parse(text: str) -> Address | None:
    """An address as proxies write them: bare, ``[v6]:port`` or ``v4:port``."""
    text = text.strip()
    if text.startswith("["):
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        return ip_address(text)
    except ValueError:
        return None


def client_address(peer: str | None, forwarded: Sequence[str], trusted: Sequence[Network]) -> str:
    """Who is asking. Starting from the peer, each hop that is a trusted proxy is replaced by the address it
    says it received the request from (X-Forwarded-For, right to left); the first untrusted one is the
    client. With no trusted proxies X-Forwarded-For is never read: anyone can write it."""
    address = _parse(peer) if peer else None
    if address is None:
        return peer or "unknown"
    hops = [hop for value in forwarded for hop in value.split(",")]
    while hops and any(address in network for network in trusted):
        previous = _parse(hops.pop())
        if previous is None:  # a proxy that writes nonsense: keep the proxy as the client
            break
        address = previous
    return str(address)


def _bucket_key(address: str) -> str:
    """An IPv6 client is one /64: a host usually holds the whole prefix, and could rotate within it."""
    parsed = _parse(address)
    if isinstance(parsed, IPv6Address) and parsed.ipv4_mapped is None:
        return str(IPv6Network((parsed, 64), strict=False))
    return address


class StreamSlots:
    """At most ``limit`` open event streams per session."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._open: dict[str, int] = {}

    def open(self, session: str) -> int:
        return self._open.get(session, 0)

    def acquire(self, session: str) -> Callable[[], None]:
        """Take a slot (429 beyond the cap); returns its release, which is safe to call more than once."""
        count = self._open.get(session, 0)
        if count >= self.limit:
            raise ProblemError(
                429,
                f"this session already has {count} event streams open (the limit); close one first",
                "too-many-streams",
            )
        self._open[session] = count + 1
        released = False

        def release() -> None:
            nonlocal released
            if released:
                return
            released = True
            left = self._open.get(session, 0) - 1
            if left > 0:
                self._open[session] = left
            else:
                self._open.pop(session, None)

        return release


class Limits:
    def __init__(self, settings: ApiSettings) -> None:
        self.trusted: tuple[Network, ...] = tuple(settings.trusted_proxies)
        capacity = settings.rate_limited_addresses
        self.rates = {
            "sessions": Buckets(settings.sessions_per_minute / 60, settings.session_burst, capacity),
            "launches": Buckets(settings.launches_per_minute / 60, settings.launch_burst, capacity),
        }
        self.streams = StreamSlots(settings.event_streams_per_session)

    def client(self, connection: HTTPConnection) -> str:
        peer = connection.client.host if connection.client is not None else None
        forwarded = connection.headers.getlist("x-forwarded-for") if self.trusted else []
        return client_address(peer, forwarded, self.trusted)


def limits(connection: HTTPConnection) -> Limits:
    found: Limits = connection.app.state.limits
    return found


def rate_limit(connection: HTTPConnection, what: Literal["sessions", "launches"]) -> None:
    """Count one ``what`` against the caller's address; 429 with Retry-After when its bucket is empty."""
    found = limits(connection)
    address = found.client(connection)
    wait = found.rates[what].take(_bucket_key(address))
    if wait > 0:
        seconds = max(1, math.ceil(wait))
        raise ProblemError(
            429,
            f"too many {what} from {address}; try again in {seconds} s",
            "rate-limited",
            headers={"Retry-After": str(seconds)},
        )


class SlottedStream(StreamingResponse):
    """A streaming response that gives its slot back when it ends, however it ends (the client gone
    included: Starlette cancels the stream when the client disconnects)."""

    def __init__(
        self, content: AsyncIterable[bytes], release: Callable[[], None], media_type: str, headers: Mapping[str, str]
    ) -> None:
        super().__init__(content, media_type=media_type, headers=headers)
        self.release = release

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.release()
