"""An API server that does not answer in time is the cluster being unavailable: session calls say so (a
503 to the learner), never let the client's own exception through as a 500. Seen on the real node: a
30 s read timeout while creating a session's Secret under load."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import urllib3
from kubernetes import client

from syringe.errors import RuntimeUnavailable
from syringe.learners import LearnerSession
from syringe.runtime.kubernetes.sessions import SessionSecrets


class Unanswered:
    """Stands in for ApiCalls: every call ends as the client's read timeout does."""

    async def __call__(self, verb: str, *args: Any, **kwargs: Any) -> Any:
        raise urllib3.exceptions.ReadTimeoutError(None, "/api/v1/namespaces/x/secrets", "Read timed out.")


async def test_a_read_timeout_is_the_cluster_unavailable_for_every_session_call() -> None:
    store = SessionSecrets(client.ApiClient(), Unanswered(), "syringe", "test")  # type: ignore[arg-type]
    now = datetime(2026, 1, 1, tzinfo=UTC)
    session = LearnerSession(id="s1", token_hash="h" * 64, created_at=now, expires_at=now)
    for call in (store.save(session), store.find("h" * 64), store.delete("s1", "h" * 64)):
        with pytest.raises(RuntimeUnavailable, match="Read timed out"):
            await call
