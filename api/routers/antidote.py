"""The Antidote dialect's REST calls: what antidote-web asks of antidote-core v0.7, answered from Syringe's
own catalog, sessions and live lessons (docs/API.md, "The Antidote dialect"). Served under ``/exp`` and, for a
front end that shares Syringe's origin, ``/acore/exp``. Bodies are JSON whatever their Content-Type (the
front end posts ``text/plain``); refusals are grpc-gateway's ``{"error", "code", "message"}``."""

from __future__ import annotations

import html
import json
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse

from api.antidote import views
from api.antidote.grpc import AntidoteError, Code, GrpcRoute, json_response
from api.antidote.guesses import Guesses
from api.deps import TOKEN_COOKIE, came_over_tls, catalog, learners
from api.limits import rate_limit
from api.routers.access import ProxiedResponse
from syringe import __version__
from syringe.access.http_proxy import ProxyRequest, Served, forward
from syringe.access.transfer import TransferLimits
from syringe.errors import CurriculumError, LimitReached, NotFound, Unreachable
from syringe.livelessons import LiveLesson, LiveLessons, Status

router = APIRouter(route_class=GrpcRoute, include_in_schema=False)
ACORE_PREFIX = "/acore"


# ---------------------------------------------------------------------------------------------- helpers
def _manager(request: Request) -> LiveLessons:
    found: LiveLessons | None = request.app.state.manager
    if found is None:
        reason = request.app.state.runtime_problem or "no runtime is configured"
        raise AntidoteError(Code.UNAVAILABLE, f"live lessons are unavailable: {reason}")
    return found


def _livelesson(request: Request, livelesson_id: str) -> LiveLesson:
    """The live lesson this id names, to anyone who holds it (as antidote-core); guessing ids is refused."""
    manager = _manager(request)
    guesses: Guesses = request.app.state.antidote_guesses
    guesses.check(request)
    try:
        ll = manager.get(livelesson_id)
    except NotFound:
        guesses.missed(request)
        raise
    if ll.deleting:
        raise AntidoteError(Code.NOT_FOUND, f"no live lesson '{livelesson_id}'")
    return ll


def _views(request: Request) -> views.LiveLessonViews:
    found: views.LiveLessonViews = request.app.state.antidote_views
    return found


def public_base(request: Request) -> str:
    """host[:port][/path] at which this browser reaches the dialect: the setting, else the host it sent the
    request to, with ``/acore`` when it came under that prefix."""
    configured: str = request.app.state.settings.antidote.public_base
    if configured:
        return configured
    forwarded = request.headers.get("x-forwarded-host")
    host = forwarded.split(",")[0].strip() if forwarded else request.headers.get("host", "")
    return host + (ACORE_PREFIX if request.url.path.startswith(ACORE_PREFIX + "/") else "")


