"""Learner sessions."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Depends

from api.deps import sessions
from api.schemas_live import SessionCreated
from syringe.sessions.learners import Sessions

router = APIRouter(prefix="/api/v1", tags=["sessions"])


@router.post("/sessions", status_code=201, response_model=SessionCreated)
def create_session(registry: Sessions = Depends(sessions)) -> SessionCreated:  # noqa: B008 - FastAPI idiom
    """A new learner session. Its token is shown once: send it as `Authorization: Bearer <token>`."""
    session, token = registry.create(datetime.now(UTC))
    return SessionCreated(id=session.id, token=token, expires_at=session.expires_at)
