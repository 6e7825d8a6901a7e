"""The runtime protocol: what the lifecycle needs from wherever live lessons run.

Like KNE's node interface, the protocol is small. Building objects stays in the plan; a runtime only
applies, watches, lists and deletes them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from syringe.plan import Plan


@dataclass(frozen=True)
class EndpointObservation:
    """What the runtime last saw of one endpoint's pod."""

    namespace: str
    endpoint: str
    phase: str  # Pending, Running, Succeeded, Failed, Unknown, Deleted
    ready: bool = False
    pod_ip: str | None = None
    service_ip: str | None = None
    # The most specific reason a person can act on: ImagePullBackOff, CrashLoopBackOff, Unschedulable...
    reason: str | None = None
    message: str | None = None
    fatal: bool = False  # the pod will not get better by waiting
    node_ports: Mapping[int, int] = field(default_factory=dict)  # presentation port -> exposed node port
    # Off-cluster runtimes: Syringe reaches pod_ip directly whatever its address mode, at these local ports
    # (served port -> local port; a port not listed is reached as itself).
    direct: bool = False
    local_ports: Mapping[int, int] = field(default_factory=dict)
    # The runtime gave the endpoint its hostname and interface addresses as it booted.
    base_configured: bool = False


@dataclass(frozen=True)
class JobObservation:
    namespace: str
    name: str
    succeeded: bool
    failed: bool
    message: str | None = None


@dataclass(frozen=True)
class JobPodObservation:
    """A configuration Job's pod: how it ended, and the tail of its output when it failed."""

    namespace: str
    job: str
    phase: str
    message: str | None = None


@dataclass(frozen=True)
class NamespaceGone:
    namespace: str


@dataclass(frozen=True)
class NamespaceObserved:
    """A live lesson's namespace as it now is: other replicas' launches, and state changes they saved."""

    record: LiveLessonRecord


@dataclass(frozen=True)
class SessionRecord:
    """A learner session as stored in the cluster, so that every replica can authenticate it."""

    id: str
    token_hash: str
    created_at: datetime
    expires_at: datetime
    persistent: bool = False


@dataclass(frozen=True)
class SessionGone:
    id: str


RuntimeEvent = (
    EndpointObservation
    | JobObservation
    | JobPodObservation
    | NamespaceGone
    | NamespaceObserved
    | SessionRecord
    | SessionGone
)


@dataclass(frozen=True)
class LiveLessonRecord:
    """A live lesson as the runtime stores it: enough to rebuild the service's state after a restart."""

    namespace: str
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    terminating: bool = False
    endpoints: list[EndpointObservation] = field(default_factory=list)


class Runtime(Protocol):
    """Where live lessons run."""

    async def check(self) -> list[str]:
        """Start-up checks. Returns problems a person can act on; empty when all is well."""
        ...

    async def start(self) -> None:
        """Begin observing; returns once what already exists has been seen."""
        ...

    async def apply(self, plan: Plan) -> None:
        """Create every object of the plan. Idempotent: objects that already exist are left as they are."""
        ...

    async def create(self, objects: list[dict[str, Any]]) -> None:
        """Create objects in an existing live lesson (configuration Jobs), idempotently, all at once."""
        ...

    async def delete_jobs(self, namespace: str, label_selector: str) -> None:
        """Stop and remove a live lesson's Jobs that match ``label_selector``."""
        ...

    async def annotate(self, namespace: str, annotations: Mapping[str, str | None]) -> None:
        """Persist live-lesson state on its namespace (None removes an annotation)."""
        ...

    async def delete(self, namespace: str, timeout: float) -> bool:
        """Delete a live lesson and wait until it is gone. False when the timeout passed first."""
        ...

    async def list_live_lessons(self) -> list[LiveLessonRecord]:
        """Every live lesson of this instance, with its endpoints as last observed."""
        ...

    def events(self) -> AsyncIterator[RuntimeEvent]:
        """Observations of endpoints, jobs and namespaces, as they change. Survives outages."""
        ...

    async def close(self) -> None: ...


class SharedState(Protocol):
    """Optional: what replicas share beyond live lessons. A runtime with one process needs none of it."""

    async def save_session(self, session: SessionRecord) -> None: ...

    async def find_session(self, token_hash: str) -> SessionRecord | None: ...

    async def delete_session(self, session_id: str, token_hash: str) -> None: ...

    async def try_lead(self, identity: str, duration: float) -> bool:
        """One round of leader election: True while ``identity`` holds the lease."""
        ...
