"""Operators' view: every session and live lesson, kill, persistence, stats."""

from __future__ import annotations

from collections import Counter

from fastapi import APIRouter, Depends, Request, Response

from api.deps import Manager, admin
from api.responses import json_bytes
from api.schemas_live import AdminSession, LaunchAccepted, LiveLessonView, PersistentRequest, Stats
from syringe.runtime.base import CountsCalls

router = APIRouter(prefix="/api/v1/admin", tags=["admin"], dependencies=[Depends(admin)])


@router.get("/sessions", response_model=list[AdminSession])
def list_sessions(manager: Manager) -> list[AdminSession]:
    return [
        AdminSession(
            id=s.id,
            created_at=s.created_at,
            expires_at=s.expires_at,
            persistent=s.persistent,
            livelessons=[ll.id for ll in manager.of_session(s.id)],
        )
        for s in manager.learners.all()
    ]


@router.put("/sessions/{session_id}/persistent", response_model=AdminSession)
async def set_persistent(session_id: str, body: PersistentRequest, manager: Manager) -> AdminSession:
    session = manager.learners.get(session_id)
    await manager.set_persistent(session_id, body.persistent)
    return AdminSession(
        id=session.id,
        created_at=session.created_at,
        expires_at=session.expires_at,
        persistent=body.persistent,
        livelessons=[ll.id for ll in manager.of_session(session_id)],
    )


@router.get("/livelessons", response_model=list[LiveLessonView])
def list_all(manager: Manager, request: Request) -> Response:
    views = request.app.state.views
    return json_bytes(b"[" + b",".join(views.json(ll, manager) for ll in manager.all()) + b"]")


@router.delete("/livelessons/{livelesson_id}", status_code=202, response_model=LaunchAccepted)
async def kill(livelesson_id: str, manager: Manager) -> LaunchAccepted:
    ll = manager.get(livelesson_id)
    await manager.delete(ll.id, wait=False)
    return LaunchAccepted(id=ll.id, status="DELETING")


@router.get("/stats", response_model=Stats)
def stats(manager: Manager) -> Stats:
    counts = manager.runtime.call_counts() if isinstance(manager.runtime, CountsCalls) else {}
    lessons = manager.all()
    return Stats(
        live_lessons=len(lessons),
        by_status=dict(Counter(ll.status.value for ll in lessons)),
        sessions=len(manager.learners.all()),
        max_live_lessons=manager.settings.max_live_lessons,
        max_per_session=manager.settings.max_per_session,
        kubernetes_calls=dict(counts.get("api", {})),
        leader_election_calls=dict(counts.get("lease", {})),
        replica=manager.leadership.identity,
        leader=manager.leadership.is_leader,
        gc_runs=manager.gc_runs,
    )
