"""A learner session as every part of Syringe sees it: in memory, in the cluster, in events. Pure."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime


def token_hash(token: str) -> str:
    """Tokens are kept, stored and compared only as their SHA-256."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class LearnerSession:
    id: str
    token_hash: str
    created_at: datetime
    expires_at: datetime
    persistent: bool = False  # an operator kept it: neither it nor its live lessons expire

    def expired(self, now: datetime) -> bool:
        return not self.persistent and self.expires_at <= now


@dataclass(frozen=True)
class SessionGone:
    """A session was removed from the shared store (by any replica)."""

    id: str
