"""Deleting: a live lesson's namespace deleted, then waited for until the namespace watch reports it gone
(no polling)."""

from __future__ import annotations

import asyncio

from kubernetes import client
from kubernetes.client.rest import ApiException

from syringe.errors import RuntimeUnavailable
from syringe.runtime.kubernetes.calls import ApiCalls, describe, is_transient


class Deletions:
    """Deletes namespaces; ``gone`` (called on the event loop when the watch sees one vanish) ends the wait."""

    def __init__(self, api: client.ApiClient, calls: ApiCalls) -> None:
        self.calls = calls
        self._core = client.CoreV1Api(api)
        self._gone_waiters: dict[str, list[asyncio.Future[None]]] = {}

    def gone(self, namespace: str) -> None:
        for waiter in self._gone_waiters.get(namespace, []):
            if not waiter.done():
                waiter.set_result(None)

    async def delete(self, namespace: str, timeout: float) -> bool:
        """Needs the namespace watch running. False when ``timeout`` passed before the namespace was gone."""
        loop = asyncio.get_running_loop()
        gone: asyncio.Future[None] = loop.create_future()
        self._gone_waiters.setdefault(namespace, []).append(gone)
        deadline = loop.time() + timeout
        try:
            try:
                await self.calls.retrying(
                    "delete", deadline, self._core.delete_namespace, namespace, propagation_policy="Background"
                )
            except ApiException as exc:
                if exc.status == 404:
                    return True
                raise RuntimeUnavailable(f"deleting {namespace}: {describe(exc)}") from exc
            except Exception as exc:
                if is_transient(exc):
                    return False
                raise
            # Already finished before the watch could tell us?
            try:
                await self.calls("get", self._core.read_namespace, namespace)
            except ApiException as exc:
                if exc.status == 404:
                    return True
                # 403: the namespace's RoleBinding is already gone with it; the watch will tell us.
            except Exception:  # noqa: BLE001 - the watch will tell us
                pass
            try:
                await asyncio.wait_for(asyncio.shield(gone), max(0.0, deadline - loop.time()))
                return True
            except TimeoutError:
                return False
        finally:
            waiters = self._gone_waiters.get(namespace, [])
            if gone in waiters:
                waiters.remove(gone)
            if not waiters:
                self._gone_waiters.pop(namespace, None)
