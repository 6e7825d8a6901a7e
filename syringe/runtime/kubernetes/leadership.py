"""Leadership: leader election among replicas on a coordination.k8s.io Lease in Syringe's own namespace."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from kubernetes import client
from kubernetes.client.rest import ApiException

from syringe.runtime.kubernetes.calls import ApiCalls


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
