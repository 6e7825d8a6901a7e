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


class NetconfAccess(ApiModel):
    rpc_url: str = Field(description="POST an RPC here (XML) to run it in a NETCONF session.")
    port: int
    username: str
    password: str | None = Field(default=None, description="Only when the expose_credentials setting is on.")


class External(ApiModel):
    """Where a learner's own ssh or NETCONF client reaches an exposed presentation."""

    host: str
    port: int | None = Field(description="None until the Service has its port.")


class Access(ApiModel):
    """How to reach a presentation."""

    terminal_url: str | None = Field(default=None, description="WebSocket: an xterm over SSH (ssh presentations).")
    proxy_url: str | None = Field(default=None, description="The HTTP proxy's prefix (http presentations).")
    netconf: NetconfAccess | None = None
    external: External | None = None
    username: str | None = None
    password: str | None = None


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


class CheckResult(ApiModel):
    name: str
    description: str
    passed: bool
    message: str


class VerificationView(ApiModel):
    stage: int
    status: str = Field(description="running, done, or error (the checks could not run)")
    results: list[CheckResult]
    error: str | None


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
    verification: VerificationView | None = Field(default=None, description="The last run of the learner checks.")


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
    leader_election_calls: dict[str, int]
    replica: str
    leader: bool
    gc_runs: int
