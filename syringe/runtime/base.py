"""The runtime protocol: what the lifecycle needs from wherever live lessons run.

Like KNE's node interface, the protocol is small. Building objects stays in the plan; a runtime only
applies, watches, lists and deletes them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from syringe.curriculum.models import Lesson
from syringe.learners import LearnerSession, SessionGone
from syringe.plan import Plan


@dataclass(frozen=True)
class Reach:
    """Where Syringe itself connects to one endpoint, as the runtime that runs it describes it: a Service
    name, a ClusterIP or a pod IP in a cluster; 127.0.0.1 and QEMU's forwarded ports on this machine."""

    host: str
    ports: Mapping[int, int] = field(default_factory=dict)  # served port -> port to dial; unlisted: itself

    def port(self, served: int) -> int:
        return self.ports.get(served, served)


@dataclass(frozen=True)
class Exposure:
    """Where a learner's own client (ssh, a NETCONF client, a browser) reaches an endpoint from outside."""

    host: str
    ports: Mapping[int, int] = field(default_factory=dict)  # served port -> external port
    # True: a port not listed is not exposed. False: the plan exposes some presentations whose external port
    # the runtime has not seen yet.
    complete: bool = True


@dataclass(frozen=True)
class EndpointObservation:
    """What the runtime last saw of one endpoint, and how it can be reached."""

    namespace: str
    endpoint: str
    phase: str  # Pending, Running, Succeeded, Failed, Unknown, Deleted
    ready: bool = False
    # The most specific reason a person can act on: ImagePullBackOff, CrashLoopBackOff, Unschedulable...
    reason: str | None = None
    message: str | None = None
    fatal: bool = False  # the pod will not get better by waiting
    reach: Reach | None = None  # None: not reachable (yet)
    exposure: Exposure | None = None  # None: nothing of it is exposed to learners' own clients
    # The runtime gave the endpoint its hostname and interface addresses as it booted, so nothing needs to
    # log in to set them.
    identity_assigned: bool = False


@dataclass(frozen=True)
class JobObservation:
    namespace: str
    name: str
    succeeded: bool
    failed: bool


@dataclass(frozen=True)
class JobPodObservation:
    """A configuration Job's pod: its phase, and the tail of its output when it failed. ``said_done``: its
    configurator wrote its done line (plan.jobenv.done_line), which counts as the Job succeeding before the
    pod's own status says so."""

    namespace: str
    job: str
    phase: str
    message: str | None = None
    said_done: bool = False


@dataclass(frozen=True)
class NamespaceGone:
    namespace: str


@dataclass(frozen=True)
class NamespaceObserved:
    """A live lesson's namespace as it now is: other replicas' launches, and state changes they saved."""

    record: LiveLessonRecord


RuntimeEvent = (
    EndpointObservation
    | JobObservation
    | JobPodObservation
    | NamespaceGone
    | NamespaceObserved
    | LearnerSession
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


# ---------------------------------------------------------------------------------------------------------
# Optional capabilities, in the manner of KNE's node interfaces: the core asks `isinstance(runtime, X)` of
# these small protocols, never which runtime it holds.


@runtime_checkable
class SharedState(Protocol):
    """Optional: replicas share one store (the cluster), so they elect one of them to collect garbage.
    Learner sessions shared the same way are ``syringe.learners.SessionStore``."""

    async def try_lead(self, identity: str, duration: float) -> bool:
        """One round of leader election: True while ``identity`` holds the lease."""
        ...


@runtime_checkable
class CountsCalls(Protocol):
    """Optional: the runtime counts its calls to a remote API, by verb (for metrics and the admin stats)."""

    def call_counts(self) -> dict[str, dict[str, int]]:
        """Call counts by purpose ("api", "lease"...), each by verb."""
        ...


@runtime_checkable
class ReportsConnection(Protocol):
    """Optional: the runtime depends on a remote API and knows whether it can reach it now."""

    @property
    def connected(self) -> bool: ...


@runtime_checkable
class ProcessBound(Protocol):
    """Optional: live lessons that exist only as long as the process that launched them (local VMs): they
    cannot be listed or deleted from another process."""

    def process_bound(self) -> str:
        """Why, in a sentence for a person."""
        ...


@runtime_checkable
class JudgesLessons(Protocol):
    """Optional: the runtime can tell, before a launch, that some of a lesson's endpoints cannot run on it (the
    local runtime: an image with no ``local:`` section), so a front end says so before the learner asks."""

    def cannot_run(self, lesson: Lesson) -> list[str]:
        """Why the lesson cannot run here, one sentence per endpoint; empty when nothing is known to stop it."""
        ...
