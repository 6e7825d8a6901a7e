"""The FastAPI application: catalog, sessions, live lessons and admin, over one LiveLessons façade."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from api import problems
from api.antidote import mount as antidote
from api.errors import as_problem
from api.limits import Limits
from api.middleware import BodyLimit, RequestMetrics
from api.routers import access, admin, catalog, health, livelessons, runtime, sessions, ui
from api.views import ViewCache
from syringe import __version__
from syringe.access.terminal import TerminalSlots
from syringe.catalog import Catalog
from syringe.curriculum import CurriculumTree, load_curriculum
from syringe.errors import CurriculumError, NoCluster, RuntimeCheckFailed, RuntimeUnavailable, SyringeError
from syringe.learners import Learners
from syringe.livelessons import LiveLessons
from syringe.observability.metrics import REGISTRY, StateCollector
from syringe.runtime.base import CountsCalls
from syringe.runtime.select import runtime_from_settings
from syringe.settings import Settings

log = logging.getLogger(__name__)


class CurriculumRefused(CurriculumError):
    """The curriculum has problems, so the service will not start."""

    def __init__(self, tree: CurriculumTree) -> None:
        super().__init__(f"{len(tree.problems)} problem(s) in {tree.root}")
        self.tree = tree


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    manager = None
    try:
        runtime = runtime_from_settings(settings, app.state.catalog.tree)
        manager = LiveLessons(app.state.catalog.tree, runtime, settings.plan, settings.lifecycle)
        manager.learners.limit_lookups(settings.api.token_lookups_per_second, settings.api.token_lookup_burst)
        await manager.start()
        app.state.learners = manager.learners
    except (RuntimeUnavailable, RuntimeCheckFailed) as exc:
        # The catalog still serves; live-lesson calls answer 503 with this reason.
        log.error("live lessons unavailable: %s", exc)
        app.state.runtime_problem = str(exc)
        app.state.catalog_only = isinstance(exc, NoCluster)
        if manager is not None:
            await manager.runtime.close()
            manager = None
    app.state.manager = manager
    collector = None
    if manager is not None:
        runtime = manager.runtime
        counting = runtime if isinstance(runtime, CountsCalls) else None

        def calls() -> Counter[str]:
            counts = counting.call_counts() if counting is not None else {}
            return sum((Counter(by_verb) for by_verb in counts.values()), Counter())

        collector = StateCollector(lambda: Counter(ll.status.value for ll in manager.all()), calls)
        REGISTRY.register(collector)
    app.state.proxy_client = access.proxy_client(settings)
    try:
        yield
    finally:
        await antidote.close(app)
        await app.state.proxy_client.aclose()
        if collector is not None:
            REGISTRY.unregister(collector)
        if manager is not None:
            await manager.stop()
            await manager.runtime.close()


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    tree = load_curriculum(settings.curriculum, settings.curriculum_policy())
    if tree.problems:
        raise CurriculumRefused(tree)
    app = FastAPI(
        title="Syringe",
        version=__version__,
        description="Lesson orchestration for hands-on network labs.",
        lifespan=_lifespan,
    )
    app.state.settings = settings
    app.state.catalog = Catalog(tree)
    # Sessions in memory until live lessons start; then theirs, which replicas share.
    app.state.learners = Learners(settings.lifecycle.session_ttl_seconds, None, lambda: datetime.now(UTC))
    app.state.manager = None
    app.state.runtime_problem = None
    app.state.catalog_only = False
    app.state.views = ViewCache(settings.access)
    app.state.terminal_slots = TerminalSlots(settings.access.terminals_per_livelesson)
    app.state.limits = Limits(settings.api)
    problems.install(app)

    @app.exception_handler(SyringeError)
    async def _syringe_error(_: Request, exc: SyringeError) -> JSONResponse:
        problem = as_problem(exc)
        return problems.problem_response(problem.status, problem.detail, problem.kind, headers=problem.headers)

    routers = (health.router, catalog.router, runtime.router, sessions.router, livelessons.router, access.router)
    for router in (*routers, admin.router, ui.router):
        app.include_router(router)
    app.add_middleware(RequestMetrics)
    app.add_middleware(
        BodyLimit, max_bytes=settings.max_body_bytes, proxy_max_bytes=settings.access.proxy_max_body_bytes
    )
    if settings.antidote.enabled:
        antidote.install(app, settings)  # the Antidote dialect: /exp, /acore/exp and /socket.io/
    access.install(app, settings)  # last: its proxy origins' host routing is the outermost middleware
    return app
