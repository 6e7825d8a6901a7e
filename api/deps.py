"""Request dependencies: the pieces of app state a router needs, and who is asking.

Dependencies are ``async def`` although they never wait: FastAPI runs plain ``def`` dependencies in a
thread pool, and that hop cost a third of a status poll's time.
"""

from __future__ import annotations

import hmac
from ipaddress import ip_address
from typing import Annotated

from fastapi import Depends, Request
from starlette.requests import HTTPConnection
from starlette.responses import Response

from api.problems import ProblemError
from syringe.catalog import Catalog
from syringe.learners import Learners, LearnerSession
from syringe.livelessons import LiveLessons

TOKEN_COOKIE = "syringe_token"
# A browser cannot set headers on a WebSocket, but it can offer subprotocols: it offers TERMINAL_PROTOCOL and
# BEARER_PROTOCOL_PREFIX + its token (as Kubernetes does for its exec streams), and the server picks the
# first. The token stays out of the URL, which proxies and browser histories keep.
TERMINAL_PROTOCOL = "terminal.syringe.io"
BEARER_PROTOCOL_PREFIX = "bearer.syringe.io."


def came_over_tls(connection: HTTPConnection) -> bool:
    """The browser's connection was TLS: to Syringe itself, or to a trusted proxy that says so in
    X-Forwarded-Proto (SYRINGE_API__TRUSTED_PROXIES; from anyone else the header is not believed)."""
    if connection.url.scheme in ("https", "wss"):
        return True
    trusted = connection.app.state.settings.api.trusted_proxies
    peer = connection.client.host if connection.client is not None else None
    try:
        address = ip_address(peer) if peer else None
    except ValueError:
        address = None
    if address is None or not any(address in network for network in trusted):
        return False
    forwarded = connection.headers.get("x-forwarded-proto", "")
    return forwarded.rsplit(",", 1)[-1].strip().lower() == "https"


def set_token_cookie(response: Response, connection: HTTPConnection, token: str, path: str) -> None:
    """The learner's token as the HttpOnly, SameSite=Strict cookie an iframe carries, scoped to ``path`` and
    Secure whenever the browser came over TLS."""
    secure = came_over_tls(connection)
    response.set_cookie(TOKEN_COOKIE, token, path=path, httponly=True, samesite="strict", secure=secure)


def catalog(connection: HTTPConnection) -> Catalog:
    found: Catalog = connection.app.state.catalog
    return found


def learners(connection: HTTPConnection) -> Learners:
    """Learner sessions: the live lessons' own (shared with replicas) once they run, else memory's."""
    found: Learners = connection.app.state.learners
    return found


def live_manager(connection: HTTPConnection) -> LiveLessons:
    found: LiveLessons | None = connection.app.state.manager
    if found is None:
        reason = connection.app.state.runtime_problem or "no runtime is configured"
        raise ProblemError(503, f"live lessons are unavailable: {reason}", "runtime-unavailable")
    return found


def offered_protocols(connection: HTTPConnection) -> list[str]:
    """The subprotocols a WebSocket's client offered, in its order."""
    offered = ",".join(connection.headers.getlist("sec-websocket-protocol"))
    return [word.strip() for word in offered.split(",") if word.strip()]


def bearer_token(connection: HTTPConnection, browser: bool = False) -> str | None:
    """The token from ``Authorization: Bearer``. Where a browser cannot set that header (WebSockets, pages
    in an iframe), also from a WebSocket subprotocol (BEARER_PROTOCOL_PREFIX), the ``token`` query
    parameter or the proxy's cookie."""
    scheme, _, token = connection.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    if browser:
        for protocol in offered_protocols(connection):
            if protocol.startswith(BEARER_PROTOCOL_PREFIX) and len(protocol) > len(BEARER_PROTOCOL_PREFIX):
                return protocol[len(BEARER_PROTOCOL_PREFIX) :]
        return connection.query_params.get("token") or connection.cookies.get(TOKEN_COOKIE) or None
    return None


async def authenticate(connection: HTTPConnection, token: str | None) -> LearnerSession:
    """The token's session, or 401. A session another replica created a moment ago is found too."""
    if token is None:
        raise ProblemError(
            401,
            "this call needs the session's token: Authorization: Bearer <token>",
            "unauthorized",
            headers={"WWW-Authenticate": "Bearer"},
        )
    session = await learners(connection).authenticate(token)
    if session is None:
        raise ProblemError(
            401,
            "the token is unknown or its session has expired; create a new session",
            "unauthorized",
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )
    return session


async def catalog_dependency(request: Request) -> Catalog:
    return catalog(request)


async def learners_dependency(request: Request) -> Learners:
    return learners(request)


async def manager(request: Request) -> LiveLessons:
    return live_manager(request)


async def learner(request: Request) -> LearnerSession:
    return await authenticate(request, bearer_token(request))


async def browser_learner(request: Request) -> LearnerSession:
    """For the HTTP proxy: the header, or the token in the query or in the proxy's cookie."""
    return await authenticate(request, bearer_token(request, browser=True))


async def admin(request: Request) -> None:
    configured = request.app.state.settings.admin_token
    token = bearer_token(request)
    if token is None:
        raise ProblemError(
            401, "this call needs the admin token", "unauthorized", headers={"WWW-Authenticate": "Bearer"}
        )
    if configured is None:
        raise ProblemError(403, "the admin API is disabled: set SYRINGE_ADMIN_TOKEN to enable it", "forbidden")
    if not hmac.compare_digest(token.encode(), configured.get_secret_value().encode()):
        raise ProblemError(403, "this call needs the admin token", "forbidden")


CatalogDep = Annotated[Catalog, Depends(catalog_dependency)]
LearnersDep = Annotated[Learners, Depends(learners_dependency)]
Learner = Annotated[LearnerSession, Depends(learner)]
BrowserLearner = Annotated[LearnerSession, Depends(browser_learner)]
Manager = Annotated[LiveLessons, Depends(manager)]
