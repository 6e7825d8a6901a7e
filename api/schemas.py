"""Response models of the catalog API (camelCase on the wire, like the metafiles)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from syringe.curriculum.models import Collection, Curriculum, Endpoint, Image, Lesson
from syringe.plan.addressing import Attachment, Link


class ApiModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, serialize_by_alias=True)


class PresentationView(ApiModel):
    name: str
    port: int
    type: str


class EndpointView(ApiModel):
    name: str
    image: str
    configuration_type: str | None
    presentations: list[PresentationView]
    additional_ports: list[int]

    @classmethod
    def of(cls, endpoint: Endpoint) -> EndpointView:
        return cls(
            name=endpoint.name,
            image=endpoint.image,
            configuration_type=endpoint.configuration_type,
            presentations=[PresentationView(name=p.name, port=p.port, type=p.type) for p in endpoint.presentations],
            additional_ports=list(endpoint.additional_ports),
        )


class ConnectionView(ApiModel):
    a: str
    b: str
    subnet: str | None


class StageView(ApiModel):
    index: int
    description: str
    guide_type: str
    stage_video: str
    guide_url: str
    check_count: int = Field(description="How many learner checks the stage has (verify runs them).")


class AuthorView(ApiModel):
    name: str
    link: str


class LessonSummary(ApiModel):
    slug: str
    name: str
    category: str
    tier: str
    tags: list[str]
    collection: str | None
    short_description: str
    stage_count: int
    endpoint_count: int

    @classmethod
    def of(cls, lesson: Lesson) -> LessonSummary:
        return cls(
            slug=lesson.slug,
            name=lesson.name,
            category=lesson.category,
            tier=lesson.tier,
            tags=list(lesson.tags),
            collection=lesson.collection,
            short_description=lesson.short_description,
            stage_count=len(lesson.stages),
            endpoint_count=len(lesson.endpoints),
        )


class LessonDetail(LessonSummary):
    description: str
    prereqs: list[str]
    authors: list[AuthorView]
    diagram: str
    video: str
    ready_delay: int
    endpoints: list[EndpointView]
    connections: list[ConnectionView]
    stages: list[StageView]

    @classmethod
    def of(cls, lesson: Lesson) -> LessonDetail:
        summary = LessonSummary.of(lesson).model_dump(by_alias=False)
        return cls(
            **summary,
            description=lesson.description,
            prereqs=list(lesson.prereqs),
            authors=[AuthorView(name=a.name, link=a.link) for a in lesson.authors],
            diagram=lesson.diagram,
            video=lesson.video,
            ready_delay=lesson.ready_delay,
            endpoints=[EndpointView.of(e) for e in lesson.endpoints],
            connections=[ConnectionView(a=c.a, b=c.b, subnet=c.subnet) for c in lesson.connections],
            stages=[
                StageView(
                    index=i,
                    description=s.description,
                    guide_type=s.guide_type,
                    stage_video=s.stage_video,
                    guide_url=f"/api/v1/lessons/{lesson.slug}/stages/{i}/guide",
                    check_count=len(s.verify),
                )
                for i, s in enumerate(lesson.stages)
            ],
        )


class AttachmentView(ApiModel):
    endpoint: str
    interface: str
    address: str = Field(description="With its prefix length, e.g. 10.12.0.1/24.")

    @classmethod
    def of(cls, side: Attachment) -> AttachmentView:
        return cls(endpoint=side.endpoint, interface=side.interface, address=side.address)


class LinkView(ApiModel):
    index: int
    subnet: str
    a: AttachmentView
    b: AttachmentView

    @classmethod
    def of(cls, link: Link) -> LinkView:
        return cls(index=link.index, subnet=link.subnet, a=AttachmentView.of(link.a), b=AttachmentView.of(link.b))


class TopologyView(ApiModel):
    """What a diagram of the lesson needs: its endpoints, and each connection with the interface names and
    addresses the plan gives both sides (the same on every stage and every launch)."""

    lesson: str
    endpoints: list[EndpointView]
    links: list[LinkView]


class GuideView(ApiModel):
    lesson: str
    stage: int
    guide_type: str
    html: str


class ImageView(ApiModel):
    """An image as the front end may see it: never its passwords."""

    slug: str
    description: str
    flavor: str
    kind: str
    enable_forwarding: bool
    network_interfaces: list[str]
    ssh_user: str

    @classmethod
    def of(cls, image: Image) -> ImageView:
        return cls(
            slug=image.slug,
            description=image.description,
            flavor=image.flavor,
            kind=image.kind,
            enable_forwarding=image.enable_forwarding,
            network_interfaces=list(image.network_interfaces),
            ssh_user=image.ssh_user,
        )


class CollectionView(ApiModel):
    slug: str
    title: str
    image: str
    website: str
    contact_email: str
    brief_description: str
    long_description: str
    type: str
    tier: str
    lessons: list[str]

    @classmethod
    def of(cls, collection: Collection, lessons: list[str]) -> CollectionView:
        return cls(**collection.model_dump(by_alias=False), lessons=lessons)


class CurriculumView(ApiModel):
    name: str
    description: str
    website: str
    a_ver: str
    git_root: str
    lesson_count: int
    collection_count: int
    image_count: int

    @classmethod
    def of(cls, curriculum: Curriculum, lessons: int, collections: int, images: int) -> CurriculumView:
        return cls(
            **curriculum.model_dump(by_alias=False),
            lesson_count=lessons,
            collection_count=collections,
            image_count=images,
        )


class LessonRunnable(ApiModel):
    slug: str
    runnable: bool
    reasons: list[str] = Field(description="Why not, one sentence per endpoint (or the runtime's problem).")


class RuntimeView(ApiModel):
    """Whether live lessons can run here, and which lessons cannot, known before anyone launches one."""

    available: bool = Field(description="False when live lessons answer 503 (no cluster and no local VMs...).")
    problem: str | None
    lessons: list[LessonRunnable]


class Health(ApiModel):
    status: str
    lessons: int
