"""A live lesson's id is the dialect's only credential, as it was antidote-core's: whoever holds it may read the
live lesson (SSH password included), open its terminals and its http presentations. Ids are random, and
nothing lists them; this keeps anyone from guessing them: an address that names ids that do not exist more
than ``MISSES_BURST`` times, and then more than ``MISSES_PER_MINUTE`` a minute, is refused every id lookup
(429, whether the id exists or not, so a refusal tells nothing) until its bucket refills."""

from __future__ import annotations

import time
from ipaddress import IPv6Address, IPv6Network, ip_address

from starlette.requests import HTTPConnection

from api.antidote.grpc import AntidoteError, Code
from api.limits import limits
from syringe.ratelimit import Buckets, Clock

MISSES_PER_MINUTE = 30
MISSES_BURST = 30


def _key(address: str) -> str:
    """An IPv6 client is its /64: a host usually holds the whole prefix."""
    try:
        parsed = ip_address(address)
    except ValueError:
        return address
    if isinstance(parsed, IPv6Address) and parsed.ipv4_mapped is None:
        return str(IPv6Network((parsed, 64), strict=False))
    return address


class Guesses:
    def __init__(self, capacity: int, clock: Clock = time.monotonic) -> None:
        self.capacity = capacity
        self.buckets = Buckets(MISSES_PER_MINUTE / 60, MISSES_BURST, capacity, clock)
        self._refused_until: dict[str, float] = {}  # address -> clock time until which every lookup is refused

    def _address(self, connection: HTTPConnection) -> str:
        return _key(limits(connection).client(connection))

    def check(self, connection: HTTPConnection) -> None:
        """Before a lookup by id: 429 while this address is refused."""
        address = self._address(connection)
        until = self._refused_until.get(address)
        if until is None:
            return
        wait = until - self.buckets.clock()
        if wait <= 0:
            del self._refused_until[address]
            return
        raise AntidoteError(
            Code.RESOURCE_EXHAUSTED,
            "too many lookups of live lessons that do not exist; try again later",
            {"Retry-After": str(max(1, round(wait)))},
        )

    def missed(self, connection: HTTPConnection) -> None:
        """After a lookup of an id that does not exist: count it, and refuse the address once it has too many."""
        address = self._address(connection)
        wait = self.buckets.take(address)
        if wait > 0:
            if len(self._refused_until) >= self.capacity:
                self._refused_until.clear()
            self._refused_until[address] = self.buckets.clock() + wait
            self.check(connection)
