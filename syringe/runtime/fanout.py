"""Runtime events, handed to every subscriber of a runtime's events() stream."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from syringe.runtime.base import RuntimeEvent


class EventFanout:
    """On the event loop: publish() queues an event for each current subscriber; subscribe() streams them."""

    def __init__(self) -> None:
        self._queues: list[asyncio.Queue[RuntimeEvent]] = []

    def publish(self, event: RuntimeEvent) -> None:
        for queue in self._queues:
            queue.put_nowait(event)

    def subscribe(self) -> AsyncIterator[RuntimeEvent]:
        """A stream of every event published from now on: the subscription starts at this call, not at the
        first iteration, so a subscriber that reads later (after listing what already exists) misses nothing."""
        queue: asyncio.Queue[RuntimeEvent] = asyncio.Queue()
        self._queues.append(queue)
        return self._stream(queue)

    async def _stream(self, queue: asyncio.Queue[RuntimeEvent]) -> AsyncIterator[RuntimeEvent]:
        try:
            while True:
                yield await queue.get()
        finally:
            self._queues.remove(queue)
