"""Which browser origins may use the Antidote dialect, and the middleware that tells browsers so.

A page on another origin than Syringe (antidote-web in "mock" mode: page on one port, API on another) calls
``/exp`` cross-origin: the answers carry ``Access-Control-Allow-Origin`` echoing an allowed ``Origin``, never
``*``; for any other origin they carry none, and the browser keeps them from the page. The socket.io terminal
polls with credentials (engine.io-client 3 sets ``withCredentials``), so its answers also allow credentials;
and since browsers apply no CORS to WebSockets, a terminal from an origin that is not allowed is refused
outright, poll or WebSocket. The page's own origin (the host the request was sent to) always may.

Allowed origins are ``scheme://host[:port]``, with ``*`` as the port for any port (or none), or ``*`` alone
for every origin."""

from __future__ import annotations

from collections.abc import Sequence

from starlette.datastructures import Headers
from starlette.responses import PlainTextResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

DIALECT_PREFIXES = ("/exp/", "/acore/exp/")
SOCKET_PREFIX = "/socket.io/"
DEFAULT_PORTS = {"http": "80", "https": "443", "ws": "80", "wss": "443"}
METHODS = "GET, HEAD, POST, PUT, DELETE, OPTIONS"


def _host_port(netloc: str) -> tuple[str, str]:
    """(host, port) of ``host[:port]`` or ``[v6][:port]``; port "" when absent."""
    if netloc.startswith("["):
        host, _, rest = netloc.partition("]")
        return host + "]", rest[1:] if rest.startswith(":") else ""
    host, _, port = netloc.partition(":")
    return host, port


def parse_origin(origin: str) -> tuple[str, str, str] | None:
    """(scheme, host, port) of ``scheme://host[:port]``, lower case, the port explicit (or ``*``); None for
    what is not an origin (``null``, a path, no host)."""
    scheme, sep, netloc = origin.strip().partition("://")
    if not sep or not scheme or not netloc or "/" in netloc or "@" in netloc:
        return None
    host, port = _host_port(netloc.lower())
    if not host or not (port == "*" or port.isdigit() or port == ""):
        return None
    return scheme.lower(), host, port or DEFAULT_PORTS.get(scheme.lower(), "")


class OriginPolicy:
    def __init__(self, allowed: Sequence[str]) -> None:
        self.any = "*" in allowed
        self.allowed = [parsed for pattern in allowed if pattern != "*" and (parsed := parse_origin(pattern))]

    def allows(self, origin: str, request_host: str | None) -> bool:
        """``origin`` may call: it is the request's own host (the scheme aside: TLS may end at a proxy), or
        it matches an allowed origin."""
        parsed = parse_origin(origin)
        if parsed is None:
            return False
        scheme, host, port = parsed
        if request_host:
            own_host, own_port = _host_port(request_host.strip().lower())
            if own_host == host and (own_port or DEFAULT_PORTS.get(scheme, "")) == port:
                return True
        if self.any:
            return True
        return any(
            scheme == a_scheme and host == a_host and a_port in ("*", port) for a_scheme, a_host, a_port in self.allowed
        )


def _request_host(headers: Headers) -> str | None:
    forwarded = headers.get("x-forwarded-host")
    return forwarded.split(",")[0].strip() if forwarded else headers.get("host")


class DialectCors:
    """CORS for the dialect's paths (``/exp/``, ``/acore/exp/``, ``/socket.io/``); every other path passes
    untouched."""

    def __init__(self, app: ASGIApp, allowed_origins: Sequence[str]) -> None:
        self.app = app
        self.policy = OriginPolicy(allowed_origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] in ("http", "websocket") else ""
        socket = path.startswith(SOCKET_PREFIX)
        if not (socket or path.startswith(DIALECT_PREFIXES)):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        origin = headers.get("origin")
        allowed = origin is not None and self.policy.allows(origin, _request_host(headers))
        if scope["type"] == "websocket":
            if origin is not None and not allowed:
                await receive()  # websocket.connect; a close before accepting answers 403
                await send({"type": "websocket.close", "code": 1008, "reason": "origin not allowed"})
                return
            await self.app(scope, receive, send)
            return
        if origin is not None and scope["method"] == "OPTIONS" and "access-control-request-method" in headers:
            await self._preflight(origin, allowed, socket, headers)(scope, receive, send)
            return
        if origin is not None and not allowed and socket:
            await PlainTextResponse(f"origin {origin} may not open terminals here", 403)(scope, receive, send)
            return
        extra = [(b"vary", b"Origin")]
        if allowed and origin is not None:
            extra.append((b"access-control-allow-origin", origin.encode("latin-1")))
            if socket:
                extra.append((b"access-control-allow-credentials", b"true"))

        async def with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                kept = [(k, v) for k, v in message.get("headers", []) if not k.lower().startswith(b"access-control-")]
                message = {**message, "headers": kept + extra}
            await send(message)

        await self.app(scope, receive, with_cors)

    @staticmethod
    def _preflight(origin: str, allowed: bool, socket: bool, headers: Headers) -> Response:
        if not allowed:
            return PlainTextResponse(f"origin {origin} may not call this", 403, headers={"Vary": "Origin"})
        answer = {
            "Access-Control-Allow-Origin": origin,
            "Access-Control-Allow-Methods": METHODS,
            "Access-Control-Allow-Headers": headers.get("access-control-request-headers") or "Content-Type, Accept",
            "Access-Control-Max-Age": "600",
            "Vary": "Origin",
        }
        if socket:
            answer["Access-Control-Allow-Credentials"] = "true"
        return Response(status_code=204, headers=answer)
