"""Syringe's catalog and live lessons as antidote-core v0.7 showed them: its protobuf messages in
grpc-gateway's JSON, that is, the proto field names exactly as declared (``Slug``, ``LiveEndpoints``,
``SSHPassword``, but ``lessons``, ``prereqs``, ``id``) and no field whose value is zero (0, "", false, an empty
list or map). Pure translation: every value comes from the curriculum or from the live lesson in memory.

Where Syringe differs from antidote-core on purpose (docs/API.md says why): an endpoint's ``Host`` is a name
for the terminal (``<endpoint>.<live lesson id>``) rather than an address; ``HepDomain`` (http presentations
only) and ``GuideDomain`` (jupyter guides) are ``host[:port]/path`` under Syringe's own dialect; ``SessionID``
is the session's public id, never the token that ``POST /exp/livesession`` handed out as its ``ID``."""

from __future__ import annotations

import json
from typing import Any

from syringe.catalog import Catalog
from syringe.curriculum.files import read_guide
from syringe.curriculum.models import Collection, Curriculum, Endpoint, Image, Lesson
from syringe.livelessons import LiveLesson

CACHED_VIEWS = 10_000


def _zero(value: Any) -> bool:
    if value is None or value is False:
        return True
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value == 0
    return isinstance(value, str | list | dict | tuple) and len(value) == 0


def message(**fields: Any) -> dict[str, Any]:
    """A protobuf message as grpc-gateway writes it: fields in declaration order, zero values left out."""
    return {name: value for name, value in fields.items() if not _zero(value)}


# ---------------------------------------------------------------------------------------------- catalog
def curriculum_info(curriculum: Curriculum) -> dict[str, Any]:
    return message(
        Name=curriculum.name,
        Description=curriculum.description,
        Website=curriculum.website,
        AVer=curriculum.a_ver,
        GitRoot=curriculum.git_root,
    )


def _endpoint(endpoint: Endpoint) -> dict[str, Any]:
    return message(
        Name=endpoint.name,
        Image=endpoint.image,
        ConfigurationType=endpoint.configuration_type,
        AdditionalPorts=list(endpoint.additional_ports),
        Presentations=[message(Name=p.name, Port=p.port, Type=p.type) for p in endpoint.presentations],
    )


def lesson(lesson: Lesson) -> dict[str, Any]:
    """antidote-core's ``Lesson``, without ``LessonFile`` and ``LessonDir`` (paths on the server)."""
    return message(
        Slug=lesson.slug,
        Stages=[
            message(Description=s.description, GuideType=s.guide_type, StageVideo=s.stage_video) for s in lesson.stages
        ],
        Name=lesson.name,
        Endpoints=[_endpoint(e) for e in lesson.endpoints],
        Connections=[message(A=c.a, B=c.b) for c in lesson.connections],
        Authors=[message(Name=a.name, Link=a.link) for a in lesson.authors],
        Category=lesson.category,
        Diagram=lesson.diagram,
        Video=lesson.video,
        Tier=lesson.tier,
        Prereqs=list(lesson.prereqs),
        Tags=list(lesson.tags),
        Collection=lesson.collection,
        Description=lesson.description,
        ShortDescription=lesson.short_description,
        ReadyDelay=lesson.ready_delay,
    )


def collection(collection: Collection, lessons: list[Lesson] | None = None) -> dict[str, Any]:
    """antidote-core's ``Collection``; ``Lessons`` (``{Slug, Name, Description}``) only when asked for one."""
    return message(
        Slug=collection.slug,
        Title=collection.title,
        Image=collection.image,
        Website=collection.website,
        ContactEmail=collection.contact_email,
        BriefDescription=collection.brief_description,
        LongDescription=collection.long_description,
        Type=collection.type,
        Tier=collection.tier,
        Lessons=[message(Slug=one.slug, Name=one.name, Description=one.description) for one in lessons or []],
    )


# ---------------------------------------------------------------------------------------------- live lessons
def terminal_host(livelesson_id: str, endpoint: str) -> str:
    """The ``Host`` antidote-web hands back to the terminal: a name Syringe resolves, not an address."""
    return f"{endpoint}.{livelesson_id}"


def parse_terminal_host(host: str) -> tuple[str, str] | None:
    """(live lesson id, endpoint) of a ``terminal_host``; None for anything else."""
    endpoint, dot, livelesson_id = host.partition(".")
    if not dot or not endpoint or not livelesson_id or "." in livelesson_id:
        return None
    return livelesson_id, endpoint


