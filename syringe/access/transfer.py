"""How long a proxied exchange may take and how slowly its response may trickle.

A per-read timeout does not bound an endpoint that sends one byte every few seconds: every read succeeds. So
each exchange has a total deadline, and its response body must carry at least ``min_rate`` bytes a second,
judged over windows of ``grace`` seconds from the start of the body (the first window is the grace period).
A body that falls short is ended, and its connection with it."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from dataclasses import dataclass

from syringe.errors import Unreachable

Clock = Callable[[], float]


class TooSlow(Unreachable):
    """A response body that trickled below the minimum rate, or outlived the exchange's deadline."""


@dataclass(frozen=True)
class TransferLimits:
    deadline: float  # seconds for the whole exchange: request, headers and body
    min_rate: int  # bytes a second a response body must keep up; 0: no minimum
    grace: float  # seconds a window lasts; the first one is the grace period

    def __post_init__(self) -> None:
        if self.deadline <= 0 or self.grace <= 0 or self.min_rate < 0:
            raise ValueError(f"transfer limits need a deadline and a grace above 0 and a rate of 0 or more: {self}")


class RateGuard:
    """Windows of ``window`` seconds from ``start``: each must carry at least ``min_rate * window`` bytes.
    Pure: the caller says what time it is."""

    def __init__(self, min_rate: int, window: float, start: float) -> None:
        self.min_rate = min_rate
        self.window = window
        self.need = min_rate * window
        self.window_end = start + window
        self.seen = 0  # bytes in the current window

    def check(self, now: float) -> None:
        """Close every window that has ended by ``now``; raise ``TooSlow`` for one that fell short."""
        while self.min_rate and now >= self.window_end:
            if self.seen < self.need:
                raise TooSlow(
                    f"the response trickled below {self.min_rate} bytes/s ({self.seen} bytes in {self.window:g} s)"
                )
            self.seen = 0
            self.window_end += self.window

    def record(self, size: int, now: float) -> None:
        self.check(now)
        self.seen += size

    def wake_at(self) -> float:
        """When to look again if nothing arrives: the end of the current window (never, with no minimum)."""
        return self.window_end if self.min_rate else float("inf")


async def paced(
    chunks: AsyncIterator[bytes],
    limits: TransferLimits,
    deadline: float,
    clock: Clock = time.monotonic,
    errors: tuple[type[BaseException], ...] = (),
) -> AsyncGenerator[bytes, None]:
    """``chunks`` passed on while they keep to ``limits``; ``deadline`` is the exchange's, on ``clock``.
    Raises ``TooSlow`` when they do not, and ``Unreachable`` for any of ``errors`` (the transport's own)."""
    guard = RateGuard(limits.min_rate, limits.grace, clock())
    reading: asyncio.Future[bytes] | None = None
    try:
        while True:
            if reading is None:
                # One read stays pending across wake-ups: cancelling a read mid-way could lose its bytes.
                reading = asyncio.ensure_future(anext(chunks))
            now = clock()
            if now >= deadline:
                raise TooSlow(f"the response was not over within the deadline of {limits.deadline:g} s")
            await asyncio.wait({reading}, timeout=min(deadline, guard.wake_at()) - now)
            if not reading.done():
                guard.check(clock())
                continue
            done, reading = reading, None
            try:
                chunk = done.result()
            except StopAsyncIteration:
                return
            except errors as exc:
                raise Unreachable(f"the response broke off: {exc or type(exc).__name__}") from exc
            guard.record(len(chunk), clock())
            yield chunk
    finally:
        if reading is not None and not reading.done():
            reading.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reading