async def _body(request: Request) -> dict[str, Any]:
    """The JSON object in the body, whatever the Content-Type; an empty body is ``{}``."""
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        value = json.loads(raw)
    except ValueError as exc:  # UnicodeDecodeError included
        raise AntidoteError(Code.INVALID_ARGUMENT, f"the body is not JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise AntidoteError(Code.INVALID_ARGUMENT, "the body must be a JSON object")
    return value


def _string(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise AntidoteError(Code.INVALID_ARGUMENT, f"{name} must be a string")
    return value


def _stage(body: dict[str, Any]) -> int:
    """``lessonStage`` as protobuf's JSON reads an int32: a number, a numeric string, or absent (0)."""
    value = body.get("lessonStage")
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise AntidoteError(Code.INVALID_ARGUMENT, "lessonStage must be a number")
    try:
        number = float(value)
    except ValueError:
        raise AntidoteError(Code.INVALID_ARGUMENT, "lessonStage must be a number") from None
    if not number.is_integer():
        raise AntidoteError(Code.INVALID_ARGUMENT, "lessonStage must be a whole number")
    return int(number)


# ---------------------------------------------------------------------------------------------- catalog
@router.get("/exp/curriculum")
async def get_curriculum(request: Request) -> Response:
    curriculum = catalog(request).tree.curriculum
    assert curriculum is not None  # a curriculum with problems never starts the service
    return json_response(views.curriculum_info(curriculum))


@router.get("/exp/antidoteinfo")
async def get_antidote_info() -> Response:
    return json_response(views.message(buildVersion=f"syringe {__version__}"))


@router.get("/exp/lesson")
async def list_lessons(request: Request) -> Response:
    lessons = catalog(request).lessons(category=request.query_params.get("Category") or None)
    return json_response({"lessons": [views.lesson(lesson) for lesson in lessons]})


@router.get("/exp/lesson/{slug}")
async def get_lesson(slug: str, request: Request) -> Response:
    return json_response(views.lesson(catalog(request).lesson(slug)))


@router.get("/exp/lesson/{slug}/prereqs")
async def get_prereqs(slug: str, request: Request) -> Response:
    """Every lesson to take first, transitively, each once (the most basic first)."""
    return json_response(views.message(prereqs=[lesson.slug for lesson in catalog(request).prerequisites(slug)]))


@router.get("/exp/lesson/{slug}/notebooks/{stage_dir}/guide.ipynb")
async def get_notebook(slug: str, stage_dir: str, request: Request) -> Response:
    """A jupyter guide as a page: what antidote-web opens at ``<GuideDomain>/notebooks/stage<N>/guide.ipynb``
    (Syringe renders notebooks itself; it runs no Jupyter server)."""
    number = stage_dir.removeprefix("stage")
    if not stage_dir.startswith("stage") or not number.isdigit():
        raise AntidoteError(Code.NOT_FOUND, f"no guide at {stage_dir}")
    try:
        rendered = catalog(request).guide(slug, int(number))
    except (CurriculumError, OSError) as exc:
        raise AntidoteError(Code.UNAVAILABLE, f"guide of {slug} stage {number} cannot be rendered: {exc}") from exc
    title = html.escape(f"{slug}, stage {number}")
    head = f'<!doctype html>\n<html><head><meta charset="utf-8"><title>{title}</title></head>\n'
    return HTMLResponse(f"{head}<body>{rendered}</body></html>")


@router.get("/exp/collection")
async def list_collections(request: Request) -> Response:
    collections = sorted(catalog(request).tree.collections.values(), key=lambda c: c.slug)
    return json_response({"collections": [views.collection(c) for c in collections]})


@router.get("/exp/collection/{slug}")
async def get_collection(slug: str, request: Request) -> Response:
    cat = catalog(request)
    found = cat.tree.collections.get(slug)
    if found is None:
        raise AntidoteError(Code.NOT_FOUND, f"Collection not found: {slug}")
    return json_response(views.collection(found, cat.lessons(collection=slug)))


# ---------------------------------------------------------------------------------------------- sessions
@router.post("/exp/livesession")
async def request_live_session(request: Request) -> Response:
    """A new learner session. Its ``ID`` is the session's token (what the front end keeps in its cookie and
    sends back as ``sessionId``), so the session is as good on /api/v1 as a native one."""
    await _body(request)
    rate_limit(request, "sessions")
    _, token = await learners(request).create()
    return json_response({"ID": token})


@router.post("/exp/livelesson")
async def request_live_lesson(request: Request) -> Response:
    """The session's live lesson of ``lessonSlug``: launched, or the one it has (kept alive, and moved to
    ``lessonStage`` when that differs and it is READY). One that failed is replaced by a new launch: asking
    again is how antidote-web's learner retries. Returns ``{"id"}``."""
    body = await _body(request)
    session_token, slug, stage = _string(body, "sessionId"), _string(body, "lessonSlug"), _stage(body)
    if not session_token:
        raise AntidoteError(Code.INVALID_ARGUMENT, "Session ID cannot be nil")
    session = await learners(request).authenticate(session_token)
    if session is None:
        # antidote-web matches this text to renew its session and retry.
        raise AntidoteError(Code.INVALID_ARGUMENT, f"Invalid session ID {session_token}")
    if not slug:
        raise AntidoteError(Code.INVALID_ARGUMENT, "Lesson Slug cannot be nil")
    source = catalog(request).tree.lessons.get(slug)
    if source is None:
        raise AntidoteError(Code.NOT_FOUND, f"Couldn't find lesson slug '{slug}'")
    if not 0 <= stage < len(source.lesson.stages):
        raise AntidoteError(Code.INVALID_ARGUMENT, "Invalid stage ID for this lesson")
    manager = _manager(request)
    rate_limit(request, "launches")
    existing = manager.of_session_lesson(session.id, slug)
    if existing is not None and existing.status is Status.ERROR:
        await manager.delete(existing.id, session.id, wait=False)
        existing = None
    ll = await manager.launch(session.id, slug, stage)
    if ll is existing:
        await manager.keepalive(ll.id, session.id)  # as antidote-core's request "booped" the live lesson
    return json_response({"id": ll.id})


@router.get("/exp/livelesson/{livelesson_id}")
async def get_live_lesson(livelesson_id: str, request: Request) -> Response:
    """The live lesson, from memory (polled every 500 ms). Anyone holding its id may read it, SSH password
    included, as with antidote-core: the front end sends nothing else."""
    ll = _livelesson(request, livelesson_id)
    if ll.status is Status.ERROR:
        raise AntidoteError(Code.UNKNOWN, f"the lab could not be started: {ll.error}")
    try:
        body = _views(request).json(ll, public_base(request))
    except (CurriculumError, OSError) as exc:
        raise AntidoteError(Code.UNAVAILABLE, f"the guide of {ll.lesson} cannot be read: {exc}") from exc
    return Response(body, media_type="application/json")


# ---------------------------------------------------------------------------------------------- http presentations
async def hep_proxy(livelesson_id: str, endpoint: str, presentation: str, path: str, request: Request) -> Response:
    """An http presentation for antidote-web's iframe, at its ``HepDomain``: the native proxy's machinery
    (caps, deadlines, headers and cookies kept off Syringe's origin), reached by the live lesson's id as the
    rest of the dialect is."""
    manager = _manager(request)
    ll = _livelesson(request, livelesson_id)
    target = manager.target_for(ll.id, None, endpoint, presentation)
    if target.kind != "http":
        raise AntidoteError(Code.NOT_FOUND, f"{endpoint}/{presentation} is not an http presentation")
    access = request.app.state.settings.access
    if "service-worker" in request.headers:
        raise AntidoteError(Code.INVALID_ARGUMENT, "service workers are not served through the proxy")
    try:
        held = request.app.state.proxy_admission.admit(ll.id, ll.session)
    except LimitReached as exc:
        raise AntidoteError(Code.RESOURCE_EXHAUSTED, str(exc), {"Retry-After": "1"}) from exc
    root = ACORE_PREFIX if request.url.path.startswith(ACORE_PREFIX + "/") else ""
    prefix = root + views.hep_domain("", ll.id, endpoint, presentation)
    scheme = "https" if came_over_tls(request) else "http"
    query, headers, body = request.query_params.multi_items(), request.headers.items(), request.stream()
    outgoing = ProxyRequest(request.method, path, query, headers, request.cookies, body, scheme)
    served = Served(own_origin=False, content_security_policy=access.proxy_content_security_policy)
    limits = TransferLimits(access.proxy_deadline, access.proxy_min_rate, access.proxy_rate_grace)
    try:
        upstream = await forward(
            request.app.state.proxy_client, target, prefix, outgoing, "token", TOKEN_COOKIE, served, limits
        )
    except Unreachable as exc:
        held.release()
        raise AntidoteError(Code.UNAVAILABLE, f"{endpoint}/{presentation} did not answer: {exc}") from exc
    except BaseException:
        held.release()
        raise
    return ProxiedResponse(upstream, held, f"{endpoint}/{presentation}")


HEP_PATH = "/exp/livelesson/{livelesson_id}/endpoints/{endpoint}/http/{presentation}"
router.add_api_route(
    HEP_PATH + "/{path:path}", hep_proxy, methods=["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
)


@router.api_route(HEP_PATH, methods=["GET", "HEAD"])
async def hep_root(request: Request) -> Response:
    query = f"?{request.url.query}" if request.url.query else ""
    return Response(status_code=307, headers={"Location": request.url.path + "/" + query})


# Last: anything else under /exp is grpc-gateway's 404, not a problem document.
@router.api_route("/exp/{rest:path}", methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
async def not_found() -> Response:
    raise AntidoteError(Code.NOT_FOUND, "Not Found")
