"""Reaching endpoints: a browser terminal over WebSocket, an HTTP/REST proxy, and NETCONF RPCs."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from typing import Annotated

import httpx
from fastapi import APIRouter, Query, Request, Response, WebSocket, WebSocketDisconnect
from fastapi.responses import StreamingResponse
from starlette.background import BackgroundTask

from api.deps import TOKEN_COOKIE, BrowserLearner, Learner, Manager, authenticate_shared, bearer_token, live_manager
from api.errors import as_problem
from api.problems import ProblemError
from syringe.access.netconf import NetconfError, NetconfSession, parse_xml
from syringe.access.probes import Target
from syringe.access.terminal import TerminalError, TerminalSession, TerminalSlots
from syringe.errors import SyringeError
from syringe.settings import AccessSettings

router = APIRouter(prefix="/api/v1/livelessons/{livelesson_id}/endpoints/{endpoint}", tags=["endpoint access"])

HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "trailers",
    "transfer-encoding",
    "upgrade",
    "host",
}
# WebSocket close codes: 4000 + the HTTP status that would have been answered.
CLOSE_FOR = {401: 4401, 404: 4404, 409: 4409, 429: 4429, 502: 4502, 503: 4503}


def _settings(connection: Request | WebSocket) -> AccessSettings:
    found: AccessSettings = connection.app.state.settings.access
    return found


# ---------------------------------------------------------------------------------------------- terminal
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
        session = await authenticate_shared(websocket, bearer_token(websocket, browser=True))
        target = manager.target_for(livelesson_id, session.id, endpoint, presentation)
        if target.kind not in ("ssh", "netconf"):
            raise ProblemError(404, f"{endpoint}/{presentation} is not an SSH presentation", "not-found")
        slots.acquire(livelesson_id)
    except (ProblemError, SyringeError) as exc:
        refusal = exc if isinstance(exc, ProblemError) else as_problem(exc)
        await websocket.close(CLOSE_FOR.get(refusal.status, 4400), refusal.detail[:120])
        return
    try:
        try:
            shell = await TerminalSession.open(target.host, target.port, target.username, target.password, cols, rows)
        except TerminalError as exc:
            await websocket.close(4502, str(exc)[:120])
            return
        await _bridge(websocket, shell, _settings(websocket).terminal_idle_timeout)
    finally:
        slots.release(livelesson_id)


async def _bridge(websocket: WebSocket, shell: TerminalSession, idle_timeout: float) -> None:
    async def to_shell() -> str:
        while True:
            try:
                message = await asyncio.wait_for(websocket.receive(), idle_timeout)
            except TimeoutError:
                return "idle"
            except (WebSocketDisconnect, RuntimeError):
                return "browser closed"
            if message["type"] == "websocket.disconnect":
                return "browser closed"
            if message.get("bytes") is not None:
                shell.write(message["bytes"])
            elif message.get("text") is not None:
                _control(shell, message["text"])

    async def to_browser() -> str:
        while data := await shell.read():
            try:
                await websocket.send_bytes(data)
            except (WebSocketDisconnect, RuntimeError):
                # The browser went away mid-frame; that is a normal end, not an error.
                return "browser closed"
        return "ended"

    tasks = {asyncio.create_task(to_shell()), asyncio.create_task(to_browser())}
    done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    outcome = next(iter(done)).result() if not next(iter(done)).cancelled() else "ended"
    status = await shell.exit_status() if outcome == "ended" else None
    await shell.close()
    with contextlib.suppress(RuntimeError, WebSocketDisconnect):
        if outcome == "idle":
            await websocket.close(4408, "closed after inactivity")
        elif outcome == "ended":
            await websocket.close(1000, f"session ended (exit status {status})")


def _control(shell: TerminalSession, text: str) -> None:
    try:
        message = json.loads(text)
    except ValueError:
        shell.write(text.encode())
        return
    if isinstance(message, dict) and message.get("type") == "resize":
        columns, rows = message.get("cols"), message.get("rows")
        if isinstance(columns, int) and isinstance(rows, int) and 0 < columns <= 1000 and 0 < rows <= 500:
            shell.resize(columns, rows)
    elif isinstance(message, dict) and message.get("type") == "input" and isinstance(message.get("data"), str):
        shell.write(message["data"].encode())


# ---------------------------------------------------------------------------------------------- HTTP proxy
def proxy_prefix(livelesson_id: str, endpoint: str, presentation: str) -> str:
    return f"/api/v1/livelessons/{livelesson_id}/endpoints/{endpoint}/http/{presentation}"


def _rewrite_location(location: str, target: Target, prefix: str) -> str:
    upstream = re.match(rf"^https?://{re.escape(target.host)}(:{target.port})?(?P<rest>/.*)?$", location)
    if upstream:
        return prefix + (upstream.group("rest") or "/")
    if location.startswith("/") and not location.startswith("//"):
        return prefix + location
    return location


def _rewrite_cookie(cookie: str, prefix: str) -> str:
    parts = [p.strip() for p in cookie.split(";")]
    kept = [parts[0]]
    path = "/"
    for attribute in parts[1:]:
        name = attribute.split("=", 1)[0].strip().lower()
        if name == "path":
            path = attribute.split("=", 1)[1].strip() if "=" in attribute else "/"
        elif name != "domain":
            kept.append(attribute)
    kept.append(f"Path={prefix}{path if path.startswith('/') else '/' + path}")
    return "; ".join(kept)


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
    query = httpx.QueryParams([(k, v) for k, v in request.query_params.multi_items() if k != "token"])
    headers = [(k, v) for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP | {"authorization", "cookie"}]
    cookies = [f"{k}={v}" for k, v in request.cookies.items() if k != TOKEN_COOKIE]
    if cookies:
        headers.append(("cookie", "; ".join(cookies)))
    headers += [
        ("x-forwarded-prefix", prefix),
        ("x-forwarded-host", request.headers.get("host", "")),
        ("x-forwarded-proto", request.url.scheme),
    ]
    client: httpx.AsyncClient = request.app.state.proxy_client
    upstream_request = client.build_request(
        request.method,
        f"http://{target.host}:{target.port}/{path}",
        params=query,
        headers=headers,
        content=request.stream() if request.method not in ("GET", "HEAD") else None,
    )
    try:
        upstream = await client.send(upstream_request, stream=True)
    except httpx.HTTPError as exc:
        raise ProblemError(
            502, f"{endpoint}/{presentation} did not answer: {exc or type(exc).__name__}", "endpoint-unreachable"
        ) from exc
    response_headers: list[tuple[str, str]] = []
    for name, value in upstream.headers.multi_items():
        lowered = name.lower()
        if lowered in HOP_BY_HOP:
            continue
        if lowered == "location":
            value = _rewrite_location(value, target, prefix)
        elif lowered == "set-cookie":
            value = _rewrite_cookie(value, prefix)
        response_headers.append((name, value))
    response = StreamingResponse(
        upstream.aiter_raw(), status_code=upstream.status_code, background=BackgroundTask(upstream.aclose)
    )
    response.raw_headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in response_headers]
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


# ---------------------------------------------------------------------------------------------- NETCONF
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
    body = await request.body()
    try:
        parse_xml(body)
    except ValueError as exc:
        raise ProblemError(422, str(exc), "invalid-xml") from exc
    timeout = _settings(request).netconf_timeout
    try:
        async with await NetconfSession.open(target.host, target.port, target.username, target.password, timeout) as nc:
            reply = await nc.rpc(body, timeout)
    except NetconfError as exc:
        raise ProblemError(502, f"{endpoint}/{presentation}: {exc}", "endpoint-unreachable") from exc
    return Response(reply, media_type="application/xml")
