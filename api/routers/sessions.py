"""Learner sessions."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter

from api.deps import SessionsDep
from api.schemas_live import SessionCreated

router = APIRouter(prefix="/api/v1", tags=["sessions"])


@router.post("/sessions", status_code=201, response_model=SessionCreated)
async def create_session(registry: SessionsDep) -> SessionCreated:
    """A new learner session. Its token is shown once: send it as `Authorization: Bearer <token>`."""
    session, token = registry.create(datetime.now(UTC))
    return SessionCreated(id=session.id, token=token, expires_at=session.expires_at)
