"""The live-lesson lifecycle: launch, drive to READY, keep alive, expire, delete, and recover.

Status is served from memory. Watches keep it current, so reading a live lesson never costs an API-server
call; only changes (launch, a status transition, keepalive, delete) write to the cluster.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import socket
from collections.abc import AsyncIterator, Callable, Hashable
from datetime import UTC, datetime, timedelta

from syringe.access.probes import ProbeFailed, Target, sweep
from syringe.configure.base import base_configure
from syringe.configure.target import ConfigureError
from syringe.curriculum import CurriculumTree
from syringe.curriculum.files import read_lesson_files
from syringe.curriculum.models import Endpoint
from syringe.errors import Busy, LimitReached, NotFound, RuntimeCheckFailed, RuntimeUnavailable, UnknownLesson
from syringe.observability import metrics
from syringe.plan import LiveLessonIdentity, Plan, PlanSettings, build_plan, labels, namespace_name
from syringe.plan.jobs import CONFIGURATION, PURPOSE, configuration_jobs, verification_job
from syringe.runtime.base import (
    EndpointObservation,
    JobObservation,
    JobPodObservation,
    LiveLessonRecord,
    NamespaceGone,
    NamespaceObserved,
    Runtime,
    RuntimeEvent,
    SessionGone,
    SessionRecord,
    SharedState,
)
from syringe.sessions import state
from syringe.sessions.learners import Session, Sessions, token_hash
from syringe.sessions.model import IN_PROGRESS, EndpointState, LiveLesson, Status, Verification
from syringe.settings import LifecycleSettings

log = logging.getLogger(__name__)


class LaunchFailed(Exception):
    """A launch step failed; the message names the endpoint, the step and what the runtime said. ``kind``
    is a short category for metrics (ImagePullBackOff, Unschedulable, probe, timeout, ...)."""

    def __init__(self, message: str, kind: str) -> None:
        super().__init__(message)
        self.kind = kind


def _context(ll: LiveLesson) -> dict[str, str]:
    """Fields every log record about a live lesson carries."""
    return {"livelesson": ll.id, "session": ll.session, "lesson": ll.lesson}


UNKNOWN_TOKEN_SECONDS = 10.0


def _record(session: Session) -> SessionRecord:
    return SessionRecord(session.id, session.token_hash, session.created_at, session.expires_at, session.persistent)


def _now() -> datetime:
    return datetime.now(UTC)


class LiveLessonManager:
    def __init__(
        self,
        tree: CurriculumTree,
        runtime: Runtime,
        plan_settings: PlanSettings,
        settings: LifecycleSettings,
        clock: Callable[[], datetime] = _now,
        sessions: Sessions | None = None,
    ) -> None:
        self.tree = tree
        self.runtime = runtime
        self.plan_settings = plan_settings
        self.settings = settings
        self.clock = clock
        self.lessons: dict[str, LiveLesson] = {}
        self._by_namespace: dict[str, LiveLesson] = {}
        self.persistent_sessions: set[str] = set()
        self.sessions = sessions or Sessions(settings.session_ttl_seconds)
        self._drives: dict[str, asyncio.Task[None]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._listeners: set[asyncio.Queue[str]] = set()
        self._cleanups: set[asyncio.Task[None]] = set()
        self._files: dict[str, dict[str, bytes]] = {}
        self.identity = f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
        self.is_leader = False
        self.gc_runs = 0
        self._unknown_tokens: dict[str, float] = {}  # token hash -> loop time until which it is known unknown

    # ------------------------------------------------------------------ start and stop
    async def start(self, check: bool = True) -> None:
        if check:
            problems = await self.runtime.check()
            if problems:
                raise RuntimeCheckFailed("; ".join(problems))
        await self.runtime.start()
        events = self.runtime.events()
        self._tasks.append(asyncio.create_task(self._consume(events), name="lifecycle-events"))
        for record in await self.runtime.list_live_lessons():
            self._recover(record)
        self._tasks.append(asyncio.create_task(self._lead_forever(), name="lifecycle-leader"))
        self._tasks.append(asyncio.create_task(self._collect_garbage_forever(), name="lifecycle-gc"))

    async def stop(self) -> None:
        for task in [*self._tasks, *self._drives.values(), *self._cleanups]:
            task.cancel()
        for task in [*self._tasks, *self._drives.values(), *self._cleanups]:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        self._drives.clear()

    # ------------------------------------------------------------------ queries (memory only)
    def get(self, livelesson_id: str, session: str | None = None) -> LiveLesson:
        found = self.lessons.get(livelesson_id)
        if found is None or (session is not None and found.session != session):
            raise NotFound(f"no live lesson '{livelesson_id}'")
        return found

    def of_session(self, session: str) -> list[LiveLesson]:
        return [ll for ll in self.lessons.values() if ll.session == session]

    def listen(self) -> asyncio.Queue[str]:
        """A queue that receives the id of every live lesson whose state changes."""
        queue: asyncio.Queue[str] = asyncio.Queue()
        self._listeners.add(queue)
        return queue

    def unlisten(self, queue: asyncio.Queue[str]) -> None:
        self._listeners.discard(queue)

    async def cleanups_finished(self, timeout: float) -> bool:
        """Wait until the namespaces of failed launches are removed; False if some remain after ``timeout``."""
        if not self._cleanups:
            return True
        _, pending = await asyncio.wait(set(self._cleanups), timeout=timeout)
        return not pending

    def _notify(self, ll: LiveLesson) -> None:
        ll.updated_at = self.clock()
        ll.version += 1
        ll.touch()
        for queue in self._listeners:
            queue.put_nowait(ll.id)

    # ------------------------------------------------------------------ launch
    async def launch(self, session: str, lesson_slug: str, stage: int = 0) -> LiveLesson:
        source = self.tree.lessons.get(lesson_slug)
        if source is None:
            raise UnknownLesson(f"no lesson '{lesson_slug}'")
        if not 0 <= stage < len(source.lesson.stages):
            raise UnknownLesson(f"lesson '{lesson_slug}' has stages 0-{len(source.lesson.stages) - 1}, not {stage}")
        for ll in self.of_session(session):
            if ll.lesson == lesson_slug and not ll.deleting:
                if ll.stage != stage:
                    await self.set_stage(ll.id, stage, session)
                return ll
        held = [ll for ll in self.of_session(session) if not ll.deleting]
        if len(held) >= self.settings.max_per_session:
            raise LimitReached(
                f"session {session} already has {len(held)} live lessons (the limit is "
                f"{self.settings.max_per_session}); delete one first"
            )
        if len(self.lessons) >= self.settings.max_live_lessons:
            raise LimitReached(
                f"all {self.settings.max_live_lessons} live-lesson slots are in use; try again shortly",
                retry_after=30,
            )
        livelesson_id = secrets.token_hex(5)
        now = self.clock()
        ll = LiveLesson(
            id=livelesson_id,
            session=session,
            lesson=lesson_slug,
            stage=stage,
            namespace=namespace_name(self.plan_settings, livelesson_id),
            created_at=now,
            expires_at=now + timedelta(seconds=self.settings.ttl_seconds),
            endpoints={e.name: EndpointState(e.name, e.ports()) for e in source.lesson.endpoints},
        )
        self._track(ll)
        self._drive_in_background(ll)
        return ll

    def _track(self, ll: LiveLesson) -> None:
        self.lessons[ll.id] = ll
        self._by_namespace[ll.namespace] = ll

    def _untrack(self, ll: LiveLesson) -> None:
        self.lessons.pop(ll.id, None)
        self._by_namespace.pop(ll.namespace, None)
        self._notify(ll)

    def _session_annotations(self, session_id: str) -> dict[str, str]:
        """What a restarted Syringe needs to let the learner back in: the token's hash, never the token."""
        annotations = {}
        if session_id in self.persistent_sessions:
            annotations[state.PERSISTENT] = "true"
        session = self.sessions.find(session_id)
        if session is not None:
            annotations[state.SESSION_TOKEN] = session.token_hash
            annotations[state.SESSION_EXPIRES_AT] = session.expires_at.isoformat()
        return annotations

    async def _lesson_files(self, slug: str) -> dict[str, bytes]:
        """A lesson's files, read once: the curriculum does not change while the service runs."""
        files = self._files.get(slug)
        if files is None:
            files = await asyncio.to_thread(read_lesson_files, self.tree.lessons[slug])
            self._files[slug] = files
        return files

    def _drive_in_background(self, ll: LiveLesson) -> None:
        task = asyncio.create_task(self._drive(ll), name=f"drive-{ll.id}")
        self._drives[ll.id] = task
        task.add_done_callback(lambda _: self._drives.pop(ll.id, None))

    async def _drive(self, ll: LiveLesson) -> None:
        """Apply the plan (again, after a restart: applying is idempotent), then on to READY."""
        source = self.tree.lessons[ll.lesson]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.launch_timeout
        try:
            plan = await self._plan_for(ll)
            plan.waves[0][0]["metadata"]["annotations"].update(self._session_annotations(ll.session))
            try:
                await self.runtime.apply(plan)
            except RuntimeUnavailable as exc:
                await self._fail(ll, f"creating the lesson's objects: {exc}", "apply", cleanup=True)
                return
            self._pass_through(ll, Status.BOOTING)
            await self._wait_for_pods(ll, deadline)
            await self._probe(ll, deadline)
            self._pass_through(ll, Status.CONFIGURATION)
            await self._configure(ll, deadline, plan)
            if source.lesson.ready_delay:
                await asyncio.sleep(source.lesson.ready_delay)
            await self._set_status(ll, Status.READY)
            seconds = (self.clock() - ll.created_at).total_seconds()
            metrics.LAUNCH_SECONDS.labels(ll.lesson).observe(seconds)
            log.info("live lesson %s READY in %.1fs", ll.id, seconds, extra=_context(ll))
        except LaunchFailed as exc:
            await self._fail(ll, str(exc), exc.kind)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("live lesson %s: launch failed", ll.id, extra=_context(ll))
            await self._fail(ll, f"launch failed unexpectedly: {exc}", "internal", cleanup=True)

    async def _wait_for_pods(self, ll: LiveLesson, deadline: float) -> None:
        loop = asyncio.get_running_loop()
        unschedulable_since: dict[str, float] = {}
        while True:
            ll.changed.clear()
            waiting = []
            for endpoint in ll.endpoints.values():
                seen = endpoint.observation
                if seen is not None and seen.fatal:
                    raise LaunchFailed(
                        f"endpoint {endpoint.name}: starting pod: {seen.reason}: {seen.message or ''}".rstrip(": "),
                        seen.reason or "Failed",
                    )
                if seen is not None and seen.reason == "Unschedulable":
                    since = unschedulable_since.setdefault(endpoint.name, loop.time())
                    if loop.time() - since > self.settings.unschedulable_grace:
                        raise LaunchFailed(
                            f"endpoint {endpoint.name}: scheduling pod: Unschedulable: {seen.message}", "Unschedulable"
                        )
                if not endpoint.running or self._address(ll, endpoint) is None:
                    waiting.append(endpoint.name)
            if not waiting:
                return
            remaining = deadline - loop.time()
            if remaining <= 0:
                names = ", ".join(waiting)
                raise LaunchFailed(
                    f"endpoints {names}: pods not running after {self.settings.launch_timeout:.0f}s", "timeout"
                )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    ll.changed.wait(), min(remaining, self.settings.unschedulable_grace or remaining)
                )

    def _address(self, ll: LiveLesson, endpoint: EndpointState) -> str | None:
        mode = self.settings.address_mode
        seen = endpoint.observation
        if seen is not None and seen.direct:
            return seen.pod_ip
        if mode == "pod-ip":
            return seen.pod_ip if seen else None
        if mode == "cluster-ip":
            return seen.service_ip if seen else None
        return f"{endpoint.name}.{ll.namespace}.svc.{self.settings.cluster_domain}"

    def address_of(self, livelesson_id: str, endpoint: str) -> str | None:
        ll = self.get(livelesson_id)
        return self._address(ll, ll.endpoints[endpoint])

    def probe_targets(self, ll: LiveLesson, endpoint_name: str) -> dict[int, tuple[str, Target]]:
        """Port -> (presentation name, probe target) for one endpoint: presentations by protocol, the
        additional ports by TCP."""
        source = self.tree.lessons[ll.lesson]
        endpoint = source.lesson.endpoint(endpoint_name)
        host = self._address(ll, ll.endpoints[endpoint_name])
        assert host is not None
        seen = ll.endpoints[endpoint_name].observation
        local = seen.local_ports if seen is not None else {}
        image = self.tree.images.get(endpoint.image)
        user, password = (image.ssh_user, image.ssh_password) if image else ("", "")
        targets: dict[int, tuple[str, Target]] = {}
        for presentation in endpoint.presentations:
            targets.setdefault(
                presentation.port,
                (
                    presentation.name,
                    Target(
                        host,
                        local.get(presentation.port, presentation.port),
                        presentation.type,
                        user,
                        password,
                        self.settings.http_probe_path,
                    ),
                ),
            )
        for port in endpoint.additional_ports:
            targets.setdefault(port, (f"port {port}", Target(host, local.get(port, port), "tcp")))
        return targets

    def target_for(self, livelesson_id: str, session: str | None, endpoint: str, presentation: str) -> Target:
        """Where and with which credentials to reach one presentation of a live lesson's endpoint."""
        ll = self.get(livelesson_id, session)
        if endpoint not in ll.endpoints:
            raise NotFound(f"live lesson {ll.id} has no endpoint '{endpoint}'")
        if self._address(ll, ll.endpoints[endpoint]) is None or not ll.endpoints[endpoint].running:
            raise Busy(f"endpoint {endpoint} of live lesson {ll.id} is not running yet")
        for name, target in self.probe_targets(ll, endpoint).values():
            if name == presentation:
                return target
        raise NotFound(f"endpoint {endpoint} has no presentation '{presentation}'")

    async def _probe(self, ll: LiveLesson, deadline: float) -> None:
        """Probe every presentation of every endpoint at once, each with backoff, until the probe timeout."""
        deadline = min(deadline, asyncio.get_running_loop().time() + self.settings.probe_timeout)
        targets: dict[Hashable, Target] = {}
        ports: dict[Hashable, tuple[EndpointState, int]] = {}
        for endpoint in ll.endpoints.values():
            for port, (name, target) in self.probe_targets(ll, endpoint.name).items():
                key = f"{endpoint.name}/{name}"
                targets[key], ports[key] = target, (endpoint, port)

        def reachable(key: Hashable) -> None:
            endpoint, port = ports[key]
            endpoint.reachable.add(port)
            self._notify(ll)

        try:
            await sweep(targets, deadline, self.settings.probe_attempt_timeout, reachable)
        except ProbeFailed as exc:
            raise LaunchFailed(str(exc), "probe") from exc

    async def _set_status(self, ll: LiveLesson, status: Status, error: str | None = None) -> None:
        """Move to a settled status (READY, ERROR): saved to the namespace before anyone sees it, so whoever
        reacts finds the cluster agreeing."""
        await self._save_status(ll, status, error)
        ll.status, ll.error = status, error
        self._notify(ll)

    def _pass_through(self, ll: LiveLesson, status: Status) -> None:
        """Move to a transient status: visible at once, saved in the background (in order), so the launch
        does not wait on a write that only matters to a process recovering mid-launch."""
        ll.status, ll.error = status, None
        self._notify(ll)
        previous = ll.saving

        async def save() -> None:
            if previous is not None:
                with contextlib.suppress(Exception):
                    await previous
            await self._save_status(ll, status, None, wait_for_previous=False)

        ll.saving = asyncio.create_task(save())

    async def _write_state(self, ll: LiveLesson, annotations: dict[str, str | None]) -> None:
        """Save live-lesson state on its namespace with the next generation, so that replicas (this one
        included) apply each change once and never an older one over a newer."""
        ll.generation += 1
        await self.runtime.annotate(ll.namespace, {**annotations, state.GENERATION: str(ll.generation)})

    async def _save_status(
        self, ll: LiveLesson, status: Status, error: str | None, wait_for_previous: bool = True
    ) -> None:
        if wait_for_previous and ll.saving is not None:
            with contextlib.suppress(Exception):
                await ll.saving
        if ll.deleting:
            return
        try:
            await self._write_state(ll, state.status_annotations(status, error))
        except RuntimeUnavailable as exc:
            log.warning("live lesson %s: could not save status %s: %s", ll.id, status, exc)

    async def _fail(self, ll: LiveLesson, reason: str, kind: str, cleanup: bool = False) -> None:
        log.warning("live lesson %s (%s): %s", ll.id, ll.lesson, reason, extra=_context(ll))
        metrics.ERRORS.labels(kind).inc()
        if cleanup:
            # Nothing half-made may stay behind: the namespace goes, the error stays visible in memory.
            ll.status, ll.error = Status.ERROR, reason
            self._notify(ll)
            self._remove_namespace_in_background(ll)
        else:
            await self._set_status(ll, Status.ERROR, reason)

    def _remove_namespace_in_background(self, ll: LiveLesson) -> None:
        async def remove() -> None:
            delay = 1.0
            while True:
                try:
                    if await self.runtime.delete(ll.namespace, self.settings.delete_timeout):
                        self._namespace_gone(ll)
                        return
                except Exception as exc:  # noqa: BLE001 - keep trying until the API server answers
                    log.warning("removing %s: %s", ll.namespace, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 15.0)

        task = asyncio.create_task(remove(), name=f"cleanup-{ll.id}")
        self._cleanups.add(task)
        task.add_done_callback(self._cleanups.discard)

    # ------------------------------------------------------------------ changes
    async def keepalive(self, livelesson_id: str, session: str | None = None) -> LiveLesson:
        ll = self.get(livelesson_id, session)
        ll.expires_at = self.clock() + timedelta(seconds=self.settings.ttl_seconds)
        self._notify(ll)
        await self._write_state(ll, {labels.EXPIRES_AT: ll.expires_at.isoformat()})
        return ll

    async def set_stage(self, livelesson_id: str, stage: int, session: str | None = None) -> LiveLesson:
        """Move a READY live lesson to another stage: CONFIGURATION, then READY again. No pod is recreated."""
        ll = self.get(livelesson_id, session)
        source = self.tree.lessons.get(ll.lesson)
        if source is None or not 0 <= stage < len(source.lesson.stages):
            count = len(source.lesson.stages) if source else 0
            raise UnknownLesson(f"lesson '{ll.lesson}' has stages 0-{count - 1}, not {stage}")
        if ll.status is not Status.READY:
            raise Busy(f"live lesson {ll.id} is {ll.status.value}; the stage can change once it is READY")
        if stage == ll.stage:
            return ll
        ll.stage = stage
        task = asyncio.create_task(self._configure_stage(ll), name=f"stage-{ll.id}")
        self._drives[ll.id] = task  # from here on this process drives it: replicas' news cannot undo this
        task.add_done_callback(lambda _: self._drives.pop(ll.id, None))
        self._pass_through(ll, Status.CONFIGURATION)
        await self._write_state(ll, {labels.STAGE: str(stage)})
        return ll

    async def _configure_stage(self, ll: LiveLesson) -> None:
        """Stop the previous stage's configuration, run this one's, honour readyDelay, and be READY."""
        try:
            loop = asyncio.get_running_loop()
            await self.runtime.delete_jobs(ll.namespace, f"{PURPOSE}={CONFIGURATION}")
            await self._configure(ll, loop.time() + self.settings.launch_timeout)
            delay = self.tree.lessons[ll.lesson].lesson.ready_delay
            if delay:
                await asyncio.sleep(delay)
            await self._set_status(ll, Status.READY)
        except LaunchFailed as exc:
            await self._fail(ll, str(exc), exc.kind)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the learner gets a reason, not a hang
            log.exception("live lesson %s: stage change failed", ll.id, extra=_context(ll))
            await self._fail(ll, f"changing to stage {ll.stage} failed: {exc}", "stage")

    async def _plan_for(self, ll: LiveLesson) -> Plan:
        """The live lesson's plan at its current stage (pure, so rebuilding it is cheap and always agrees)."""
        who = LiveLessonIdentity(id=ll.id, session=ll.session, created_at=ll.created_at, expires_at=ll.expires_at)
        files = await self._lesson_files(ll.lesson)
        return build_plan(
            self.tree.lessons[ll.lesson].lesson, self.tree.images, ll.stage, who, self.plan_settings, files
        )

    async def _base_configure(self, ll: LiveLesson, plan: Plan) -> None:
        """Hostname and interface addresses on every Linux (container-image) endpoint with an SSH presentation,
        all at once."""
        lesson = self.tree.lessons[ll.lesson].lesson

        async def one(endpoint: Endpoint) -> None:
            image = self.tree.images.get(endpoint.image)
            ssh = next((p for p in endpoint.presentations if p.type == "ssh"), None)
            host = self._address(ll, ll.endpoints[endpoint.name])
            seen = ll.endpoints[endpoint.name].observation
            if image is None or image.kind != "container" or ssh is None or host is None:
                return
            if seen is not None and seen.base_configured:
                return
            interfaces = [(i["name"], i["address"]) for i in plan.topology["endpoints"][endpoint.name]["interfaces"]]
            try:
                await base_configure(
                    host,
                    seen.local_ports.get(ssh.port, ssh.port) if seen is not None else ssh.port,
                    image.config_user or image.ssh_user,
                    image.config_password or image.ssh_password,
                    endpoint.name,
                    interfaces,
                    self.settings.probe_attempt_timeout * 6,
                )
            except ConfigureError as exc:
                raise LaunchFailed(f"endpoint {endpoint.name}: base configuration: {exc}", "configuration") from exc

        await asyncio.gather(*(one(endpoint) for endpoint in lesson.endpoints))

    async def _configure(self, ll: LiveLesson, deadline: float, plan: Plan | None = None) -> None:
        """Base configuration, then the current stage's configuration Jobs, waiting for every one to succeed."""
        source = self.tree.lessons[ll.lesson]
        plan = plan or await self._plan_for(ll)
        await self._base_configure(ll, plan)
        jobs = configuration_jobs(source.lesson, plan, ll.stage, secrets.token_hex(3), self.plan_settings)
        if not jobs:
            return
        names = {job["metadata"]["name"]: job["metadata"]["labels"][labels.ENDPOINT] for job in jobs}
        for name in names:
            ll.jobs[name] = "running"
        try:
            await self.runtime.create(jobs)
        except RuntimeUnavailable as exc:
            raise LaunchFailed(f"starting stage {ll.stage}'s configuration: {exc}", "configuration") from exc
        loop = asyncio.get_running_loop()
        while True:
            ll.changed.clear()
            for name, endpoint in names.items():
                if ll.jobs.get(name) == "failed":
                    await self._await_output(ll, name)
                    tail = ll.job_messages.get(name) or "no output"
                    raise LaunchFailed(f"endpoint {endpoint}: configuring stage {ll.stage}: {tail}", "configuration")
            if all(ll.jobs.get(name) == "succeeded" for name in names):
                return
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise LaunchFailed(f"stage {ll.stage}'s configuration did not finish in time", "timeout")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(ll.changed.wait(), remaining)

    # ------------------------------------------------------------------ learner checks
    async def verify(self, livelesson_id: str, session: str | None = None) -> LiveLesson:
        """Run the current stage's learner checks in a Job; results arrive in ``ll.verification``.
        A failed check is a result for the learner: the live lesson stays READY."""
        ll = self.get(livelesson_id, session)
        if ll.status is not Status.READY:
            raise Busy(f"live lesson {ll.id} is {ll.status.value}; checks run once it is READY")
        if ll.verification is not None and ll.verification.status == "running":
            return ll
        lesson = self.tree.lessons[ll.lesson].lesson
        if not lesson.stages[ll.stage].verify:
            ll.verification = Verification(stage=ll.stage, job="", status="done")
            self._notify(ll)
            return ll
        plan = await self._plan_for(ll)
        job = verification_job(lesson, plan, ll.stage, secrets.token_hex(3), self.plan_settings)
        ll.verification = Verification(stage=ll.stage, job=job["metadata"]["name"])
        ll.jobs[ll.verification.job] = "running"
        self._notify(ll)
        await self.runtime.create([job])
        return ll

    def _verification_news(self, ll: LiveLesson, job: str) -> None:
        """A verification Job finished: its pod's termination message holds the results as JSON."""
        verification = ll.verification
        if verification is None or verification.job != job or verification.status != "running":
            return
        state = ll.jobs.get(job)
        message = ll.job_messages.get(job)
        if message:
            try:
                report = json.loads(message)
                verification.results = list(report["results"])
                verification.status = "done"
            except (ValueError, KeyError, TypeError):
                verification.status, verification.error = "error", message[-500:]
        elif state == "failed":
            verification.status, verification.error = "error", "the checks could not run"
        else:
            return
        self._notify(ll)

    # ------------------------------------------------------------------ sessions
    @property
    def _shared(self) -> SharedState | None:
        return self.runtime if hasattr(self.runtime, "save_session") else None  # type: ignore[return-value]

    async def create_session(self) -> tuple[Session, str]:
        """A new learner session, stored where every replica finds it. Returns it and its token."""
        session, token = self.sessions.create(self.clock())
        if self._shared is not None:
            await self._shared.save_session(_record(session))
        return session, token

    async def authenticate(self, token: str) -> Session | None:
        """The token's session: from memory, or, for a session another replica made a moment ago and whose
        news has not arrived yet, from the cluster (the only time authentication costs an API call)."""
        now = self.clock()
        found = self.sessions.authenticate(token, now)
        if found is not None or self._shared is None:
            return found
        # A wrong token must not cost the API server a call per request: misses are remembered briefly
        # (a real new session arrives by watch well within that time).
        digest = token_hash(token)
        loop_time = asyncio.get_running_loop().time()
        if self._unknown_tokens.get(digest, 0.0) > loop_time:
            return None
        record = await self._shared.find_session(digest)
        if record is None:
            if len(self._unknown_tokens) >= 10_000:
                self._unknown_tokens.clear()
            self._unknown_tokens[digest] = loop_time + UNKNOWN_TOKEN_SECONDS
            return None
        self._on_session(record)
        return self.sessions.authenticate(token, now)

    async def set_persistent(self, session: str, persistent: bool) -> None:
        known = self.sessions.find(session)
        if known is not None:
            known.persistent = persistent
            if self._shared is not None:
                await self._shared.save_session(_record(known))
        if persistent:
            self.persistent_sessions.add(session)
        else:
            self.persistent_sessions.discard(session)
        value = "true" if persistent else None
        await asyncio.gather(*(self._write_state(ll, {state.PERSISTENT: value}) for ll in self.of_session(session)))

    async def delete(self, livelesson_id: str, session: str | None = None, wait: bool = True) -> bool:
        """Delete a live lesson. Returns whether its namespace is already gone; otherwise it goes in the background."""
        ll = self.get(livelesson_id, session)
        ll.deleting = True
        drive = self._drives.get(ll.id)
        if drive is not None:
            drive.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await drive
        self._notify(ll)
        if ll.namespace not in self._by_namespace:  # an ERROR whose namespace was already removed
            self._untrack(ll)
            return True
        if wait:
            try:
                if await self.runtime.delete(ll.namespace, self.settings.delete_timeout):
                    self._untrack(ll)
                    return True
            except RuntimeUnavailable as exc:
                log.warning("deleting %s: %s; retrying in the background", ll.namespace, exc)
        self._remove_namespace_in_background(ll)
        return False

    # ------------------------------------------------------------------ events
    async def _consume(self, events: AsyncIterator[RuntimeEvent]) -> None:
        async for event in events:
            self._on_event(event)

    def _namespace_gone(self, ll: LiveLesson) -> None:
        if ll.deleting or ll.status is not Status.ERROR:
            self._untrack(ll)
        else:
            # An ERROR whose namespace was cleaned up stays visible to the learner until deleted or expired.
            self._by_namespace.pop(ll.namespace, None)

    def _mirror(self, record: LiveLessonRecord) -> None:
        """Another replica's live lesson, or a state change saved by any replica: follow it. Each saved change
        carries a generation, so a change is applied once and older news never undoes newer; while this
        process drives a lesson, its status and stage stay as this process has them."""
        ll = self._by_namespace.get(record.namespace)
        if ll is None:
            if record.labels.get(labels.LIVELESSON) not in self.lessons:
                self._recover(record, drive=False)
            return
        annotations = record.annotations
        generation = state.parse_generation(annotations)
        if generation <= ll.generation or ll.deleting:
            return  # our own write coming back, or older news
        ll.generation = generation
        ll.expires_at = state.parse_time(annotations.get(labels.EXPIRES_AT), ll.expires_at)
        if annotations.get(state.PERSISTENT) == "true":
            self.persistent_sessions.add(ll.session)
        if ll.id not in self._drives:  # while this process drives it, its memory is ahead of the cluster
            ll.stage = state.parse_stage(annotations)
            ll.status = state.parse_status(annotations.get(labels.STATUS))
            ll.error = annotations.get(state.ERROR)
            if ll.status is Status.READY:
                for endpoint in ll.endpoints.values():
                    endpoint.reachable = set(endpoint.ports) if endpoint.running else set()
        self._notify(ll)

    def _on_session(self, record: SessionRecord) -> None:
        known = self.sessions.find(record.id)
        if known is None:
            self.sessions.add(
                Session(record.id, record.token_hash, record.created_at, record.expires_at, record.persistent)
            )
        else:
            known.expires_at, known.persistent = record.expires_at, record.persistent
        if record.persistent:
            self.persistent_sessions.add(record.id)
        else:
            self.persistent_sessions.discard(record.id)

    @staticmethod
    async def _await_output(ll: LiveLesson, job: str, timeout: float = 2.0) -> None:
        """A failed Job's pod, with its output, may be reported a moment after the Job itself."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while ll.job_messages.get(job) in (None, "") and loop.time() < deadline:
            ll.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(ll.changed.wait(), deadline - loop.time())

    def _on_job(self, event: JobObservation | JobPodObservation) -> None:
        ll = self._by_namespace.get(event.namespace)
        if ll is None:
            return
        if isinstance(event, JobPodObservation):
            if event.message:
                ll.job_messages[event.job] = event.message[-4000:]
                self._verification_news(ll, event.job)
                self._notify(ll)
            return
        if event.name not in ll.jobs:
            return
        if event.failed:
            ll.jobs[event.name] = "failed"
        elif event.succeeded:
            ll.jobs[event.name] = "succeeded"
        self._verification_news(ll, event.name)
        self._notify(ll)

    def _on_event(self, event: RuntimeEvent) -> None:
        if isinstance(event, NamespaceObserved):
            self._mirror(event.record)
            return
        if isinstance(event, SessionRecord):
            self._on_session(event)
            return
        if isinstance(event, SessionGone):
            known = self.sessions.find(event.id)
            if known is not None and not self.of_session(event.id):
                self.sessions.remove(known)
            return
        if isinstance(event, JobObservation | JobPodObservation):
            self._on_job(event)
            return
        if isinstance(event, NamespaceGone):
            ll = self._by_namespace.get(event.namespace)
            if ll is not None:
                self._namespace_gone(ll)
            return
        if not isinstance(event, EndpointObservation):
            return
        ll = self._by_namespace.get(event.namespace)
        if ll is None or event.endpoint not in ll.endpoints:
            return
        ll.endpoints[event.endpoint].observation = event
        if ll.status is Status.READY and not ll.deleting and (event.fatal or event.phase in ("Deleted", "Failed")):
            reason = f"endpoint {event.endpoint}: pod {event.phase.lower()}: {event.reason or ''} {event.message or ''}"
            failing = asyncio.get_running_loop().create_task(self._fail(ll, reason.strip(), event.reason or "pod-lost"))
            self._cleanups.add(failing)  # held, so the task is not collected before it runs
            failing.add_done_callback(self._cleanups.discard)
        self._notify(ll)

    # ------------------------------------------------------------------ recovery
    def _recover(self, record: LiveLessonRecord, drive: bool = True) -> None:
        """Rebuild a live lesson from its namespace. With ``drive``, a launch left in progress is carried on
        (applying again is idempotent); without, it is followed as another replica's."""
        if record.terminating:
            return
        record_labels, annotations = record.labels, record.annotations
        livelesson_id = record_labels.get(labels.LIVELESSON)
        session = record_labels.get(labels.SESSION, "")
        slug = record_labels.get(labels.LESSON, "")
        if not livelesson_id or livelesson_id in self.lessons:
            return
        now = self.clock()
        created = state.parse_time(annotations.get(labels.CREATED_AT), now)
        ll = LiveLesson(
            id=livelesson_id,
            session=session,
            lesson=slug,
            stage=state.parse_stage(annotations),
            namespace=record.namespace,
            created_at=created,
            expires_at=state.parse_time(
                annotations.get(labels.EXPIRES_AT), now + timedelta(seconds=self.settings.ttl_seconds)
            ),
            status=state.parse_status(annotations.get(labels.STATUS)),
            error=annotations.get(state.ERROR),
            generation=state.parse_generation(annotations),
        )
        persistent = annotations.get(state.PERSISTENT) == "true"
        if persistent:
            self.persistent_sessions.add(session)
        digest = annotations.get(state.SESSION_TOKEN)
        if digest and self.sessions.find(session) is None:
            expires = state.parse_time(annotations.get(state.SESSION_EXPIRES_AT), ll.expires_at)
            self.sessions.add(Session(session, digest, created, expires, persistent))
        elif persistent and (known := self.sessions.find(session)) is not None:
            known.persistent = True
        source = self.tree.lessons.get(slug)
        if source is None:
            ll.status, ll.error = Status.ERROR, f"lesson '{slug}' is no longer in the curriculum"
            self._track(ll)
            return
        ll.endpoints = {e.name: EndpointState(e.name, e.ports()) for e in source.lesson.endpoints}
        for observation in record.endpoints:
            if observation.endpoint in ll.endpoints:
                ll.endpoints[observation.endpoint].observation = observation
        if ll.status is Status.READY:
            for endpoint in ll.endpoints.values():
                endpoint.reachable = set(endpoint.ports) if endpoint.running else set()
        self._track(ll)
        if drive and ll.status in IN_PROGRESS:
            self._drive_in_background(ll)

    # ------------------------------------------------------------------ expiry
    def expired(self) -> list[LiveLesson]:
        """Live lessons past their expiry, or whose session has expired, unless the session is persistent."""
        now = self.clock()
        found = []
        for ll in self.lessons.values():
            if ll.deleting or ll.session in self.persistent_sessions:
                continue
            session = self.sessions.find(ll.session)
            if ll.expires_at <= now or (session is not None and session.expired(now)):
                found.append(ll)
        return found

    async def collect_garbage(self) -> list[str]:
        """Delete expired live lessons. Also adopt live lessons of this instance that memory lacks (made by
        another process, or left mid-launch by a crash), so none is ever left without an owner."""
        try:
            records = await self.runtime.list_live_lessons()
        except Exception as exc:  # noqa: BLE001 - try again next round
            log.warning("garbage collection could not list live lessons: %s", exc)
            records = []
        for record in records:
            if record.namespace not in self._by_namespace:
                self._recover(record)
        self.gc_runs += 1
        removed = []
        for ll in self.expired():
            log.info("live lesson %s expired", ll.id, extra=_context(ll))
            await self.delete(ll.id, wait=False)
            removed.append(ll.id)
        now = self.clock()
        for session in self.sessions.all():
            if session.expired(now) and not self.of_session(session.id):
                self.sessions.remove(session)
                if self._shared is not None:
                    await self._shared.delete_session(session.id, session.token_hash)
        return removed

    async def _collect_garbage_forever(self) -> None:
        while True:
            await asyncio.sleep(self.settings.gc_interval)
            if not self.is_leader:
                continue  # another replica collects
            try:
                await self.collect_garbage()
            except Exception:
                log.exception("garbage collection failed")

    async def _lead_forever(self) -> None:
        """Hold, or wait for, the leader Lease; renew it three times per lease duration."""
        shared = self._shared
        duration = self.settings.leader_lease_seconds
        while True:
            was = self.is_leader
            try:
                self.is_leader = await shared.try_lead(self.identity, duration) if shared else True
            except Exception as exc:  # noqa: BLE001 - an unreachable API server means no leadership
                log.warning("leader election: %s", exc)
                self.is_leader = False
            if self.is_leader != was:
                log.info("%s leadership (%s)", "took" if self.is_leader else "lost", self.identity)
            await asyncio.sleep(duration / 3)
