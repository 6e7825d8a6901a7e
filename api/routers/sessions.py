"""Learner sessions."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Request

from api.deps import SessionsDep
from api.schemas_live import SessionCreated

router = APIRouter(prefix="/api/v1", tags=["sessions"])


@router.post("/sessions", status_code=201, response_model=SessionCreated)
async def create_session(registry: SessionsDep, request: Request) -> SessionCreated:
    """A new learner session. Its token is shown once: send it as `Authorization: Bearer <token>`."""
    manager = request.app.state.manager
    if manager is not None:  # stored in the cluster, so that every replica knows it
        session, token = await manager.create_session()
    else:
        session, token = registry.create(datetime.now(UTC))
    return SessionCreated(id=session.id, token=token, expires_at=session.expires_at)
