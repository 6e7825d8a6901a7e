"""What every part of the live-lesson lifecycle shares: its inputs, its memory, and its background tasks.
Plans are built here (pure, from the curriculum and the learner's session), failures recorded here."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from syringe.curriculum import CurriculumTree
from syringe.curriculum.files import read_lesson_files
from syringe.learners import Learners
from syringe.livelessons.model import LiveLesson, Status
from syringe.livelessons.persistence import StateWriter
from syringe.livelessons.registry import Registry
from syringe.observability import metrics
from syringe.plan import LiveLessonIdentity, Plan, PlanSettings, build_plan
from syringe.runtime.base import Runtime
from syringe.settings import LifecycleSettings

log = logging.getLogger("syringe.livelessons")


def log_context(ll: LiveLesson) -> dict[str, str]:
    """Fields every log record about a live lesson carries."""
    return {"livelesson": ll.id, "session": ll.session, "lesson": ll.lesson}


@dataclass
class Core:
    tree: CurriculumTree
    runtime: Runtime
    plan_settings: PlanSettings
    settings: LifecycleSettings
    clock: Callable[[], datetime]
    registry: Registry
    learners: Learners
    writer: StateWriter
    drives: dict[str, asyncio.Task[None]] = field(default_factory=dict)  # live lessons this process drives
    cleanups: set[asyncio.Task[None]] = field(default_factory=set)
    _files: dict[str, dict[str, bytes]] = field(default_factory=dict)

    # ------------------------------------------------------------------ plans
    async def lesson_files(self, slug: str) -> dict[str, bytes]:
        """A lesson's files, read once: the curriculum does not change while the service runs."""
        files = self._files.get(slug)
        if files is None:
            files = await asyncio.to_thread(read_lesson_files, self.tree.lessons[slug])
            self._files[slug] = files
        return files

    async def plan_for(self, ll: LiveLesson) -> Plan:
        """The live lesson's plan at its current stage (pure, so rebuilding it is cheap and always agrees)."""
        who = LiveLessonIdentity(id=ll.id, session=ll.session, created_at=ll.created_at, expires_at=ll.expires_at)
        files = await self.lesson_files(ll.lesson)
        return build_plan(
            self.tree.lessons[ll.lesson].lesson,
            self.tree.images,
            ll.stage,
            who,
            self.plan_settings,
            files,
            namespace_annotations=self.learners.annotations_for(ll.session),
        )

    # ------------------------------------------------------------------ background work
    def drive(self, ll: LiveLesson, work: Coroutine[Any, Any, None], name: str) -> None:
        """Run ``work`` as the one task that drives this live lesson: while it runs, news from replicas
        cannot undo what this process does."""
        task = asyncio.create_task(work, name=f"{name}-{ll.id}")
        self.drives[ll.id] = task
        task.add_done_callback(lambda _: self.drives.pop(ll.id, None) if self.drives.get(ll.id) is task else None)

    def hold(self, work: Coroutine[Any, Any, None], name: str) -> None:
        """A background task that must not be collected before it ends (and is cancelled on stop)."""
        task = asyncio.create_task(work, name=name)
        self.cleanups.add(task)
        task.add_done_callback(self.cleanups.discard)

    # ------------------------------------------------------------------ failure and removal
    async def fail(self, ll: LiveLesson, reason: str, kind: str, cleanup: bool = False) -> None:
        log.warning("live lesson %s (%s): %s", ll.id, ll.lesson, reason, extra=log_context(ll))
        metrics.ERRORS.labels(kind).inc()
        if cleanup:
            # Nothing half-made may stay behind: the namespace goes, the error stays visible in memory.
            ll.status, ll.error = Status.ERROR, reason
            self.registry.notify(ll)
            self.remove_in_background(ll)
        else:
            await self.writer.settle(ll, Status.ERROR, reason)

    def namespace_gone(self, ll: LiveLesson) -> None:
        if ll.deleting or ll.status is not Status.ERROR:
            self.registry.untrack(ll)
        else:
            # An ERROR whose namespace was cleaned up stays visible to the learner until deleted or expired.
            self.registry.forget_namespace(ll)

    def remove_in_background(self, ll: LiveLesson) -> None:
        async def remove() -> None:
            delay = 1.0
            while True:
                try:
                    if await self.runtime.delete(ll.namespace, self.settings.delete_timeout):
                        self.namespace_gone(ll)
                        return
                except Exception as exc:  # noqa: BLE001 - keep trying until the runtime answers
                    log.warning("removing %s: %s", ll.namespace, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 15.0)

        self.hold(remove(), f"cleanup-{ll.id}")
