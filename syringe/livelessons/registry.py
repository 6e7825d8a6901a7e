"""Every live lesson this process knows, by id and by namespace, and who listens for their changes."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime

from syringe.errors import NotFound
from syringe.livelessons.model import LiveLesson


class Registry:
    def __init__(self, clock: Callable[[], datetime]) -> None:
        self.clock = clock
        self.lessons: dict[str, LiveLesson] = {}
        self._by_namespace: dict[str, LiveLesson] = {}
        self._listeners: set[asyncio.Queue[str]] = set()

    def __len__(self) -> int:
        return len(self.lessons)

    def get(self, livelesson_id: str, session: str | None = None) -> LiveLesson:
        found = self.lessons.get(livelesson_id)
        if found is None or (session is not None and found.session != session):
            raise NotFound(f"no live lesson '{livelesson_id}'")
        return found

    def by_namespace(self, namespace: str) -> LiveLesson | None:
        return self._by_namespace.get(namespace)

    def of_session(self, session: str) -> list[LiveLesson]:
        return [ll for ll in self.lessons.values() if ll.session == session]

    def track(self, ll: LiveLesson) -> None:
        self.lessons[ll.id] = ll
        self._by_namespace[ll.namespace] = ll

    def untrack(self, ll: LiveLesson) -> None:
        self.lessons.pop(ll.id, None)
        self._by_namespace.pop(ll.namespace, None)
        self.notify(ll)

    def forget_namespace(self, ll: LiveLesson) -> None:
        """The namespace is gone, the live lesson stays visible (an ERROR the learner has not seen yet)."""
        self._by_namespace.pop(ll.namespace, None)

    # ------------------------------------------------------------------ listeners
    def listen(self) -> asyncio.Queue[str]:
        """A queue that receives the id of every live lesson whose state changes."""
        queue: asyncio.Queue[str] = asyncio.Queue()
        self._listeners.add(queue)
        return queue

    def unlisten(self, queue: asyncio.Queue[str]) -> None:
        self._listeners.discard(queue)

    def notify(self, ll: LiveLesson) -> None:
        ll.updated_at = self.clock()
        ll.version += 1
        ll.touch()
        for queue in self._listeners:
            queue.put_nowait(ll.id)
