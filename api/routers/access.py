"""Reaching endpoints: a browser terminal over WebSocket, an HTTP/REST proxy, and NETCONF RPCs.
The machinery is in syringe/access; here: who may, which target, and errors as HTTP statuses or close codes."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, WebSocket, WebSocketDisconnect
from fastapi.responses import StreamingResponse
from starlette.background import BackgroundTask

from api.deps import TOKEN_COOKIE, BrowserLearner, Learner, Manager, authenticate, bearer_token, live_manager
from api.errors import as_problem
from api.problems import ProblemError
from syringe.access.http_proxy import ProxyRequest, forward
from syringe.access.netconf import one_rpc
from syringe.access.terminal import TerminalSlots
from syringe.access.terminal_bridge import serve_terminal
from syringe.errors import NetconfError, SyringeError, Unreachable

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
    await websocket.accept()
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
        idle_timeout = websocket.app.state.settings.access.terminal_idle_timeout
        # Starlette says the browser has gone with WebSocketDisconnect, or RuntimeError once it has been told.
        await serve_terminal(websocket, target, cols, rows, idle_timeout, (WebSocketDisconnect, RuntimeError))
    finally:
        slots.release(livelesson_id)


def proxy_prefix(livelesson_id: str, endpoint: str, presentation: str) -> str:
    return f"/api/v1/livelessons/{livelesson_id}/endpoints/{endpoint}/http/{presentation}"


async def http_proxy(
    livelesson_id: str,
    endpoint: str,
    presentation: str,
    path: str,
    request: Request,
    session: BrowserLearner,
    manager: Manager,
) -> Response:
    """The endpoint's web UI or REST API under this prefix: every method, bodies streamed both ways,
    redirects and cookies rewritten under the prefix. Open it once with ``?token=`` (an iframe cannot
    send headers) and a cookie scoped to the prefix carries the session from then on."""
    target = manager.target_for(livelesson_id, session.id, endpoint, presentation)
    if target.kind != "http":
        raise ProblemError(404, f"{endpoint}/{presentation} is not an HTTP presentation", "not-found")
    prefix = proxy_prefix(livelesson_id, endpoint, presentation)
    query, headers, body = request.query_params.multi_items(), request.headers.items(), request.stream()
    outgoing = ProxyRequest(request.method, path, query, headers, request.cookies, body, request.url.scheme)
    try:
        upstream = await forward(request.app.state.proxy_client, target, prefix, outgoing, "token", TOKEN_COOKIE)
    except Unreachable as exc:
        raise ProblemError(502, f"{endpoint}/{presentation} did not answer: {exc}", "endpoint-unreachable") from exc
    response = StreamingResponse(upstream.body, upstream.status, background=BackgroundTask(upstream.aclose))
    response.raw_headers = upstream.raw_headers
    if request.query_params.get("token"):
        response.set_cookie(TOKEN_COOKIE, request.query_params["token"], path=prefix, httponly=True, samesite="strict")
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
    try:
        reply = await one_rpc(target, await request.body(), request.app.state.settings.access.netconf_timeout)
    except ValueError as exc:
        raise ProblemError(422, str(exc), "invalid-xml") from exc
    except NetconfError as exc:
        raise ProblemError(502, f"{endpoint}/{presentation}: {exc}", "endpoint-unreachable") from exc
    return Response(reply, media_type="application/xml")
