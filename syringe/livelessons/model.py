"""What a live lesson is while it lives: status, endpoints, times. Kept in memory, mirrored to the runtime."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from syringe.curriculum.models import Lesson
from syringe.runtime.base import EndpointObservation


class Status(StrEnum):
    INITIALIZED = "INITIALIZED"
    BOOTING = "BOOTING"
    CONFIGURATION = "CONFIGURATION"
    READY = "READY"
    ERROR = "ERROR"


IN_PROGRESS = {Status.INITIALIZED, Status.BOOTING, Status.CONFIGURATION}


@dataclass
class EndpointState:
    name: str
    ports: list[int]
    observation: EndpointObservation | None = None
    reachable: set[int] = field(default_factory=set)

    @property
    def running(self) -> bool:
        return self.observation is not None and self.observation.phase == "Running" and self.observation.ready

    @property
    def healthy(self) -> bool:
        return self.running and self.reachable >= set(self.ports)

    @property
    def phase(self) -> str:
        """pending, running or reachable: what `syringe up` shows."""
        if self.healthy:
            return "reachable"
        if self.running:
            return "running"
        if self.observation is not None and self.observation.reason:
            return f"pending ({self.observation.reason})"
        return "pending"


def endpoint_states(lesson: Lesson) -> dict[str, EndpointState]:
    """A fresh state for each of the lesson's endpoints: what a launch or a recovery starts from."""
    return {e.name: EndpointState(e.name, e.ports()) for e in lesson.endpoints}


@dataclass
class Verification:
    """The last run of a stage's learner checks."""

    stage: int
    job: str
    status: str = "running"  # running, done, error
    results: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None


@dataclass
class LiveLesson:
    id: str
    session: str
    lesson: str
    stage: int
    namespace: str
    created_at: datetime
    expires_at: datetime
    status: Status = Status.INITIALIZED
    error: str | None = None
    endpoints: dict[str, EndpointState] = field(default_factory=dict)
    deleting: bool = False
    changed: asyncio.Event = field(default_factory=asyncio.Event, repr=False)
    saving: asyncio.Task[None] | None = field(default=None, repr=False)
    updated_at: datetime | None = None
    version: int = 0  # bumped on every change: lets readers cache what they render
    generation: int = 0  # of the state saved on the namespace: orders writes between replicas
    jobs: dict[str, str] = field(default_factory=dict)  # configuration Job -> running, succeeded, failed
    job_messages: dict[str, str] = field(default_factory=dict)  # configuration Job -> its failure's output
    # Jobs that said they were done (their done line) whose pods have not been seen to end: a pod holds its
    # CPU on the node and its place in the lesson's quota until it has.
    ending: set[str] = field(default_factory=set)
    verification: Verification | None = None

    @property
    def healthy(self) -> int:
        return sum(1 for e in self.endpoints.values() if e.healthy)

    @property
    def total(self) -> int:
        return len(self.endpoints)

    def touch(self) -> None:
        self.changed.set()

    def settle_ready(self) -> None:
        """The one rule of a READY live lesson that this process did not drive (recovered, or another
        replica's): every port of a running endpoint was reached, or it would not be READY."""
        if self.status is Status.READY:
            for endpoint in self.endpoints.values():
                endpoint.reachable = set(endpoint.ports) if endpoint.running else set()
