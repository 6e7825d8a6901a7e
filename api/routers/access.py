"""Reaching endpoints: a browser terminal over WebSocket, an HTTP/REST proxy, and NETCONF RPCs.
The machinery is in syringe/access; here: who may, which target, and errors as HTTP statuses or close codes."""

from __future__ import annotations

import logging
from typing import Annotated

import httpx
from fastapi import APIRouter, FastAPI, Query, Request, Response, WebSocket, WebSocketDisconnect
from fastapi.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from api.deps import (
    TERMINAL_PROTOCOL,
    TOKEN_COOKIE,
    BrowserLearner,
    Learner,
    Manager,
    authenticate,
    bearer_token,
    came_over_tls,
    live_manager,
    offered_protocols,
    set_token_cookie,
)
from api.errors import as_problem
from api.problems import ProblemError
from api.proxy_origin import ProxyOrigins, origin_candidates
from syringe.access.http_proxy import ProxyRequest, ProxyResponse, Served, forward
from syringe.access.netconf import one_rpc
from syringe.access.probes import Target
from syringe.access.proxy_origin import Addressed, api_prefix
from syringe.access.slots import Admission, Held, Slots
from syringe.access.terminal import TerminalSlots
from syringe.access.terminal_bridge import TerminalLimits, serve_terminal
from syringe.access.transfer import TransferLimits
from syringe.errors import LimitReached, NetconfError, NotFound, SyringeError, Unreachable
from syringe.livelessons import LiveLessons
from syringe.settings import Settings

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/v1/livelessons/{livelesson_id}/endpoints/{endpoint}", tags=["endpoint access"])
# WebSocket close codes: 4000 + the HTTP status that would have been answered.
CLOSE_FOR = {401: 4401, 404: 4404, 409: 4409, 429: 4429, 502: 4502, 503: 4503}


@router.websocket("/terminal")
async def terminal(
    websocket: WebSocket,
    livelesson_id: str,
    endpoint: str,
    presentation: str = "cli",
    cols: Annotated[int, Query(ge=10, le=1000)] = 80,
    rows: Annotated[int, Query(ge=5, le=500)] = 24,
) -> None:
    """An xterm on the endpoint over SSH. Binary frames carry keystrokes and output; a text frame
    ``{"type": "resize", "cols": C, "rows": R}`` resizes, ``{"type": "input", "data": "..."}`` types."""
    # A browser that offered its token as a subprotocol gets the terminal one back: it fails a connection
    # whose answer names none of the protocols it offered.
    chosen = TERMINAL_PROTOCOL if TERMINAL_PROTOCOL in offered_protocols(websocket) else None
    await websocket.accept(subprotocol=chosen)
    slots: TerminalSlots = websocket.app.state.terminal_slots
    try:
        manager = live_manager(websocket)
        session = await authenticate(websocket, bearer_token(websocket, browser=True))
        target = manager.target_for(livelesson_id, session.id, endpoint, presentation)
        if target.kind not in ("ssh", "netconf"):
            raise ProblemError(404, f"{endpoint}/{presentation} is not an SSH presentation", "not-found")
        slots.acquire(livelesson_id)
    except (ProblemError, SyringeError) as exc:
        refusal = exc if isinstance(exc, ProblemError) else as_problem(exc)
        await websocket.close(CLOSE_FOR.get(refusal.status, 4400), refusal.detail[:120])
        return
    try:
        settings = websocket.app.state.settings.access
        limits = TerminalLimits(
            settings.terminal_idle_timeout, settings.terminal_max_frame_bytes, settings.terminal_max_input_bytes
        )
        # Starlette says the browser has gone with WebSocketDisconnect, or RuntimeError once it has been told.
        await serve_terminal(websocket, target, cols, rows, limits, (WebSocketDisconnect, RuntimeError))
    finally:
        slots.release(livelesson_id)


def install(app: FastAPI, settings: Settings) -> None:
    """This router's state: the caps on proxied requests and NETCONF RPCs, and, with a proxy origin template,
    the host routing (call it after every other middleware, so that it is the outermost)."""
    access = settings.access
    in_flight = "proxied requests in flight"
    app.state.proxy_admission = Admission(
        Slots(access.proxy_per_livelesson, in_flight), Slots(access.proxy_per_session, in_flight, per="session")
    )
    app.state.netconf_admission = Admission(Slots(access.netconf_per_livelesson, "NETCONF RPCs in flight"))
    if access.proxy_origin_template:
        app.add_middleware(ProxyOrigins, template=access.proxy_origin_template)


def proxy_client(settings: Settings) -> httpx.AsyncClient:
    """One connection pool for every live lesson, sized so that it is never what a request waits for: a live
    lesson gets at most ``proxy_per_livelesson`` requests past admission, and there are at most
    ``max_live_lessons``, so one live lesson (or a few) cannot take the connections another one needs."""
    size = settings.access.proxy_per_livelesson * settings.lifecycle.max_live_lessons
    return httpx.AsyncClient(
        timeout=settings.access.proxy_timeout,
        follow_redirects=False,
        limits=httpx.Limits(max_connections=size, max_keepalive_connections=min(size, 100)),
    )


def proxy_prefix(livelesson_id: str, endpoint: str, presentation: str) -> str:
    return api_prefix(livelesson_id, endpoint, presentation)


def _limited(exc: LimitReached) -> ProblemError:
    return ProblemError(429, str(exc), "access-limit", headers={"Retry-After": "1"})


