"""Learner sessions."""

from __future__ import annotations

from fastapi import APIRouter, Request

from api.deps import LearnersDep
from api.limits import rate_limit
from api.schemas_live import SessionCreated

router = APIRouter(prefix="/api/v1", tags=["sessions"])


@router.post("/sessions", status_code=201, response_model=SessionCreated)
async def create_session(learners: LearnersDep, request: Request) -> SessionCreated:
    """A new learner session. Its token is shown once: send it as `Authorization: Bearer <token>`. Each client
    address may create `SYRINGE_API__SESSIONS_PER_MINUTE` (429 `rate-limited` beyond)."""
    rate_limit(request, "sessions")
    session, token = await learners.create()
    return SessionCreated(id=session.id, token=token, expires_at=session.expires_at)
