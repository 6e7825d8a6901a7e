"""Live lessons of the caller's session: launch, read, follow, change stage, keep alive, delete."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse

from api.deps import Learner, Manager, catalog
from api.limits import SlottedStream, limits, rate_limit
from api.problems import ProblemError
from api.responses import json_bytes
from api.schemas import GuideView
from api.schemas_live import Keepalive, LaunchAccepted, LaunchRequest, LiveLessonView, StageRequest
from syringe.livelessons import LiveLessons

router = APIRouter(prefix="/api/v1/livelessons", tags=["live lessons"])
HEARTBEAT_SECONDS = 15.0


@router.post("", status_code=202, response_model=LaunchAccepted)
async def launch(body: LaunchRequest, session: Learner, manager: Manager, request: Request) -> Response:
    """Launch a lesson, or return the session's live lesson of it (moving it to ``stage`` when READY)."""
    if body.lesson not in manager.tree.lessons:
        raise ProblemError(404, f"no lesson '{body.lesson}'", "lesson-not-found")
    rate_limit(request, "launches")
    ll = await manager.launch(session.id, body.lesson, body.stage)
    accepted = LaunchAccepted(id=ll.id, status=ll.status.value)
    return json_bytes(
        accepted.model_dump_json(by_alias=True).encode(), 202, {"Location": f"/api/v1/livelessons/{ll.id}"}
    )


@router.get("", response_model=list[LiveLessonView])
async def list_livelessons(session: Learner, manager: Manager, request: Request) -> Response:
    views = request.app.state.views
    body = b"[" + b",".join(views.json(ll, manager) for ll in manager.of_session(session.id)) + b"]"
    return json_bytes(body)


@router.get("/{livelesson_id}", response_model=LiveLessonView)
async def get_livelesson(livelesson_id: str, session: Learner, manager: Manager, request: Request) -> Response:
    """The live lesson, from memory: reading it never costs the Kubernetes API server a call."""
    return json_bytes(request.app.state.views.json(manager.get(livelesson_id, session.id), manager))


@router.get("/{livelesson_id}/guide", response_model=GuideView)
def get_guide(livelesson_id: str, session: Learner, manager: Manager, request: Request) -> GuideView:
    """The current stage's guide, rendered to HTML."""
    ll = manager.get(livelesson_id, session.id)
    cat = catalog(request)
    return GuideView(
        lesson=ll.lesson,
        stage=ll.stage,
        guide_type=cat.lesson(ll.lesson).stages[ll.stage].guide_type,
        html=cat.guide(ll.lesson, ll.stage),
    )


@router.put("/{livelesson_id}/stage", status_code=202, response_model=LaunchAccepted)
async def set_stage(livelesson_id: str, body: StageRequest, session: Learner, manager: Manager) -> LaunchAccepted:
    ll = await manager.set_stage(livelesson_id, body.stage, session.id)
    return LaunchAccepted(id=ll.id, status=ll.status.value)


@router.post("/{livelesson_id}/verify", status_code=202, response_model=LaunchAccepted)
async def verify(livelesson_id: str, session: Learner, manager: Manager) -> LaunchAccepted:
    """Run the current stage's learner checks; results appear in the live lesson's `verification`. A failed
    check is a result for the learner, not an error of the live lesson. 409 unless READY."""
    ll = await manager.verify(livelesson_id, session.id)
    return LaunchAccepted(id=ll.id, status=ll.verification.status if ll.verification else "done")


@router.post("/{livelesson_id}/keepalive", response_model=Keepalive)
async def keepalive(livelesson_id: str, session: Learner, manager: Manager) -> Keepalive:
    ll = await manager.keepalive(livelesson_id, session.id)
    return Keepalive(id=ll.id, expires_at=ll.expires_at)


@router.delete("/{livelesson_id}", status_code=202, response_model=LaunchAccepted)
async def delete_livelesson(livelesson_id: str, session: Learner, manager: Manager) -> LaunchAccepted:
    ll = manager.get(livelesson_id, session.id)
    await manager.delete(ll.id, session.id, wait=False)
    return LaunchAccepted(id=ll.id, status="DELETING")


@router.get(
    "/{livelesson_id}/events",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "Server-Sent Events"}},
)
async def events(livelesson_id: str, session: Learner, manager: Manager, request: Request) -> StreamingResponse:
    """Server-Sent Events: `status` with the whole live lesson on every change, `deleted` at the end. A
    session may hold `SYRINGE_API__EVENT_STREAMS_PER_SESSION` streams at once (429 beyond)."""
    ll = manager.get(livelesson_id, session.id)
    release = limits(request).streams.acquire(session.id)
    return SlottedStream(
        _event_stream(ll.id, manager, request),
        release,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


async def _event_stream(livelesson_id: str, manager: LiveLessons, request: Request) -> AsyncIterator[bytes]:
    views = request.app.state.views
    changes = manager.listen(livelesson_id)  # wakes on this live lesson's changes only
    try:
        sent = -1
        while True:
            ll = manager.registry.lessons.get(livelesson_id)
            if ll is None:
                yield b"event: deleted\ndata: " + json.dumps({"id": livelesson_id}).encode() + b"\n\n"
                return
            if ll.version != sent:
                sent = ll.version
                yield b"event: status\nid: %d\ndata: %s\n\n" % (sent, views.json(ll, manager))
            try:
                await asyncio.wait_for(changes.get(), HEARTBEAT_SECONDS)
            except TimeoutError:
                yield b": keepalive\n\n"
    finally:
        manager.unlisten(changes)
