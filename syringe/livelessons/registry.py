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
        self._everything: set[asyncio.Queue[str]] = set()  # listeners to every live lesson
        self._listeners: dict[str, set[asyncio.Queue[str]]] = {}  # live lesson id -> its listeners
        self._listening: dict[asyncio.Queue[str], str] = {}  # and back

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
    def listen(self, livelesson_id: str | None = None) -> asyncio.Queue[str]:
        """A queue that wakes when live lesson ``livelesson_id`` changes (or is gone): it holds at most one
        pending wake-up, as the listener reads the live lesson itself, so a slow reader costs no memory and
        a change to another live lesson costs it nothing. With no id, a queue of the id of every change to
        any live lesson (for tools and tests; the API never listens to everything)."""
        if livelesson_id is None:
            everything: asyncio.Queue[str] = asyncio.Queue()
            self._everything.add(everything)
            return everything
        queue: asyncio.Queue[str] = asyncio.Queue(maxsize=1)
        self._listeners.setdefault(livelesson_id, set()).add(queue)
        self._listening[queue] = livelesson_id
        return queue

    def unlisten(self, queue: asyncio.Queue[str]) -> None:
        self._everything.discard(queue)
        livelesson_id = self._listening.pop(queue, None)
        if livelesson_id is None:
            return
        queues = self._listeners[livelesson_id]
        queues.discard(queue)
        if not queues:
            del self._listeners[livelesson_id]

    def listeners(self, livelesson_id: str) -> int:
        """How many listen to this live lesson now."""
        return len(self._listeners.get(livelesson_id, ()))

    def notify(self, ll: LiveLesson) -> None:
        ll.updated_at = self.clock()
        ll.version += 1
        ll.touch()
        for queue in self._listeners.get(ll.id, ()):
            if queue.empty():
                queue.put_nowait(ll.id)
        for queue in self._everything:
            queue.put_nowait(ll.id)
