"""Liveness, readiness and metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from api.problems import ProblemError
from api.schemas import Health
from syringe.observability.metrics import REGISTRY
from syringe.runtime.base import ReportsConnection

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health)
async def healthz(request: Request) -> Health:
    """The process is alive and serving."""
    return Health(status="ok", lessons=len(request.app.state.catalog.tree.lessons))


@router.get("/readyz", response_model=Health)
async def readyz(request: Request) -> Health:
    """Ready to run live lessons: fails (503) while the Kubernetes API server is unreachable or failed the
    start-up checks. Without a cluster configured, only the catalog is served, and that is ready."""
    manager = request.app.state.manager
    problem = request.app.state.runtime_problem
    if problem is not None and not request.app.state.catalog_only:
        raise ProblemError(503, f"not ready: {problem}", "not-ready")
    runtime = manager.runtime if manager is not None else None
    if isinstance(runtime, ReportsConnection) and not runtime.connected:
        raise ProblemError(503, "not ready: the runtime's API server is unreachable", "not-ready")
    return Health(status="ready", lessons=len(request.app.state.catalog.tree.lessons))


@router.get("/metrics", response_class=Response, include_in_schema=False)
async def metrics() -> Response:
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
