"""Applying: a plan's objects created wave by wave (the namespace first), idempotently, with retries; objects
added to a live lesson later (configuration Jobs); Jobs stopped; state annotated on the namespace."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import Any

from kubernetes import client
from kubernetes.client.rest import ApiException

from syringe.errors import RuntimeUnavailable
from syringe.plan import Plan, labels
from syringe.runtime.kubernetes.addressing import Addresses
from syringe.runtime.kubernetes.calls import ApiCalls, describe
from syringe.runtime.kubernetes.creating import Creators, raw_body


class Applier:
    """Creates, patches and removes the objects of the live lessons of one instance. Every call that creates
    or patches keeps retrying transient failures for ``timeout`` seconds."""

    def __init__(
        self, api: client.ApiClient, calls: ApiCalls, instance: str, timeout: float, addresses: Addresses
    ) -> None:
        self.calls = calls
        self.instance = instance
        self.timeout = timeout
        self._addresses = addresses
        self._core = client.CoreV1Api(api)
        self._batch = client.BatchV1Api(api)
        self._creators = Creators(api)

    async def apply(self, plan: Plan) -> None:
        deadline = asyncio.get_running_loop().time() + self.timeout
        namespace_obj = plan.waves[0][0]
        await self._create_namespace(namespace_obj, deadline)
        for wave in plan.waves[1:]:
            await asyncio.gather(*(self._create(obj, deadline) for obj in wave))

    async def create(self, objects: list[dict[str, Any]]) -> None:
        deadline = asyncio.get_running_loop().time() + self.timeout
        await asyncio.gather(*(self._create(obj, deadline) for obj in objects))

    async def delete_jobs(self, namespace: str, label_selector: str) -> None:
        try:
            await self.calls(
                "delete",
                raw_body,
                self._batch.delete_collection_namespaced_job,
                namespace,
                label_selector=label_selector,
                propagation_policy="Background",
            )
        except ApiException as exc:
            if exc.status != 404:
                raise RuntimeUnavailable(f"stopping the Jobs of {namespace}: {describe(exc)}") from exc

    async def annotate(self, namespace: str, annotations: Mapping[str, str | None]) -> None:
        body = {"metadata": {"annotations": dict(annotations)}}
        deadline = asyncio.get_running_loop().time() + self.timeout
        try:
            await self.calls.retrying("patch", deadline, raw_body, self._core.patch_namespace, namespace, body)
        except ApiException as exc:
            if exc.status != 404:
                raise RuntimeUnavailable(f"saving state of {namespace}: {describe(exc)}") from exc

    async def _create_namespace(self, obj: dict[str, Any], deadline: float) -> None:
        name = obj["metadata"]["name"]
        try:
            await self.calls.retrying("create", deadline, self._creators.for_object(obj))
        except ApiException as exc:
            if exc.status != 409:
                raise RuntimeUnavailable(f"creating namespace {name}: {describe(exc)}") from exc
            try:
                existing = await self.calls.retrying("get", deadline, self._core.read_namespace, name)
            except ApiException as read_error:
                # Syringe may read only the namespaces whose RoleBinding grants it: this one is someone else's.
                raise RuntimeUnavailable(f"namespace {name} exists and is not managed by this Syringe") from read_error
            if existing.metadata.deletion_timestamp:
                raise RuntimeUnavailable(f"namespace {name} is still being deleted; try again shortly") from exc
            owner = (existing.metadata.labels or {}).get(labels.INSTANCE)
            if owner != self.instance:
                raise RuntimeUnavailable(f"namespace {name} exists and is not managed by this Syringe") from exc
        except Exception as exc:
            raise RuntimeUnavailable(f"creating namespace {name}: {describe(exc)}") from exc

    async def _create(self, obj: dict[str, Any], deadline: float) -> None:
        kind, name = obj["kind"], obj["metadata"]["name"]
        create = self._creators.for_object(obj)
        delay = 0.2
        while True:
            try:
                response = await self.calls.retrying("create", deadline, create)
                if kind == "Service":
                    self._addresses.remember(json.loads(response))
                return
            except ApiException as exc:
                if exc.status == 409:
                    return  # already there: applying is idempotent
                if exc.status == 403 and "exceeded quota" in (exc.body or "") and await self._exists(obj):
                    return  # on a re-apply, the quota refuses what is already there before the name clash
                # Clusters with ServiceAccount admission refuse pods until the namespace's default
                # service account exists, a moment after the namespace.
                waiting_for_account = exc.status == 403 and "serviceaccount" in (exc.body or "")
                loop_time = asyncio.get_running_loop().time()
                if waiting_for_account and loop_time + delay < deadline:
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 2.0)
                    continue
                raise RuntimeUnavailable(f"creating {kind} {name}: {describe(exc)}") from exc
            except Exception as exc:
                raise RuntimeUnavailable(f"creating {kind} {name}: {describe(exc)}") from exc

    async def _exists(self, obj: dict[str, Any]) -> bool:
        try:
            await self.calls("get", self._creators.reader_for(obj))
            return True
        except ApiException as exc:
            if exc.status == 404:
                return False
            raise
