"""What replicas share through the cluster: learner sessions (as Secrets) and leadership (a Lease), both in
Syringe's own namespace."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from typing import Any

from kubernetes import client
from kubernetes.client.rest import ApiException

from syringe.plan import labels
from syringe.runtime.base import SessionRecord
from syringe.runtime.kubernetes.calls import ApiCalls

SESSION_KIND = "syringe.io/kind"


def session_secret_name(token_hash: str) -> str:
    """Named by the token's hash, so a replica that has not yet heard of a session can still look it up."""
    return f"syringe-session-{token_hash[:32]}"


def session_secret(record: SessionRecord, namespace: str, instance: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": session_secret_name(record.token_hash),
            "namespace": namespace,
            "labels": {
                labels.MANAGED_BY: labels.MANAGED_BY_VALUE,
                labels.INSTANCE: instance,
                SESSION_KIND: "session",
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


def session_from_secret(secret: dict[str, Any]) -> SessionRecord | None:
    data = {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}
    session_id = (secret.get("metadata", {}).get("labels") or {}).get(labels.SESSION)
    try:
        return SessionRecord(
            id=session_id or "",
            token_hash=data["tokenSha256"],
            created_at=datetime.fromisoformat(data["createdAt"]),
            expires_at=datetime.fromisoformat(data["expiresAt"]),
            persistent=data.get("persistent") == "true",
        )
    except (KeyError, ValueError):
        return None


class Leadership:
    """Leader election on a coordination.k8s.io Lease: hold it by renewing, take it when it lapses."""

    def __init__(self, api: client.ApiClient, calls: ApiCalls, namespace: str, name: str) -> None:
        self.leases = client.CoordinationV1Api(api)
        self.calls = calls
        self.namespace = namespace
        self.name = name

    async def try_lead(self, identity: str, duration: float) -> bool:
        now = datetime.now(UTC)
        spec = {
            "holderIdentity": identity,
            "leaseDurationSeconds": max(1, round(duration)),
            "renewTime": now.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        }
        try:
            lease = await self.calls("get", self.leases.read_namespaced_lease, self.name, self.namespace)
        except ApiException as exc:
            if exc.status != 404:
                raise
            body = {
                "metadata": {"name": self.name, "namespace": self.namespace},
                "spec": {**spec, "acquireTime": spec["renewTime"], "leaseTransitions": 0},
            }
            try:
                await self.calls("create", self.leases.create_namespaced_lease, self.namespace, body)
                return True
            except ApiException as race:
                if race.status == 409:
                    return False
                raise
        holder = lease.spec.holder_identity
        renewed = lease.spec.renew_time
        lapsed = renewed is None or renewed + timedelta(seconds=lease.spec.lease_duration_seconds or 0) < now
        if holder != identity and not lapsed:
            return False
        lease.spec.holder_identity = identity
        lease.spec.lease_duration_seconds = spec["leaseDurationSeconds"]
        lease.spec.renew_time = now
        if holder != identity:
            lease.spec.acquire_time = now
            lease.spec.lease_transitions = (lease.spec.lease_transitions or 0) + 1
        try:
            # The read's resourceVersion makes this a compare-and-swap: of two replicas taking a lapsed
            # lease at once, one gets 409.
            await self.calls("update", self.leases.replace_namespaced_lease, self.name, self.namespace, lease)
            return True
        except ApiException as exc:
            if exc.status == 409:
                return False
            raise
