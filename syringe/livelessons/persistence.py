"""Live-lesson state kept in the runtime (namespace annotations): written here, read back by
``apply_record`` — the one function that both recovery after a restart and mirroring another replica use."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from datetime import datetime

from syringe.errors import RuntimeUnavailable
from syringe.livelessons.model import LiveLesson, Status
from syringe.livelessons.registry import Registry
from syringe.plan import labels
from syringe.runtime.base import Runtime

log = logging.getLogger(__name__)


def _time(value: str | None, default: datetime) -> datetime:
    if not value:
        return default
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return default


def _int(value: str | None) -> int:
    try:
        return int(value or "0")
    except ValueError:
        return 0


def _status(value: str | None) -> Status:
    try:
        return Status(value or Status.INITIALIZED)
    except ValueError:
        return Status.ERROR


def generation_of(annotations: Mapping[str, str]) -> int:
    return _int(annotations.get(labels.GENERATION))


def created_at(annotations: Mapping[str, str], default: datetime) -> datetime:
    return _time(annotations.get(labels.CREATED_AT), default)


def apply_record(ll: LiveLesson, annotations: Mapping[str, str], driving: bool) -> None:
    """Take the saved state of a live lesson. While this process drives it, its memory is ahead of what
    was saved, so its status and stage stay as they are."""
    ll.generation = generation_of(annotations)
    ll.expires_at = _time(annotations.get(labels.EXPIRES_AT), ll.expires_at)
    if not driving:
        ll.stage = _int(annotations.get(labels.STAGE))
        ll.status = _status(annotations.get(labels.STATUS))
        ll.error = annotations.get(labels.ERROR)
        ll.settle_ready()


class StateWriter:
    """Saves live-lesson state with a generation, so that replicas (this one included) apply each change
    once and never an older one over a newer."""

    def __init__(self, runtime: Runtime, registry: Registry) -> None:
        self.runtime = runtime
        self.registry = registry

    async def write(self, ll: LiveLesson, annotations: Mapping[str, str | None]) -> None:
        ll.generation += 1
        await self.runtime.annotate(ll.namespace, {**annotations, labels.GENERATION: str(ll.generation)})

    async def _save_status(
        self, ll: LiveLesson, status: Status, error: str | None, wait_for_previous: bool = True
    ) -> None:
        if wait_for_previous and ll.saving is not None:
            with contextlib.suppress(Exception):
                await ll.saving
        if ll.deleting:
            return
        try:
            await self.write(ll, {labels.STATUS: status.value, labels.ERROR: error})
        except RuntimeUnavailable as exc:
            log.warning("live lesson %s: could not save status %s: %s", ll.id, status, exc)

    async def settle(self, ll: LiveLesson, status: Status, error: str | None = None) -> None:
        """Move to a settled status (READY, ERROR): saved before anyone sees it, so whoever reacts finds the
        runtime agreeing."""
        await self._save_status(ll, status, error)
        ll.status, ll.error = status, error
        self.registry.notify(ll)

    def pass_through(self, ll: LiveLesson, status: Status) -> None:
        """Move to a transient status: visible at once, saved in the background (in order), so the launch
        does not wait on a write that only matters to a process recovering mid-launch."""
        ll.status, ll.error = status, None
        self.registry.notify(ll)
        previous = ll.saving

        async def save() -> None:
            if previous is not None:
                with contextlib.suppress(Exception):
                    await previous
            await self._save_status(ll, status, None, wait_for_previous=False)

        ll.saving = asyncio.create_task(save())