class ProxiedResponse(StreamingResponse):
    """The endpoint's response, streamed. Its slots and its upstream connection are given back however it ends
    (the client gone included: Starlette cancels the stream then). A body the endpoint stops keeping up with
    is cut off: the connection closes before the end of the response, so the client sees it incomplete."""

    def __init__(self, upstream: ProxyResponse, held: Held, what: str) -> None:
        super().__init__(upstream.body, upstream.status)
        self.raw_headers = upstream.raw_headers
        self.upstream = upstream
        self.held = held
        self.what = what

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        except Unreachable as exc:
            log.warning("HTTP proxy to %s: response cut off: %s", self.what, exc)
        finally:
            try:
                await self.upstream.aclose()
            finally:
                self.held.release()


def _on_own_origin(candidates: list[Addressed], manager: LiveLessons, session_id: str) -> tuple[Target, Addressed]:
    """The presentation a proxy origin's host names: of the ways its name splits, the one that exists."""
    missing: NotFound | None = None
    for candidate in candidates:
        try:
            found = manager.target_for(candidate.livelesson, session_id, candidate.endpoint, candidate.presentation)
        except NotFound as exc:
            missing = missing or exc
            continue
        return found, candidate
    assert missing is not None
    raise missing


async def http_proxy(
    livelesson_id: str,
    endpoint: str,
    presentation: str,
    path: str,
    request: Request,
    session: BrowserLearner,
    manager: Manager,
) -> Response:
    """The endpoint's web UI or REST API under this prefix (or on its own origin, with a proxy origin
    template): every method, bodies streamed both ways, redirects and cookies rewritten under the prefix.
    Open it once with ``?token=`` (an iframe cannot send headers) and a cookie scoped to the prefix carries
    the session from then on."""
    settings = request.app.state.settings.access
    candidates = origin_candidates(request.scope)
    if candidates is None:
        target = manager.target_for(livelesson_id, session.id, endpoint, presentation)
        prefix = proxy_prefix(livelesson_id, endpoint, presentation)
        served = Served(own_origin=False, content_security_policy=settings.proxy_content_security_policy)
    else:
        target, named = _on_own_origin(candidates, manager, session.id)
        livelesson_id, endpoint, presentation = named.livelesson, named.endpoint, named.presentation
        prefix = ""
        served = Served(own_origin=True)
    if target.kind != "http":
        raise ProblemError(404, f"{endpoint}/{presentation} is not an HTTP presentation", "not-found")
    if served.shared and "service-worker" in request.headers:
        raise ProblemError(
            403,
            "service workers are not served through the proxy on Syringe's origin (they would outlive the page)",
            "forbidden",
        )
    try:
        held = request.app.state.proxy_admission.admit(livelesson_id, session.id)
    except LimitReached as exc:
        raise _limited(exc) from exc
    scheme = "https" if came_over_tls(request) else "http"
    query, headers, body = request.query_params.multi_items(), request.headers.items(), request.stream()
    outgoing = ProxyRequest(request.method, path, query, headers, request.cookies, body, scheme)
    limits = TransferLimits(settings.proxy_deadline, settings.proxy_min_rate, settings.proxy_rate_grace)
    client = request.app.state.proxy_client
    try:
        upstream = await forward(client, target, prefix, outgoing, "token", TOKEN_COOKIE, served, limits)
    except Unreachable as exc:
        held.release()
        raise ProblemError(502, f"{endpoint}/{presentation} did not answer: {exc}", "endpoint-unreachable") from exc
    except BaseException:
        held.release()
        raise
    response = ProxiedResponse(upstream, held, f"live lesson {livelesson_id}, {endpoint}/{presentation}")
    token = request.query_params.get("token")
    if token:
        set_token_cookie(response, request, token, prefix or "/")
    return response


for _method in ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"):
    router.add_api_route(
        "/http/{presentation}/{path:path}",
        http_proxy,
        methods=[_method],
        response_class=StreamingResponse,
        operation_id=f"http_proxy_{_method.lower()}",
        summary=f"Proxy {_method} to an HTTP presentation",
    )


@router.api_route("/http/{presentation}", methods=["GET", "HEAD"], include_in_schema=False)
async def http_proxy_root(livelesson_id: str, endpoint: str, presentation: str, request: Request) -> Response:
    query = f"?{request.url.query}" if request.url.query else ""
    location = proxy_prefix(livelesson_id, endpoint, presentation) + "/" + query
    return Response(status_code=307, headers={"Location": location})


@router.post(
    "/netconf/{presentation}/rpc",
    response_class=Response,
    responses={200: {"content": {"application/xml": {}}, "description": "The device's <rpc-reply>"}},
)
async def netconf_rpc(
    livelesson_id: str, endpoint: str, presentation: str, request: Request, session: Learner, manager: Manager
) -> Response:
    """Run one RPC (an <rpc>, or the operation that goes inside one) in a NETCONF session; return the reply."""
    target = manager.target_for(livelesson_id, session.id, endpoint, presentation)
    if target.kind not in ("netconf", "ssh"):
        raise ProblemError(404, f"{endpoint}/{presentation} does not speak NETCONF", "not-found")
    settings = request.app.state.settings.access
    operation = await request.body()
    try:
        held = request.app.state.netconf_admission.admit(livelesson_id, session.id)
    except LimitReached as exc:
        raise _limited(exc) from exc
    try:
        reply = await one_rpc(target, operation, settings.netconf_timeout, settings.netconf_max_reply_bytes)
    except ValueError as exc:
        raise ProblemError(422, str(exc), "invalid-xml") from exc
    except NetconfError as exc:
        raise ProblemError(502, f"{endpoint}/{presentation}: {exc}", "endpoint-unreachable") from exc
    finally:
        held.release()
    return Response(reply, media_type="application/xml")
