"""Concurrency caps for endpoint access: at most so many uses at once per key (a live lesson, a session).

A use beyond a cap is refused at once (``LimitReached``, 429 or 4429 at the API), never queued: a queue would
let one live lesson's slow uses delay every later caller, and would hold their memory meanwhile."""

from __future__ import annotations

from syringe.errors import LimitReached


class Slots:
    """At most ``limit`` holders per key at once."""

    def __init__(self, limit: int, what: str, per: str = "live lesson") -> None:
        if limit < 1:
            raise ValueError(f"a cap of {what} must be at least 1, not {limit}")
        self.limit = limit
        self.what = what  # "terminals open", said in the refusal
        self.per = per  # what the key is: "live lesson", "session"
        self._open: dict[str, int] = {}

    def count(self, key: str) -> int:
        return self._open.get(key, 0)

    def has_room(self, key: str) -> bool:
        return self.count(key) < self.limit

    def refusal(self, key: str) -> LimitReached:
        return LimitReached(f"{self.per} {key} already has {self.count(key)} {self.what} (the limit)")

    def acquire(self, key: str) -> None:
        if not self.has_room(key):
            raise self.refusal(key)
        self._open[key] = self.count(key) + 1

    def release(self, key: str) -> None:
        count = self.count(key) - 1
        if count > 0:
            self._open[key] = count
        else:
            self._open.pop(key, None)

    @property
    def total(self) -> int:
        return sum(self._open.values())


class Held:
    """One admitted use; ``release()`` gives its slots back, and is safe to call more than once (a response
    can end in several ways, each of which releases)."""

    def __init__(self, taken: list[tuple[Slots, str]]) -> None:
        self._taken = taken

    @property
    def released(self) -> bool:
        return not self._taken

    def release(self) -> None:
        taken, self._taken = self._taken, []
        for slots, key in taken:
            slots.release(key)


class Admission:
    """Uses of one kind (proxied requests, NETCONF RPCs) capped per live lesson and, optionally, per session:
    a use is admitted only when every cap has room, and then takes a slot of each."""

    def __init__(self, per_livelesson: Slots, per_session: Slots | None = None) -> None:
        self.per_livelesson = per_livelesson
        self.per_session = per_session

    def admit(self, livelesson_id: str, session_id: str) -> Held:
        """Take a slot of each cap, or raise ``LimitReached`` (naming the cap that is full) and take none."""
        wanted = [(self.per_livelesson, livelesson_id)]
        if self.per_session is not None:
            wanted.append((self.per_session, session_id))
        for slots, key in wanted:
            if not slots.has_room(key):
                raise slots.refusal(key)
        for slots, key in wanted:
            slots.acquire(key)
        return Held(wanted)
