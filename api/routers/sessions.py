"""Learner sessions."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import LearnersDep
from api.schemas_live import SessionCreated

router = APIRouter(prefix="/api/v1", tags=["sessions"])


@router.post("/sessions", status_code=201, response_model=SessionCreated)
async def create_session(learners: LearnersDep) -> SessionCreated:
    """A new learner session. Its token is shown once: send it as `Authorization: Bearer <token>`."""
    session, token = await learners.create()
    return SessionCreated(id=session.id, token=token, expires_at=session.expires_at)
