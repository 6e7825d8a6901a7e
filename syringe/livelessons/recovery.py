"""Live lessons read back from the runtime: after a restart (recovery, which carries on a launch left in
progress) and while another replica changes them (mirroring). Both go through ``apply_record``."""

from __future__ import annotations

from datetime import timedelta

from syringe.livelessons.core import Core
from syringe.livelessons.launching import drive
from syringe.livelessons.model import IN_PROGRESS, LiveLesson, Status, endpoint_states
from syringe.livelessons.persistence import apply_record, created_at, generation_of
from syringe.plan import labels
from syringe.runtime.base import LiveLessonRecord


def recover(core: Core, record: LiveLessonRecord, carry_on: bool = True) -> None:
    """Rebuild a live lesson from its namespace. With ``carry_on``, a launch left in progress is driven on
    (applying again is idempotent); without, it is followed as another replica's."""
    if record.terminating:
        return
    livelesson_id = record.labels.get(labels.LIVELESSON)
    if not livelesson_id or livelesson_id in core.registry.lessons:
        return
    session = record.labels.get(labels.SESSION, "")
    slug = record.labels.get(labels.LESSON, "")
    now = core.clock()
    created = created_at(record.annotations, now)
    ll = LiveLesson(
        id=livelesson_id,
        session=session,
        lesson=slug,
        stage=0,
        namespace=record.namespace,
        created_at=created,
        expires_at=now + timedelta(seconds=core.settings.ttl_seconds),
    )
    core.learners.adopt(session, record.annotations, created, ll.expires_at)
    source = core.tree.lessons.get(slug)
    if source is not None:
        ll.endpoints = endpoint_states(source.lesson)
        for observation in record.endpoints:
            if observation.endpoint in ll.endpoints:
                ll.endpoints[observation.endpoint].observation = observation
    apply_record(ll, record.annotations, driving=False)
    if source is None:
        ll.status, ll.error = Status.ERROR, f"lesson '{slug}' is no longer in the curriculum"
    core.registry.track(ll)
    if carry_on and source is not None and ll.status in IN_PROGRESS:
        core.drive(ll, drive(core, ll), "drive")


def mirror(core: Core, record: LiveLessonRecord) -> None:
    """Another replica's live lesson, or a state change saved by any replica: follow it. Each saved change
    carries a generation, so a change is applied once and older news never undoes newer; while this
    process drives a lesson, its status and stage stay as this process has them."""
    ll = core.registry.by_namespace(record.namespace)
    if ll is None:
        recover(core, record, carry_on=False)
        return
    if generation_of(record.annotations) <= ll.generation or ll.deleting:
        return  # our own write coming back, or older news
    apply_record(ll, record.annotations, driving=ll.id in core.drives)
    core.learners.adopt(ll.session, record.annotations, ll.created_at, ll.expires_at)
    core.registry.notify(ll)
