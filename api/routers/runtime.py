"""Whether lessons can run on this runtime: what a front end shows in its catalog, before anyone launches."""

from __future__ import annotations

from fastapi import APIRouter, Request

from api.schemas import LessonRunnable, RuntimeView
from syringe.livelessons import LiveLessons

router = APIRouter(prefix="/api/v1", tags=["catalog"])


@router.get("/runtime", response_model=RuntimeView)
async def get_runtime(request: Request) -> RuntimeView:
    """Every lesson, runnable or not, with the reasons; no token needed (it says nothing about learners)."""
    manager: LiveLessons | None = request.app.state.manager
    slugs = sorted(request.app.state.catalog.tree.lessons)
    if manager is None:
        problem: str = request.app.state.runtime_problem or "live lessons are not running in this process"
        return RuntimeView(
            available=False,
            problem=problem,
            lessons=[LessonRunnable(slug=slug, runnable=False, reasons=[problem]) for slug in slugs],
        )
    judged = [(slug, manager.cannot_run(slug)) for slug in slugs]
    return RuntimeView(
        available=True,
        problem=None,
        lessons=[LessonRunnable(slug=slug, runnable=not reasons, reasons=reasons) for slug, reasons in judged],
    )
