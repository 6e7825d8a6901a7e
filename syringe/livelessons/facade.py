"""LiveLessons: the one entry to the live-lesson lifecycle — launch, drive to READY, change stage, check,
keep alive, expire, delete, and recover. The work is done by the modules beside this one.

Status is served from memory. Runtime events keep it current, so reading a live lesson never costs the
runtime a call; only changes (launch, a status transition, keepalive, delete) write to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import traceback
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta

from syringe.access.probes import Target
from syringe.curriculum import CurriculumTree
from syringe.errors import LimitReached, RuntimeCheckFailed, RuntimeUnavailable, UnknownLesson
from syringe.learners import Learners, SessionStore
from syringe.livelessons import expiry, reaching, stages
from syringe.livelessons.core import Core, log
from syringe.livelessons.events import on_event
from syringe.livelessons.launching import drive
from syringe.livelessons.leadership import Leadership
from syringe.livelessons.model import LiveLesson, endpoint_states
from syringe.livelessons.persistence import StateWriter
from syringe.livelessons.recovery import recover
from syringe.livelessons.registry import Registry
from syringe.plan import PlanSettings, labels, namespace_name
from syringe.runtime.base import JudgesLessons, Runtime, RuntimeEvent
from syringe.settings import LifecycleSettings


def _stack(task: asyncio.Task[None]) -> list[str]:
    return traceback.format_list(traceback.extract_stack(task.get_stack()[-1])) if task.get_stack() else []


def _now() -> datetime:
    return datetime.now(UTC)


class LiveLessons:
    def __init__(
        self,
        tree: CurriculumTree,
        runtime: Runtime,
        plan_settings: PlanSettings,
        settings: LifecycleSettings,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self.tree, self.runtime, self.plan_settings, self.settings = tree, runtime, plan_settings, settings
        self.registry = Registry(clock)
        store = runtime if isinstance(runtime, SessionStore) else None
        self.learners = Learners(settings.session_ttl_seconds, store, clock)
        writer = StateWriter(runtime, self.registry)
        self.core = Core(tree, runtime, plan_settings, settings, clock, self.registry, self.learners, writer)
        self.leadership = Leadership(runtime, settings.leader_lease_seconds)
        self.gc_runs = 0
        self._tasks: list[asyncio.Task[None]] = []

    # ------------------------------------------------------------------ start and stop
    async def start(self, check: bool = True) -> None:
        if check:
            problems = await self.runtime.check()
            if problems:
                raise RuntimeCheckFailed("; ".join(problems))
        # Subscribed before the runtime reports anything, consumed only once what exists is recovered: an
        # event about a live lesson that arrives while it is being listed is applied after, never dropped as
        # news of a lesson this process does not know yet (which left it stale until its pods next changed).
        events = self.runtime.events()
        await self.runtime.start()
        for record in await self.runtime.list_live_lessons():
            recover(self.core, record)
        self._tasks.append(asyncio.create_task(self._consume(events), name="lifecycle-events"))
        self._tasks.append(asyncio.create_task(self.leadership.hold_forever(), name="lifecycle-leader"))
        collecting = expiry.collect_forever(
            self.settings.gc_interval, lambda: self.leadership.is_leader, self.collect_garbage
        )
        self._tasks.append(asyncio.create_task(collecting, name="lifecycle-gc"))

    async def _consume(self, events: AsyncIterator[RuntimeEvent]) -> None:
        async for event in events:
            on_event(self.core, event)

    async def stop(self, timeout: float = 10.0) -> None:
        tasks = {*self._tasks, *self.core.drives.values(), *self.core.cleanups}
        for task in tasks:
            task.cancel()
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=timeout)
            for task in pending:  # never hang a shutdown; say what would not stop
                log.error("stopping: task %s did not end: %s", task.get_name(), "".join(_stack(task)))
        self._tasks.clear()
        self.core.drives.clear()

    @property
    def clock(self) -> Callable[[], datetime]:
        return self.core.clock

    @clock.setter
    def clock(self, clock: Callable[[], datetime]) -> None:
        """One clock for every part (tests move it forward to see expiry)."""
        self.core.clock = self.registry.clock = self.learners.clock = clock

    # ------------------------------------------------------------------ queries (memory only)
    def get(self, livelesson_id: str, session: str | None = None) -> LiveLesson:
        return self.registry.get(livelesson_id, session)

    def of_session(self, session: str) -> list[LiveLesson]:
        return self.registry.of_session(session)

    def of_session_lesson(self, session: str, lesson_slug: str) -> LiveLesson | None:
        """The session's live lesson of ``lesson_slug`` (not one being deleted), if it has one: what
        ``launch`` would return rather than launch another."""
        return next((ll for ll in self.of_session(session) if ll.lesson == lesson_slug and not ll.deleting), None)

    def all(self) -> list[LiveLesson]:
        return list(self.registry.lessons.values())

    def cannot_run(self, lesson_slug: str) -> list[str]:
        """Why the lesson cannot run on this runtime, known before a launch (one sentence per endpoint); empty
        when nothing is known to stop it. The lesson must exist."""
        lesson = self.tree.lessons[lesson_slug].lesson
        return self.runtime.cannot_run(lesson) if isinstance(self.runtime, JudgesLessons) else []

    def listen(self, livelesson_id: str | None = None) -> asyncio.Queue[str]:
        """A queue that wakes when live lesson ``livelesson_id`` changes or goes (at most one wake-up waits
        in it: read the live lesson itself). With no id: the id of every change to any live lesson."""
        return self.registry.listen(livelesson_id)

    def unlisten(self, queue: asyncio.Queue[str]) -> None:
        self.registry.unlisten(queue)

    def target_for(self, livelesson_id: str, session: str | None, endpoint: str, presentation: str) -> Target:
        ll = self.get(livelesson_id, session)
        return reaching.target_for(self.tree, ll, endpoint, presentation, self.settings.http_probe_path)

    async def cleanups_finished(self, timeout: float) -> bool:
        """Wait until the namespaces of failed launches are removed; False if some remain after ``timeout``."""
        if not self.core.cleanups:
            return True
        _, pending = await asyncio.wait(set(self.core.cleanups), timeout=timeout)
        return not pending

    # ------------------------------------------------------------------ changes
    async def launch(self, session: str, lesson_slug: str, stage: int = 0) -> LiveLesson:
        source = self.tree.lessons.get(lesson_slug)
        if source is None:
            raise UnknownLesson(f"no lesson '{lesson_slug}'")
        if not 0 <= stage < len(source.lesson.stages):
            raise UnknownLesson(f"lesson '{lesson_slug}' has stages 0-{len(source.lesson.stages) - 1}, not {stage}")
        held = [ll for ll in self.of_session(session) if not ll.deleting]
        for ll in held:
            if ll.lesson == lesson_slug:
                return await self.set_stage(ll.id, stage, session) if ll.stage != stage else ll
        if len(held) >= self.settings.max_per_session:
            raise LimitReached(
                f"session {session} already has {len(held)} live lessons (the limit is "
                f"{self.settings.max_per_session}); delete one first"
            )
        if len(self.registry) >= self.settings.max_live_lessons:
            raise LimitReached(
                f"all {self.settings.max_live_lessons} live-lesson slots are in use; try again shortly", retry_after=30
            )
        livelesson_id = secrets.token_hex(5)
        now = self.core.clock()
        ll = LiveLesson(
            id=livelesson_id,
            session=session,
            lesson=lesson_slug,
            stage=stage,
            namespace=namespace_name(self.plan_settings, livelesson_id),
            created_at=now,
            expires_at=now + timedelta(seconds=self.settings.ttl_seconds),
            endpoints=endpoint_states(source.lesson),
        )
        self.registry.track(ll)
        self.core.drive(ll, drive(self.core, ll), "drive")
        return ll

    async def set_stage(self, livelesson_id: str, stage: int, session: str | None = None) -> LiveLesson:
        return await stages.set_stage(self.core, self.get(livelesson_id, session), stage)

    async def verify(self, livelesson_id: str, session: str | None = None) -> LiveLesson:
        return await stages.verify(self.core, self.get(livelesson_id, session))

    async def keepalive(self, livelesson_id: str, session: str | None = None) -> LiveLesson:
        ll = self.get(livelesson_id, session)
        ll.expires_at = self.core.clock() + timedelta(seconds=self.settings.ttl_seconds)
        self.registry.notify(ll)
        await self.core.writer.write(ll, {labels.EXPIRES_AT: ll.expires_at.isoformat()})
        return ll

    async def set_persistent(self, session: str, persistent: bool) -> None:
        """Keep a learner session (and its live lessons) from expiring, or let it expire again."""
        await self.learners.set_persistent(session, persistent)
        value = "true" if persistent else None
        await asyncio.gather(
            *(self.core.writer.write(ll, {labels.PERSISTENT: value}) for ll in self.of_session(session))
        )

    async def delete(self, livelesson_id: str, session: str | None = None, wait: bool = True) -> bool:
        """Delete a live lesson. Returns whether its namespace is already gone; otherwise it goes in the background."""
        ll = self.get(livelesson_id, session)
        if ll.deleting and self.registry.by_namespace(ll.namespace) is ll:
            return False  # already going: one removal per live lesson, however often it is asked for
        ll.deleting = True
        driving = self.core.drives.get(ll.id)
        if driving is not None:
            driving.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await driving
        self.registry.notify(ll)
        if self.registry.by_namespace(ll.namespace) is not ll:  # an ERROR whose namespace was already removed
            self.registry.untrack(ll)
            return True
        if wait:
            try:
                if await self.runtime.delete(ll.namespace, self.settings.delete_timeout):
                    self.registry.untrack(ll)
                    return True
            except RuntimeUnavailable as exc:
                log.warning("deleting %s: %s; retrying in the background", ll.namespace, exc)
        self.core.remove_in_background(ll)
        return False

    # ------------------------------------------------------------------ expiry
    def expired(self) -> list[LiveLesson]:
        return expiry.expired(self.core)

    async def collect_garbage(self) -> list[str]:
        self.gc_runs += 1
        return await expiry.collect_garbage(self.core, lambda ll: self.delete(ll.id, wait=False))
