"""Token buckets: how often something may happen, with a burst. Pure (a clock is passed in), so the core
(unknown-token lookups) and the API (per client address) share one implementation."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

Clock = Callable[[], float]


class TokenBucket:
    """``rate`` tokens a second, holding at most ``burst``; it starts full."""

    __slots__ = ("_at", "_tokens", "burst", "clock", "rate")

    def __init__(self, rate: float, burst: int, clock: Clock = time.monotonic) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError(f"a token bucket needs rate > 0 and burst >= 1, not {rate} and {burst}")
        self.rate, self.burst, self.clock = rate, burst, clock
        self._tokens = float(burst)
        self._at = clock()

    def take(self) -> float:
        """Take a token: 0.0 when there was one, else the seconds until there is (nothing is taken then)."""
        now = self.clock()
        tokens = min(float(self.burst), self._tokens + (now - self._at) * self.rate)
        self._at = now
        if tokens >= 1.0:
            self._tokens = tokens - 1.0
            return 0.0
        self._tokens = tokens
        return (1.0 - tokens) / self.rate


class Buckets:
    """One token bucket per key (a client address), in bounded memory: at most ``capacity`` keys, the least
    recently seen forgotten first. A forgotten key starts again with a full bucket, so the capacity should
    exceed the number of clients active within ``burst / rate`` seconds."""

    def __init__(self, rate: float, burst: int, capacity: int, clock: Clock = time.monotonic) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, not {capacity}")
        TokenBucket(rate, burst, clock)  # the same checks, at construction
        self.rate, self.burst, self.capacity, self.clock = rate, burst, capacity, clock
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, key: str) -> float:
        """Take a token from ``key``'s bucket: 0.0, or the seconds until one is there."""
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = TokenBucket(self.rate, self.burst, self.clock)
            if len(self._buckets) > self.capacity:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
        return bucket.take()
