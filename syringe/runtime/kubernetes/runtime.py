"""KubernetesRuntime: applies plans, watches pods and jobs, lists and deletes live lessons."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
from collections.abc import AsyncIterator, Mapping
from typing import Any

from kubernetes import client, config
from kubernetes.client.rest import ApiException

from syringe.errors import RuntimeUnavailable
from syringe.plan import Plan, labels
from syringe.runtime.base import (
    EndpointObservation,
    LiveLessonRecord,
    NamespaceGone,
    NamespaceObserved,
    RuntimeEvent,
    SessionGone,
    SessionRecord,
)
from syringe.runtime.fanout import EventFanout
from syringe.runtime.kubernetes.calls import ApiCalls, describe, is_transient
from syringe.runtime.kubernetes.checking import run_checks
from syringe.runtime.kubernetes.creating import Creators, raw_body
from syringe.runtime.kubernetes.shared import (
    SESSION_KIND,
    Leadership,
    session_from_secret,
    session_secret,
    session_secret_name,
)
from syringe.runtime.kubernetes.watching import ResilientWatch
from syringe.runtime.observe import observe_job, observe_job_pod, observe_pod

log = logging.getLogger(__name__)


def api_client_from(kubeconfig: str | None, pool_size: int = 16) -> client.ApiClient:
    """A client from a kubeconfig file, or from the pod's service account when there is none.

    ``pool_size`` bounds the HTTP connections: the call pool's threads plus the long-lived watches.
    """
    configuration = client.Configuration()
    if kubeconfig:
        config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)
    else:
        config.load_incluster_config(client_configuration=configuration)
    configuration.connection_pool_maxsize = pool_size
    return client.ApiClient(configuration)


class KubernetesRuntime:
    def __init__(
        self,
        api: client.ApiClient,
        instance: str,
        max_threads: int = 8,
        apply_timeout: float = 60.0,
        lesson_role: str = "syringe-lesson",
        home_namespace: str = "syringe",
    ) -> None:
        self.lesson_role = lesson_role
        self.home_namespace = home_namespace
        self.api = api
        self.instance = instance
        self.selector = labels.instance_selector(instance)
        self.calls = ApiCalls(max_threads)
        self.apply_timeout = apply_timeout
        self.connected = False
        self._core = client.CoreV1Api(api)
        self._batch = client.BatchV1Api(api)
        self._creators = Creators(api)
        self._events = EventFanout()
        self._gone_waiters: dict[str, list[asyncio.Future[None]]] = {}
        self._service_ips: dict[tuple[str, str], str] = {}
        self._node_ports: dict[tuple[str, str], dict[int, int]] = {}
        self._watches: list[ResilientWatch] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        # Lease renewals are counted apart: they are background upkeep, not the cost of serving anything.
        self.lease_calls = ApiCalls(max_threads=1)
        self._leadership = Leadership(api, self.lease_calls, home_namespace, f"syringe-{instance}-leader")

    # ------------------------------------------------------------------ checks
    async def check(self) -> list[str]:
        return await run_checks(self.api, self.calls, self.lesson_role, self.home_namespace)

    # ------------------------------------------------------------------ apply
    async def apply(self, plan: Plan) -> None:
        deadline = asyncio.get_running_loop().time() + self.apply_timeout
        namespace_obj = plan.waves[0][0]
        await self._create_namespace(namespace_obj, deadline)
        for wave in plan.waves[1:]:
            await asyncio.gather(*(self._create(obj, deadline) for obj in wave))

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
                    self._remember_service(json.loads(response))
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

    async def create(self, objects: list[dict[str, Any]]) -> None:
        deadline = asyncio.get_running_loop().time() + self.apply_timeout
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

    async def _exists(self, obj: dict[str, Any]) -> bool:
        try:
            await self.calls("get", self._creators.reader_for(obj))
            return True
        except ApiException as exc:
            if exc.status == 404:
                return False
            raise

    # ------------------------------------------------------------------ state
    async def annotate(self, namespace: str, annotations: Mapping[str, str | None]) -> None:
        body = {"metadata": {"annotations": dict(annotations)}}
        deadline = asyncio.get_running_loop().time() + self.apply_timeout
        try:
            await self.calls.retrying("patch", deadline, raw_body, self._core.patch_namespace, namespace, body)
        except ApiException as exc:
            if exc.status != 404:
                raise RuntimeUnavailable(f"saving state of {namespace}: {describe(exc)}") from exc

    # ------------------------------------------------------------------ delete
    async def delete(self, namespace: str, timeout: float) -> bool:
        if not self._watches:
            await self.start()  # the namespace watch tells us when it is gone
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

    # ------------------------------------------------------------------ list
    async def list_live_lessons(self) -> list[LiveLessonRecord]:
        responses = await asyncio.gather(
            self.calls("list", raw_body, self._core.list_namespace, label_selector=self.selector),
            self.calls("list", raw_body, self._core.list_pod_for_all_namespaces, label_selector=self.selector),
            self.calls("list", raw_body, self._core.list_service_for_all_namespaces, label_selector=self.selector),
        )
        namespaces, pods, services = (json.loads(r).get("items") or [] for r in responses)
        for service in services:
            self._remember_service(service)
        by_namespace: dict[str, list[EndpointObservation]] = {}
        for pod in pods:
            observation = self._observe(pod)
            if observation is not None:
                by_namespace.setdefault(observation.namespace, []).append(observation)
        return [
            LiveLessonRecord(
                namespace=ns["metadata"]["name"],
                labels=dict(ns["metadata"].get("labels") or {}),
                annotations=dict(ns["metadata"].get("annotations") or {}),
                terminating=bool(ns["metadata"].get("deletionTimestamp")),
                endpoints=by_namespace.get(ns["metadata"]["name"], []),
            )
            for ns in namespaces
        ]

    def _remember_service(self, service: dict[str, Any]) -> None:
        """A Service's ClusterIP (for the cluster-ip address mode) and node ports (for exposed presentations)."""
        metadata, spec = service.get("metadata") or {}, service.get("spec") or {}
        endpoint = (metadata.get("labels") or {}).get(labels.ENDPOINT)
        if not endpoint:
            return
        key = (metadata.get("namespace") or "", endpoint)
        if (metadata.get("labels") or {}).get(labels.EXTERNAL) == "true":
            self._node_ports[key] = {p["port"]: p["nodePort"] for p in spec.get("ports") or [] if p.get("nodePort")}
        elif spec.get("clusterIP"):
            self._service_ips[key] = spec["clusterIP"]

    def _observe(self, pod: dict[str, Any]) -> EndpointObservation | None:
        metadata = pod.get("metadata") or {}
        key = (metadata.get("namespace") or "", (metadata.get("labels") or {}).get(labels.ENDPOINT, ""))
        return observe_pod(pod, self._service_ips.get(key), self._node_ports.get(key))

    # ------------------------------------------------------------------ watch
    async def start(self) -> None:
        """Start the pod, job and namespace watches; returns once each has listed what exists."""
        if self._watches:
            return
        self._loop = asyncio.get_running_loop()
        await self._ensure_home_namespace()
        count = self.calls.counts.update
        self._watches = [
            ResilientWatch(
                "pods",
                self._core.list_pod_for_all_namespaces,
                self.selector,
                self._on_pod,
                self._on_connection,
                lambda verb: count([verb]),
            ),
            ResilientWatch(
                "jobs",
                self._batch.list_job_for_all_namespaces,
                self.selector,
                self._on_job,
                None,
                lambda verb: count([verb]),
            ),
            ResilientWatch(
                "namespaces",
                self._core.list_namespace,
                self.selector,
                self._on_namespace,
                None,
                lambda verb: count([verb]),
            ),
            ResilientWatch(
                "sessions",
                functools.partial(self._core.list_namespaced_secret, self.home_namespace),
                f"{self.selector},{SESSION_KIND}=session",
                self._on_session,
                None,
                lambda verb: count([verb]),
            ),
        ]
        for w in self._watches:
            w.start()
        await asyncio.gather(*(asyncio.to_thread(w.synced.wait, 30) for w in self._watches))

    async def _ensure_home_namespace(self) -> None:
        """Sessions and the leader Lease live in Syringe's own namespace; made here when Syringe runs
        outside it (a laptop, the tests). Deployed by the manifests, it already exists."""
        try:
            await self.calls(
                "create", raw_body, self._core.create_namespace, {"metadata": {"name": self.home_namespace}}
            )
        except ApiException as exc:
            if exc.status not in (403, 409):
                raise RuntimeUnavailable(f"creating namespace {self.home_namespace}: {describe(exc)}") from exc
        except Exception as exc:
            raise RuntimeUnavailable(f"creating namespace {self.home_namespace}: {describe(exc)}") from exc

    def _emit(self, event: RuntimeEvent) -> None:
        """Called on watch threads: hop onto the event loop."""
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._dispatch, event)

    def _dispatch(self, event: RuntimeEvent) -> None:
        if isinstance(event, NamespaceGone):
            for waiter in self._gone_waiters.get(event.namespace, []):
                if not waiter.done():
                    waiter.set_result(None)
        self._events.publish(event)

    def _on_pod(self, kind: str, pod: dict[str, Any]) -> None:
        job_pod = observe_job_pod(pod)
        if job_pod is not None:
            if kind != "DELETED":
                self._emit(job_pod)
            return
        observation = self._observe(pod)
        if observation is None:
            return
        if kind == "DELETED":
            observation = EndpointObservation(observation.namespace, observation.endpoint, "Deleted")
        self._emit(observation)

    def _on_job(self, kind: str, job: dict[str, Any]) -> None:
        if kind != "DELETED":
            self._emit(observe_job(job))

    def _on_namespace(self, kind: str, namespace: dict[str, Any]) -> None:
        metadata = namespace["metadata"]
        if kind == "DELETED":
            self._emit(NamespaceGone(metadata["name"]))
            return
        record = LiveLessonRecord(
            namespace=metadata["name"],
            labels=dict(metadata.get("labels") or {}),
            annotations=dict(metadata.get("annotations") or {}),
            terminating=bool(metadata.get("deletionTimestamp")),
        )
        self._emit(NamespaceObserved(record))

    def _on_session(self, kind: str, secret: dict[str, Any]) -> None:
        if kind == "DELETED":
            session_id = (secret["metadata"].get("labels") or {}).get(labels.SESSION)
            if session_id:
                self._emit(SessionGone(session_id))
            return
        record = session_from_secret(secret)
        if record is not None:
            self._emit(record)

    # ------------------------------------------------------------------ shared state
    async def save_session(self, session: SessionRecord) -> None:
        body = session_secret(session, self.home_namespace, self.instance)
        name = body["metadata"]["name"]
        try:
            await self.calls("create", raw_body, self._core.create_namespaced_secret, self.home_namespace, body)
        except ApiException as exc:
            if exc.status != 409:
                raise RuntimeUnavailable(f"saving session {session.id}: {describe(exc)}") from exc
            await self.calls("update", raw_body, self._core.replace_namespaced_secret, name, self.home_namespace, body)

    async def find_session(self, token_hash: str) -> SessionRecord | None:
        try:
            data = await self.calls(
                "get", raw_body, self._core.read_namespaced_secret, session_secret_name(token_hash), self.home_namespace
            )
        except ApiException as exc:
            if exc.status in (403, 404):
                return None
            raise RuntimeUnavailable(f"looking up a session: {describe(exc)}") from exc
        record = session_from_secret(json.loads(data))
        return record if record is not None and record.token_hash == token_hash else None

    async def delete_session(self, session_id: str, token_hash: str) -> None:
        try:
            await self.calls(
                "delete",
                raw_body,
                self._core.delete_namespaced_secret,
                session_secret_name(token_hash),
                self.home_namespace,
            )
        except ApiException as exc:
            if exc.status != 404:
                raise RuntimeUnavailable(f"deleting session {session_id}: {describe(exc)}") from exc

    async def try_lead(self, identity: str, duration: float) -> bool:
        return await self._leadership.try_lead(identity, duration)

    def _on_connection(self, connected: bool) -> None:
        self.connected = connected

    def events(self) -> AsyncIterator[RuntimeEvent]:
        return self._events.subscribe()

    async def close(self) -> None:
        for w in self._watches:
            w.stop()
        self.calls.shutdown()
        self.lease_calls.shutdown()
        with contextlib.suppress(Exception):
            await asyncio.to_thread(self.api.close)
