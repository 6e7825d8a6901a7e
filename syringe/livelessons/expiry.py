"""Expiry and garbage collection: live lessons past their time, sessions past theirs, and live lessons of
this instance that no process holds."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from syringe.livelessons.core import Core, log, log_context
from syringe.livelessons.model import LiveLesson
from syringe.livelessons.recovery import recover


def expired(core: Core) -> list[LiveLesson]:
    """Live lessons past their expiry, or whose session has expired, unless the session is persistent."""
    now = core.clock()
    found = []
    for ll in core.registry.lessons.values():
        if ll.deleting or core.learners.is_persistent(ll.session):
            continue
        session = core.learners.find(ll.session)
        if ll.expires_at <= now or (session is not None and session.expired(now)):
            found.append(ll)
    return found


async def collect_garbage(core: Core, delete: Callable[[LiveLesson], Awaitable[object]]) -> list[str]:
    """Delete expired live lessons. Also adopt live lessons of this instance that memory lacks (made by
    another process, or left mid-launch by a crash), so none is ever left without an owner."""
    try:
        records = await core.runtime.list_live_lessons()
    except Exception as exc:  # noqa: BLE001 - try again next round
        log.warning("garbage collection could not list live lessons: %s", exc)
        records = []
    for record in records:
        if core.registry.by_namespace(record.namespace) is None:
            recover(core, record)
    removed = []
    for ll in expired(core):
        log.info("live lesson %s expired", ll.id, extra=log_context(ll))
        await delete(ll)
        removed.append(ll.id)
    await core.learners.collect(in_use=lambda session: bool(core.registry.of_session(session)))
    return removed


async def collect_forever(
    interval: float, is_leader: Callable[[], bool], collect: Callable[[], Awaitable[object]]
) -> None:
    while True:
        await asyncio.sleep(interval)
        if not is_leader():
            continue  # another replica collects
        try:
            await collect()
        except Exception:  # noqa: BLE001 - logged with its traceback; the next round tries again
            log.exception("garbage collection failed")
