"""Liveness of the process."""

from __future__ import annotations

from fastapi import APIRouter, Request

from api.schemas import Health

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health)
def healthz(request: Request) -> Health:
    return Health(status="ok", lessons=len(request.app.state.catalog.tree.lessons))
