"""KubernetesRuntime: the runtime protocol on a cluster, as a façade over one module per job: applying,
deleting, listing, reporting (the watches), addressing, sessions and leadership."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from typing import Any

from kubernetes import client
from kubernetes.client.rest import ApiException

from syringe.errors import RuntimeUnavailable
from syringe.learners import LearnerSession
from syringe.plan import Plan, labels
from syringe.runtime.base import LiveLessonRecord, RuntimeEvent
from syringe.runtime.kubernetes.addressing import Addresses
from syringe.runtime.kubernetes.applying import Applier
from syringe.runtime.kubernetes.calls import ApiCalls, describe
from syringe.runtime.kubernetes.checking import run_checks
from syringe.runtime.kubernetes.creating import raw_body
from syringe.runtime.kubernetes.deleting import Deletions
from syringe.runtime.kubernetes.leadership import Leadership
from syringe.runtime.kubernetes.listing import list_live_lessons
from syringe.runtime.kubernetes.reporting import Reports
from syringe.runtime.kubernetes.sessions import SessionSecrets
from syringe.settings import KubernetesSettings


class KubernetesRuntime:
    """Live lessons as namespaces of one cluster. Also shares learner sessions and leadership between replicas
    (``SessionStore``, ``SharedState``), counts its API calls and reports whether it reaches the API server."""

    def __init__(
        self,
        api: client.ApiClient,
        instance: str,
        settings: KubernetesSettings | None = None,
        apply_timeout: float = 60.0,
        lesson_role: str = "syringe-lesson",
        home_namespace: str = "syringe",
    ) -> None:
        self.settings = settings or KubernetesSettings()
        max_threads = self.settings.api_threads
        self.lesson_role = lesson_role
        self.home_namespace = home_namespace
        self.api = api
        self.instance = instance
        self.selector = labels.instance_selector(instance)
        self.calls = ApiCalls(max_threads)
        self.apply_timeout = apply_timeout
        self.connected = False
        self._core = client.CoreV1Api(api)
        self._addresses = Addresses(self.settings)
        self._applier = Applier(api, self.calls, instance, apply_timeout, self._addresses)
        self._deletions = Deletions(api, self.calls)
        self._reports = Reports(
            api, self.calls, self.selector, home_namespace, self._addresses, self._on_connection, self._deletions.gone
        )
        self._sessions = SessionSecrets(api, self.calls, home_namespace, instance)
        # Lease renewals are counted apart: they are background upkeep, not the cost of serving anything.
        self.lease_calls = ApiCalls(max_threads=1)
        self._leadership = Leadership(api, self.lease_calls, home_namespace, f"syringe-{instance}-leader")

    # ------------------------------------------------------------------ the runtime protocol
    async def check(self) -> list[str]:
        return await run_checks(self.api, self.calls, self.lesson_role, self.home_namespace)

    async def start(self) -> None:
        """Start the pod, job, namespace and session watches; returns once each has listed what exists."""
        if self._reports.started:
            return
        await self._ensure_home_namespace()
        await self._reports.start()

    async def apply(self, plan: Plan) -> None:
        await self._applier.apply(plan)

    async def create(self, objects: list[dict[str, Any]]) -> None:
        await self._applier.create(objects)

    async def delete_jobs(self, namespace: str, label_selector: str) -> None:
        await self._applier.delete_jobs(namespace, label_selector)

    async def annotate(self, namespace: str, annotations: Mapping[str, str | None]) -> None:
        await self._applier.annotate(namespace, annotations)

    async def delete(self, namespace: str, timeout: float) -> bool:
        if not self._reports.started:
            await self.start()  # the namespace watch tells us when it is gone
        return await self._deletions.delete(namespace, timeout)

    async def list_live_lessons(self) -> list[LiveLessonRecord]:
        return await list_live_lessons(self.api, self.calls, self.selector, self._addresses)

    def events(self) -> AsyncIterator[RuntimeEvent]:
        return self._reports.events()

    async def close(self) -> None:
        self._reports.stop()
        self.calls.shutdown()
        self.lease_calls.shutdown()
        with contextlib.suppress(Exception):
            await asyncio.to_thread(self.api.close)

    # ------------------------------------------------------------------ shared state (SessionStore, SharedState)
    async def save_session(self, session: LearnerSession) -> None:
        await self._sessions.save(session)

    async def find_session(self, token_hash: str) -> LearnerSession | None:
        return await self._sessions.find(token_hash)

    async def delete_session(self, session_id: str, token_hash: str) -> None:
        await self._sessions.delete(session_id, token_hash)

    async def try_lead(self, identity: str, duration: float) -> bool:
        return await self._leadership.try_lead(identity, duration)

    # ------------------------------------------------------------------ CountsCalls, ReportsConnection
    def call_counts(self) -> dict[str, dict[str, int]]:
        """API calls by verb; lease renewals apart, as background upkeep rather than the cost of serving."""
        return {"api": dict(self.calls.counts), "lease": dict(self.lease_calls.counts)}

    def _on_connection(self, connected: bool) -> None:
        self.connected = connected

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
