"""The FastAPI application."""

from __future__ import annotations

from fastapi import FastAPI

from api import problems
from api.routers import catalog, health
from syringe import __version__
from syringe.catalog import Catalog
from syringe.curriculum import CurriculumTree, load_curriculum
from syringe.settings import Settings


class CurriculumRefused(RuntimeError):
    """The curriculum has problems, so the service will not start."""

    def __init__(self, tree: CurriculumTree) -> None:
        super().__init__(f"{len(tree.problems)} problem(s) in {tree.root}")
        self.tree = tree


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    tree = load_curriculum(settings.curriculum)
    if tree.problems:
        raise CurriculumRefused(tree)
    app = FastAPI(
        title="Syringe",
        version=__version__,
        description="Lesson orchestration for hands-on network labs.",
    )
    app.state.settings = settings
    app.state.catalog = Catalog(tree)
    problems.install(app)
    app.include_router(health.router)
    app.include_router(catalog.router)
    return app