def hep_domain(base: str, livelesson_id: str, endpoint: str, presentation: str) -> str:
    """Where the browser reaches an http presentation: ``<scheme>//<this>/`` is the dialect's proxy."""
    return f"{base}/exp/livelesson/{livelesson_id}/endpoints/{endpoint}/http/{presentation}"


def guide_domain(base: str, lesson_slug: str) -> str:
    """Where antidote-web finds a jupyter guide: ``<scheme>//<this>/notebooks/stage<N>/guide.ipynb``."""
    return f"{base}/exp/lesson/{lesson_slug}"


def live_endpoint(ll: LiveLesson, endpoint: Endpoint, image: Image | None, base: str) -> dict[str, Any]:
    """A ``LiveEndpoint``. The SSH password is the image's, shown to the browser as Antidote showed it."""
    return message(
        Name=endpoint.name,
        Image=endpoint.image,
        Ports=endpoint.ports(),
        LivePresentations=[
            message(
                Name=p.name,
                Port=p.port,
                Type=p.type,
                HepDomain=hep_domain(base, ll.id, endpoint.name, p.name) if p.type == "http" else "",
            )
            for p in endpoint.presentations
        ],
        Host=terminal_host(ll.id, endpoint.name),
        SSHUser=image.ssh_user if image else "",
        SSHPassword=image.ssh_password if image else "",
    )


class LiveLessonViews:
    """Live lessons as antidote-web polls them, rendered from memory and cached per (version, base): a poll
    every 500 ms re-renders nothing that did not change. Guides are read once per (lesson, stage)."""

    def __init__(self, catalog: Catalog, instance: str) -> None:
        self.catalog = catalog
        self.instance = instance
        self._guides: dict[tuple[str, int], str] = {}
        self._cache: dict[str, tuple[int, str, bytes]] = {}

    def guide_contents(self, lesson_slug: str, stage: int) -> str:
        """A markdown guide for antidote-web to render: the file as written, as Antidote gave it; when the
        operator has Syringe sanitise guides, the sanitised HTML instead (markdown passes HTML through), so
        the dialect never carries what the native API would strip. Raises OSError or a CurriculumError."""
        key = (lesson_slug, stage)
        found = self._guides.get(key)
        if found is None:
            if self.catalog.tree.policy.sanitize_guides:
                found = self.catalog.guide(lesson_slug, stage)
            else:
                found = read_guide(self.catalog.tree.lessons[lesson_slug], stage)
            self._guides[key] = found
        return found

    def json(self, ll: LiveLesson, base: str) -> bytes:
        cached = self._cache.get(ll.id)
        if cached is not None and cached[0] == ll.version and cached[1] == base:
            return cached[2]
        body = json.dumps(self.livelesson(ll, base), ensure_ascii=False, separators=(",", ":")).encode()
        if len(self._cache) >= CACHED_VIEWS:
            self._cache.clear()
        self._cache[ll.id] = (ll.version, base, body)
        return body

    def livelesson(self, ll: LiveLesson, base: str) -> dict[str, Any]:
        """antidote-core's ``LiveLesson``. ``Status`` is INITIALIZED, BOOTING, CONFIGURATION or READY (the
        router answers an ERROR or a deletion as an error instead, as antidote-core did)."""
        tree = self.catalog.tree
        source = tree.lessons[ll.lesson].lesson
        stage = source.stages[ll.stage] if 0 <= ll.stage < len(source.stages) else None
        guide_type = stage.guide_type if stage else ""
        return message(
            ID=ll.id,
            SessionID=ll.session,
            AntidoteID=self.instance,
            LessonSlug=ll.lesson,
            LiveEndpoints={e.name: live_endpoint(ll, e, tree.images.get(e.image), base) for e in source.endpoints},
            CurrentStage=ll.stage,
            GuideContents=self.guide_contents(ll.lesson, ll.stage) if guide_type == "markdown" else "",
            GuideType=guide_type,
            GuideDomain=guide_domain(base, ll.lesson) if guide_type == "jupyter" else "",
            Status=ll.status.value,
            HealthyTests=ll.healthy,
            TotalTests=ll.total,
            Diagram=source.diagram,
            Video=source.video,
            StageVideo=stage.stage_video if stage else "",
        )
