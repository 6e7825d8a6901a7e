"""Learner sessions: who may see which live lessons. Tokens are kept only as SHA-256 hashes."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from syringe.errors import NotFound


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass
class Session:
    id: str
    token_hash: str
    created_at: datetime
    expires_at: datetime
    persistent: bool = False

    def expired(self, now: datetime) -> bool:
        return not self.persistent and self.expires_at <= now


class Sessions:
    """Every known session, by id and by token hash."""

    def __init__(self, ttl_seconds: int) -> None:
        self.ttl = timedelta(seconds=ttl_seconds)
        self._by_id: dict[str, Session] = {}
        self._by_hash: dict[str, Session] = {}

    def create(self, now: datetime) -> tuple[Session, str]:
        """A new session and its bearer token (the only time the token is known in clear)."""
        token = secrets.token_urlsafe(32)
        session = Session(
            id=secrets.token_hex(6), token_hash=token_hash(token), created_at=now, expires_at=now + self.ttl
        )
        self.add(session)
        return session, token

    def add(self, session: Session) -> None:
        self._by_id[session.id] = session
        self._by_hash[session.token_hash] = session

    def authenticate(self, token: str, now: datetime) -> Session | None:
        digest = token_hash(token)
        session = self._by_hash.get(digest)
        if session is None or not hmac.compare_digest(session.token_hash, digest) or session.expired(now):
            return None
        return session

    def get(self, session_id: str) -> Session:
        session = self._by_id.get(session_id)
        if session is None:
            raise NotFound(f"no session '{session_id}'")
        return session

    def find(self, session_id: str) -> Session | None:
        return self._by_id.get(session_id)

    def all(self) -> list[Session]:
        return sorted(self._by_id.values(), key=lambda s: s.created_at)

    def remove(self, session: Session) -> None:
        self._by_id.pop(session.id, None)
        self._by_hash.pop(session.token_hash, None)
