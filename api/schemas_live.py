"""Request and response bodies of sessions, live lessons and the admin API."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from api.schemas import ApiModel


class SessionCreated(ApiModel):
    id: str
    token: str = Field(description="Bearer token for every live-lesson call of this session. Shown once.")
    expires_at: datetime


class LaunchRequest(ApiModel):
    lesson: str = Field(min_length=1, max_length=63, description="Lesson slug.")
    stage: int = Field(default=0, ge=0, le=1000)


class StageRequest(ApiModel):
    stage: int = Field(ge=0, le=1000)


class PersistentRequest(ApiModel):
    persistent: bool


class LaunchAccepted(ApiModel):
    id: str
    status: str


class Access(ApiModel):
    """How to reach a presentation. The endpoint-access issue fills these in."""

    terminal_url: str | None = None
    proxy_url: str | None = None
    netconf: dict[str, str | int] | None = None


class PresentationStatus(ApiModel):
    name: str
    type: str
    port: int
    reachable: bool
    access: Access


class EndpointStatus(ApiModel):
    name: str
    image: str
    phase: str
    healthy: bool
    reason: str | None
    presentations: list[PresentationStatus]
    additional_ports: list[int]


class GuideRef(ApiModel):
    type: str
    url: str = Field(description="The current stage's guide, rendered to HTML.")


class LiveLessonView(ApiModel):
    id: str
    lesson: str
    session: str
    status: str
    error: str | None
    stage: int
    stage_count: int
    stage_description: str
    guide: GuideRef
    healthy: int
    total: int
    created_at: datetime
    updated_at: datetime | None
    expires_at: datetime
    endpoints: list[EndpointStatus]


class Keepalive(ApiModel):
    id: str
    expires_at: datetime


class AdminSession(ApiModel):
    id: str
    created_at: datetime
    expires_at: datetime
    persistent: bool
    livelessons: list[str]


class Stats(ApiModel):
    live_lessons: int
    by_status: dict[str, int]
    sessions: int
    max_live_lessons: int
    max_per_session: int
    kubernetes_calls: dict[str, int]
