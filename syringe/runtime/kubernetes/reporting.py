"""Reporting: the instance's pods, Jobs, namespaces and session Secrets, watched, turned into runtime events
and handed from the watch threads to the event loop, where every subscriber of ``events()`` gets them."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Callable
from typing import Any

from kubernetes import client

from syringe.runtime.base import EndpointObservation, NamespaceGone, NamespaceObserved, RuntimeEvent
from syringe.runtime.fanout import EventFanout
from syringe.runtime.kubernetes.addressing import Addresses
from syringe.runtime.kubernetes.calls import ApiCalls
from syringe.runtime.kubernetes.following import DoneLineFollower
from syringe.runtime.kubernetes.observing import observe_job, observe_job_pod, observe_namespace
from syringe.runtime.kubernetes.sessions import SESSION_SELECTOR, session_event
from syringe.runtime.kubernetes.watching import ResilientWatch


class Reports:
    """Four watches (each on its own thread) and the events they report, and the configuration Jobs' done
    lines (following.py).

    ``on_connection`` hears whether the pod watch reaches the API server; ``on_gone`` hears of a namespace
    gone (on the event loop, before subscribers do).
    """

    def __init__(
        self,
        api: client.ApiClient,
        calls: ApiCalls,
        selector: str,
        home_namespace: str,
        addresses: Addresses,
        on_connection: Callable[[bool], None],
        on_gone: Callable[[str], None],
    ) -> None:
        self._core = client.CoreV1Api(api)
        self._batch = client.BatchV1Api(api)
        self._calls = calls
        self._selector = selector
        self._home_namespace = home_namespace
        self._addresses = addresses
        self._on_connection = on_connection
        self._on_gone = on_gone
        self._events = EventFanout()
        self._watches: list[ResilientWatch] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._done_lines = DoneLineFollower(self._core, self._emit, lambda verb: calls.counts.update([verb]))

    @property
    def started(self) -> bool:
        return bool(self._watches)

    async def start(self) -> None:
        """Start the watches; returns once each has listed what exists."""
        self._loop = asyncio.get_running_loop()
        count = self._calls.counts.update
        self._watches = [
            ResilientWatch(
                "pods",
                self._core.list_pod_for_all_namespaces,
                self._selector,
                self._on_pod,
                self._on_connection,
                lambda verb: count([verb]),
            ),
            ResilientWatch(
                "jobs",
                self._batch.list_job_for_all_namespaces,
                self._selector,
                self._on_job,
                None,
                lambda verb: count([verb]),
            ),
            ResilientWatch(
                "namespaces",
                self._core.list_namespace,
                self._selector,
                self._on_namespace,
                None,
                lambda verb: count([verb]),
            ),
            ResilientWatch(
                "sessions",
                functools.partial(self._core.list_namespaced_secret, self._home_namespace),
                f"{self._selector},{SESSION_SELECTOR}",
                self._on_session,
                None,
                lambda verb: count([verb]),
            ),
        ]
        for w in self._watches:
            w.start()
        await asyncio.gather(*(asyncio.to_thread(w.synced.wait, 30) for w in self._watches))

    def stop(self) -> None:
        for w in self._watches:
            w.stop()
        self._done_lines.stop()

    def events(self) -> AsyncIterator[RuntimeEvent]:
        return self._events.subscribe()

    def _emit(self, event: RuntimeEvent) -> None:
        """Called on watch threads: hop onto the event loop."""
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._dispatch, event)

    def _dispatch(self, event: RuntimeEvent) -> None:
        if isinstance(event, NamespaceGone):
            self._on_gone(event.namespace)
        self._events.publish(event)

    def _on_pod(self, kind: str, pod: dict[str, Any]) -> None:
        job_pod = observe_job_pod(pod)
        if job_pod is not None:
            if kind != "DELETED":
                self._emit(job_pod)
            self._done_lines.observe(kind, pod, job_pod.job)
            return
        observation = self._addresses.observe(pod)
        if observation is None:
            return
        if kind == "DELETED":
            observation = EndpointObservation(observation.namespace, observation.endpoint, "Deleted")
        self._emit(observation)

    def _on_job(self, kind: str, job: dict[str, Any]) -> None:
        if kind != "DELETED":
            self._emit(observe_job(job))

    def _on_namespace(self, kind: str, namespace: dict[str, Any]) -> None:
        if kind == "DELETED":
            self._emit(NamespaceGone(namespace["metadata"]["name"]))
            return
        self._emit(NamespaceObserved(observe_namespace(namespace)))

    def _on_session(self, kind: str, secret: dict[str, Any]) -> None:
        event = session_event(kind, secret)
        if event is not None:
            self._emit(event)
