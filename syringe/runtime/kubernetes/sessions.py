"""Learner sessions as Secrets in Syringe's own namespace, shared by every replica: the codecs (a session to a
Secret and back, a watched Secret to a runtime event) and the calls that save, find and delete them."""

from __future__ import annotations

import asyncio
import base64
import json
from datetime import datetime
from typing import Any

import urllib3
from kubernetes import client
from kubernetes.client.rest import ApiException

from syringe.errors import RuntimeUnavailable
from syringe.learners import LearnerSession, SessionGone
from syringe.plan import labels
from syringe.runtime.kubernetes.calls import ApiCalls, describe
from syringe.runtime.kubernetes.creating import raw_body

# Selects session Secrets (among the instance's objects): the label session_secret gives them.
SESSION_SELECTOR = f"{labels.SESSION_KIND}=session"


def session_secret_name(token_hash: str) -> str:
    """Named by the token's hash, so a replica that has not yet heard of a session can still look it up."""
    return f"syringe-session-{token_hash[:32]}"


def session_secret(record: LearnerSession, namespace: str, instance: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": session_secret_name(record.token_hash),
            "namespace": namespace,
            "labels": {
                labels.MANAGED_BY: labels.MANAGED_BY_VALUE,
                labels.INSTANCE: instance,
                labels.SESSION_KIND: "session",
                labels.SESSION: record.id,
            },
        },
        "type": "Opaque",
        "stringData": {
            "tokenSha256": record.token_hash,
            "createdAt": record.created_at.isoformat(),
            "expiresAt": record.expires_at.isoformat(),
            "persistent": "true" if record.persistent else "false",
        },
    }


def session_from_secret(secret: dict[str, Any]) -> LearnerSession | None:
    data = {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}
    session_id = (secret.get("metadata", {}).get("labels") or {}).get(labels.SESSION)
    try:
        return LearnerSession(
            id=session_id or "",
            token_hash=data["tokenSha256"],
            created_at=datetime.fromisoformat(data["createdAt"]),
            expires_at=datetime.fromisoformat(data["expiresAt"]),
            persistent=data.get("persistent") == "true",
        )
    except (KeyError, ValueError):
        return None


def session_event(kind: str, secret: dict[str, Any]) -> LearnerSession | SessionGone | None:
    """A watched session Secret as a runtime event: the session as it now is, or gone. None: unreadable."""
    if kind == "DELETED":
        session_id = (secret["metadata"].get("labels") or {}).get(labels.SESSION)
        return SessionGone(session_id) if session_id else None
    return session_from_secret(secret)


# What a call to the API server can end in besides an answer: an error status, or none in time (the
# client's read timeout, a refused or reset connection). Each is the cluster being unavailable: a 503 to
# the learner, never a 500.
UNANSWERED = (ApiException, urllib3.exceptions.HTTPError, OSError)
# A learner waits on these calls. An attempt that hears nothing for ATTEMPT_SECONDS is given up and tried
# again on another connection, until DEADLINE_SECONDS: on the real node a request sometimes met no answer
# at all for the client's whole 30 s read timeout, and the next request went through.
ATTEMPT_SECONDS = 10.0
DEADLINE_SECONDS = 40.0


class SessionSecrets:
    """Saves, finds and deletes learner sessions' Secrets (the ``syringe.learners.SessionStore`` calls)."""

    def __init__(self, api: client.ApiClient, calls: ApiCalls, namespace: str, instance: str) -> None:
        self._core = client.CoreV1Api(api)
        self._calls = calls
        self._namespace = namespace
        self._instance = instance

    async def save(self, session: LearnerSession) -> None:
        body = session_secret(session, self._namespace, self._instance)
        name = body["metadata"]["name"]
        try:
            try:
                await self._retrying("create", self._core.create_namespaced_secret, self._namespace, body)
            except ApiException as exc:
                if exc.status != 409:
                    raise
                await self._retrying("update", self._core.replace_namespaced_secret, name, self._namespace, body)
        except UNANSWERED as exc:
            raise RuntimeUnavailable(f"saving session {session.id}: {describe(exc)}") from exc

    async def _retrying(self, verb: str, function: Any, *args: Any) -> bytes:
        deadline = asyncio.get_running_loop().time() + DEADLINE_SECONDS
        return await self._calls.retrying(verb, deadline, raw_body, function, *args, _request_timeout=ATTEMPT_SECONDS)

    async def find(self, token_hash: str) -> LearnerSession | None:
        try:
            data = await self._retrying(
                "get", self._core.read_namespaced_secret, session_secret_name(token_hash), self._namespace
            )
        except UNANSWERED as exc:
            if isinstance(exc, ApiException) and exc.status in (403, 404):
                return None
            raise RuntimeUnavailable(f"looking up a session: {describe(exc)}") from exc
        record = session_from_secret(json.loads(data))
        return record if record is not None and record.token_hash == token_hash else None

    async def delete(self, session_id: str, token_hash: str) -> None:
        try:
            await self._calls(
                "delete",
                raw_body,
                self._core.delete_namespaced_secret,
                session_secret_name(token_hash),
                self._namespace,
            )
        except UNANSWERED as exc:
            if not (isinstance(exc, ApiException) and exc.status == 404):
                raise RuntimeUnavailable(f"deleting session {session_id}: {describe(exc)}") from exc
