"""Read-only catalog: curriculum, lessons, stages and guides, prerequisites, collections, images."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from api.deps import CatalogDep
from api.problems import ProblemError
from api.schemas import (
    CollectionView,
    CurriculumView,
    EndpointView,
    GuideView,
    ImageView,
    LessonDetail,
    LessonSummary,
    LinkView,
    TopologyView,
)
from syringe.errors import CurriculumError
from syringe.plan.addressing import plan_links

router = APIRouter(prefix="/api/v1", tags=["catalog"])


@router.get("/curriculum", response_model=CurriculumView)
def get_curriculum(cat: CatalogDep) -> CurriculumView:
    tree = cat.tree
    assert tree.curriculum is not None  # a curriculum with problems never starts the service
    return CurriculumView.of(tree.curriculum, len(tree.lessons), len(tree.collections), len(tree.images))


@router.get("/lessons", response_model=list[LessonSummary])
def list_lessons(
    cat: CatalogDep,
    category: Annotated[str | None, Query(description="only lessons of this category")] = None,
    tag: Annotated[str | None, Query(description="only lessons with this tag")] = None,
    collection: Annotated[str | None, Query(description="only lessons of this collection")] = None,
) -> list[LessonSummary]:
    return [LessonSummary.of(lesson) for lesson in cat.lessons(category, tag, collection)]


@router.get("/lessons/{slug}", response_model=LessonDetail)
def get_lesson(slug: str, cat: CatalogDep) -> LessonDetail:
    return LessonDetail.of(cat.lesson(slug))


@router.get("/lessons/{slug}/prerequisites", response_model=list[LessonSummary])
def get_prerequisites(slug: str, cat: CatalogDep) -> list[LessonSummary]:
    """Every lesson to take first: transitive, each once, the most basic first."""
    return [LessonSummary.of(lesson) for lesson in cat.prerequisites(slug)]


@router.get("/lessons/{slug}/topology", response_model=TopologyView)
def get_topology(slug: str, cat: CatalogDep, request: Request) -> TopologyView:
    """The lesson's endpoints and links, with the interface names and addresses the plan gives each side."""
    lesson = cat.lesson(slug)
    plan = request.app.state.settings.plan
    links = plan_links(lesson, cat.tree.images, plan.subnet_pool, plan.subnet_prefix)
    return TopologyView(
        lesson=slug, endpoints=[EndpointView.of(e) for e in lesson.endpoints], links=[LinkView.of(k) for k in links]
    )


@router.get("/lessons/{slug}/stages/{stage}/guide", response_model=GuideView)
def get_guide(slug: str, stage: int, cat: CatalogDep) -> GuideView:
    try:
        html = cat.guide(slug, stage)
        guide_type = cat.lesson(slug).stages[stage].guide_type
    except (CurriculumError, OSError) as exc:
        # A guide file that became a link, a FIFO or too large since validation (FileRefused) is never
        # read: the answer says which file and why, never what it points to.
        reason = (exc.strerror or "cannot be read") if isinstance(exc, OSError) else str(exc)
        raise ProblemError(
            503, f"guide of {slug} stage {stage} cannot be rendered: {reason}", "guide-unavailable"
        ) from exc
    return GuideView(lesson=slug, stage=stage, guide_type=guide_type, html=html)


@router.get("/collections", response_model=list[CollectionView])
def list_collections(cat: CatalogDep) -> list[CollectionView]:
    return [
        CollectionView.of(c, [lesson.slug for lesson in cat.lessons(collection=c.slug)])
        for c in sorted(cat.tree.collections.values(), key=lambda c: c.slug)
    ]


@router.get("/collections/{slug}", response_model=CollectionView)
def get_collection(slug: str, cat: CatalogDep) -> CollectionView:
    collection = cat.tree.collections.get(slug)
    if collection is None:
        raise ProblemError(404, f"no collection '{slug}'", "collection-not-found")
    return CollectionView.of(collection, [lesson.slug for lesson in cat.lessons(collection=slug)])


@router.get("/images", response_model=list[ImageView])
def list_images(cat: CatalogDep) -> list[ImageView]:
    return [ImageView.of(i) for i in sorted(cat.tree.images.values(), key=lambda i: i.slug)]


@router.get("/images/{slug}", response_model=ImageView)
def get_image(slug: str, cat: CatalogDep) -> ImageView:
    image = cat.tree.images.get(slug)
    if image is None:
        raise ProblemError(404, f"no image '{slug}'", "image-not-found")
    return ImageView.of(image)
