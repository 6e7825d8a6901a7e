"""Every learner session this process knows, how tokens are authenticated, and where sessions are shared
between replicas (a ``SessionStore``: the cluster, when there is one)."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import secrets
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Protocol, runtime_checkable

from syringe.errors import NotFound
from syringe.learners.model import LearnerSession, SessionGone, token_hash
from syringe.plan import labels
from syringe.ratelimit import TokenBucket

UNKNOWN_TOKEN_SECONDS = 10.0
UNKNOWN_TOKENS_REMEMBERED = 10_000


@runtime_checkable
class SessionStore(Protocol):
    """Optional runtime capability: sessions shared by every replica (Secrets, on Kubernetes)."""

    async def save_session(self, session: LearnerSession) -> None: ...

    async def find_session(self, token_hash: str) -> LearnerSession | None: ...

    async def delete_session(self, session_id: str, token_hash: str) -> None: ...


class Learners:
    """Sessions by id and by token hash. Memory answers every authentication of a known token; the store is
    asked only about a token that another replica may have issued a moment ago, and no more often than the
    lookup bucket allows (``limit_lookups``), however many different tokens callers invent."""

    def __init__(self, ttl_seconds: int, store: SessionStore | None, clock: Callable[[], datetime]) -> None:
        self.ttl = timedelta(seconds=ttl_seconds)
        self.store = store
        self.clock = clock
        self._by_id: dict[str, LearnerSession] = {}
        self._by_hash: dict[str, LearnerSession] = {}
        self._unknown_tokens: dict[str, float] = {}  # token hash -> loop time until which it is known unknown
        self._lookups: TokenBucket | None = None  # store lookups of unknown tokens, shared by every caller
        self.lookups_refused = 0
        # The one answer to "is this session persistent": also for session ids that have no token here
        # (a live lesson launched from the command line, or a session whose record is not back yet).
        self._persistent: set[str] = set()

    # ------------------------------------------------------------------ memory
    def add(self, session: LearnerSession) -> None:
        if session.persistent:
            self._persistent.add(session.id)
        else:
            self._persistent.discard(session.id)
        old = self._by_id.get(session.id)
        if old is not None and old.token_hash != session.token_hash:
            self._by_hash.pop(old.token_hash, None)
        self._by_id[session.id] = session
        self._by_hash[session.token_hash] = session

    def find(self, session_id: str) -> LearnerSession | None:
        return self._by_id.get(session_id)

    def get(self, session_id: str) -> LearnerSession:
        session = self._by_id.get(session_id)
        if session is None:
            raise NotFound(f"no session '{session_id}'")
        return session

    def all(self) -> list[LearnerSession]:
        return sorted(self._by_id.values(), key=lambda s: s.created_at)

    def remove(self, session: LearnerSession) -> None:
        self._by_id.pop(session.id, None)
        self._by_hash.pop(session.token_hash, None)
        self._persistent.discard(session.id)

    def is_persistent(self, session_id: str) -> bool:
        return session_id in self._persistent

    # ------------------------------------------------------------------ tokens
    def limit_lookups(self, per_second: float, burst: int) -> None:
        """Bound the store lookups that unknown tokens cost, all callers together: beyond the bucket, an
        unknown token is simply unknown. (Unbounded until this is called: only the API authenticates.)"""
        self._lookups = TokenBucket(per_second, burst)

    async def create(self) -> tuple[LearnerSession, str]:
        """A new session and its bearer token (the only time the token is known in clear), saved where every
        replica finds it."""
        token = secrets.token_urlsafe(32)
        now = self.clock()
        session = LearnerSession(secrets.token_hex(6), token_hash(token), now, now + self.ttl)
        self.add(session)
        if self.store is not None:
            await self.store.save_session(session)
        return session, token

    def _known(self, digest: str) -> LearnerSession | None:
        session = self._by_hash.get(digest)
        if session is None or not hmac.compare_digest(session.token_hash, digest) or session.expired(self.clock()):
            return None
        return session

    async def authenticate(self, token: str) -> LearnerSession | None:
        """The token's session: from memory, or, for a session another replica made a moment ago and whose
        news has not arrived yet, from the store (the only time authentication costs a store call)."""
        digest = token_hash(token)
        found = self._known(digest)
        if found is not None or self.store is None:
            return found
        # A wrong token must not cost the API server a call per request: misses are remembered briefly
        # (a real new session arrives by watch well within that time).
        loop_time = asyncio.get_running_loop().time()
        if self._unknown_tokens.get(digest, 0.0) > loop_time:
            return None
        # Every NEW invented token would still cost a call: a bucket shared by all callers bounds them. A
        # real session made on another replica a moment ago is looked up while the bucket has tokens (it
        # always has, but under a flood of invented ones), and arrives by the session watch in any case.
        if self._lookups is not None and self._lookups.take() > 0.0:
            self.lookups_refused += 1
            return None
        record = await self.store.find_session(digest)
        if record is None:
            if len(self._unknown_tokens) >= UNKNOWN_TOKENS_REMEMBERED:
                self._unknown_tokens.clear()
            self._unknown_tokens[digest] = loop_time + UNKNOWN_TOKEN_SECONDS
            return None
        self.observed(record)
        return self._known(digest)

    # ------------------------------------------------------------------ persistence
    async def set_persistent(self, session_id: str, persistent: bool) -> None:
        known = self._by_id.get(session_id)
        if known is None:
            (self._persistent.add if persistent else self._persistent.discard)(session_id)
            return
        updated = replace(known, persistent=persistent)
        self.add(updated)
        if self.store is not None:
            await self.store.save_session(updated)

    def observed(self, news: LearnerSession | SessionGone, in_use: Callable[[str], bool] = lambda _: False) -> None:
        """News from the store: a session saved or removed by any replica (this one included)."""
        if isinstance(news, SessionGone):
            known = self._by_id.get(news.id)
            if known is not None and not in_use(news.id):
                self.remove(known)
            return
        self.add(news)

    # ------------------------------------------------------------------ on live lessons' namespaces
    def annotations_for(self, session_id: str) -> dict[str, str]:
        """What a restarted Syringe needs to let the learner back in, written on each of the session's live
        lessons' namespaces: the token's hash (never the token), its expiry, and whether it is persistent."""
        session = self._by_id.get(session_id)
        if session is None:
            return {}
        annotations = {
            labels.SESSION_TOKEN: session.token_hash,
            labels.SESSION_EXPIRES_AT: session.expires_at.isoformat(),
        }
        if self.is_persistent(session_id):
            annotations[labels.PERSISTENT] = "true"
        return annotations

    def adopt(self, session_id: str, annotations: Mapping[str, str], created: datetime, expires: datetime) -> None:
        """A session read back from a live lesson's namespace (recovery, or another replica's news)."""
        persistent = annotations.get(labels.PERSISTENT) == "true"
        if persistent:
            self._persistent.add(session_id)
        known = self._by_id.get(session_id)
        digest = annotations.get(labels.SESSION_TOKEN)
        if known is None and digest:
            with contextlib.suppress(ValueError):
                expires = datetime.fromisoformat(annotations.get(labels.SESSION_EXPIRES_AT) or "")
            self.add(LearnerSession(session_id, digest, created, expires, persistent))
        elif known is not None and persistent and not known.persistent:
            self.add(replace(known, persistent=True))

    async def collect(self, in_use: Callable[[str], bool]) -> None:
        """Forget expired sessions that hold no live lesson, here and in the store."""
        now = self.clock()
        for session in self.all():
            if session.expired(now) and not in_use(session.id):
                self.remove(session)
                if self.store is not None:
                    await self.store.delete_session(session.id, session.token_hash)
