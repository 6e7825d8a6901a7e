"""An API server that does not answer in time: session calls try again on another connection, and if the
cluster stays silent they say it is unavailable (a 503 to the learner), never letting the client's own
exception through as a 500. Seen on the real node: a 30 s read timeout while creating a session's Secret
under load, when the next request went through."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import urllib3
from kubernetes import client

from syringe.errors import RuntimeUnavailable
from syringe.learners import LearnerSession
from syringe.runtime.kubernetes import sessions
from syringe.runtime.kubernetes.calls import ApiCalls
from syringe.runtime.kubernetes.sessions import SessionSecrets

NOW = datetime(2026, 1, 1, tzinfo=UTC)
SESSION = LearnerSession(id="s1", token_hash="h" * 64, created_at=NOW, expires_at=NOW)


class Answer:
    data = b"{}"

    def release_conn(self) -> None:
        pass


class Core:
    """The client's Secret calls: the first ``silent`` calls end as a read timeout does, then they answer."""

    def __init__(self, silent: int) -> None:
        self.silent = silent
        self.calls = 0

    def _call(self, *args: Any, **kwargs: Any) -> Answer:
        self.calls += 1
        if self.calls <= self.silent:
            raise urllib3.exceptions.ReadTimeoutError(None, "/api/v1/namespaces/x/secrets", "Read timed out.")
        return Answer()

    create_namespaced_secret = read_namespaced_secret = delete_namespaced_secret = _call


def store(core: Core) -> SessionSecrets:
    secrets = SessionSecrets(client.ApiClient(), ApiCalls(max_threads=2), "syringe", "test")
    secrets._core = core  # type: ignore[assignment]
    return secrets


async def test_a_silent_attempt_is_tried_again_and_the_session_saved() -> None:
    core = Core(silent=1)
    await store(core).save(SESSION)
    assert core.calls == 2


async def test_a_cluster_that_stays_silent_is_unavailable_for_every_session_call(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sessions, "DEADLINE_SECONDS", 0.5)
    secrets = store(Core(silent=10**6))
    for call in (secrets.save(SESSION), secrets.find("h" * 64), secrets.delete("s1", "h" * 64)):
        with pytest.raises(RuntimeUnavailable, match="Read timed out"):
            await call
