"""Following a configuration Job's log for its done line (plan.jobenv.done_line), so that the Job is reported
succeeded as the configurator writes that line: its pod's status says so only once the kubelet has noticed
the container exited (on its next relist, up to a second later) and the status has come through the API
server and the pod watch. On a lesson whose stage waits for its Jobs, that second is most of what a launch
or a stage change costs beyond the endpoints' own work.

The official client's log stream blocks: each followed pod has a thread, at most ``limit`` at once. A pod
beyond that, a stream that fails, or one silent for ``silence`` seconds is left to the pod's status, which
still reports every end (and the only word on a failure). A stream's bytes are scanned, never kept: at most
one line's worth (``LINE_LIMIT``) is held, and a longer line is skipped.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from typing import Any

from kubernetes import client

from syringe.plan import jobenv
from syringe.runtime.base import JobPodObservation

log = logging.getLogger(__name__)

LINE_LIMIT = 4096


class LineScanner:
    """Fed a stream's bytes in chunks, says when a whole line equal to ``wanted`` has gone by."""

    def __init__(self, wanted: str, limit: int = LINE_LIMIT) -> None:
        self._wanted = wanted.encode()
        self._limit = limit
        self._line = bytearray()
        self._overlong = False

    def feed(self, chunk: bytes) -> bool:
        for piece in chunk.splitlines(keepends=True):
            ended = piece.endswith((b"\n", b"\r"))
            body = piece.rstrip(b"\r\n")
            if not self._overlong:
                if len(self._line) + len(body) > self._limit:
                    self._overlong, self._line = True, bytearray()
                else:
                    self._line += body
            if ended:
                if not self._overlong and bytes(self._line) == self._wanted:
                    return True
                self._line, self._overlong = bytearray(), False
        return False


def done_token(pod: dict[str, Any]) -> tuple[str, str] | None:
    """(container, token) of a Job pod whose container was given a done token, else None."""
    for container in (pod.get("spec") or {}).get("containers") or []:
        for variable in container.get("env") or []:
            if variable.get("name") == jobenv.DONE_TOKEN and variable.get("value"):
                return str(container.get("name")), str(variable["value"])
    return None


def container_running(pod: dict[str, Any], container: str) -> bool:
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    return any(s.get("name") == container and (s.get("state") or {}).get("running") is not None for s in statuses)


class DoneLineFollower:
    """Starts a follower thread for each running configuration Job pod that has a done token, once."""

    def __init__(
        self,
        core: client.CoreV1Api,
        emit: Callable[[JobPodObservation], None],
        count: Callable[[str], None],
        limit: int = 32,
        silence: float = 120.0,
    ) -> None:
        self._core = core
        self._emit = emit
        self._count = count
        self._slots = threading.BoundedSemaphore(limit)
        self._silence = silence
        self._lock = threading.Lock()
        self._followed: set[tuple[str, str]] = set()
        self._streams: dict[tuple[str, str], Any] = {}
        self._stopped = False

    def observe(self, kind: str, pod: dict[str, Any], job: str) -> None:
        """A configuration Job pod's event from the pod watch (on its thread)."""
        metadata = pod.get("metadata") or {}
        key = (str(metadata.get("namespace")), str(metadata.get("name")))
        if kind == "DELETED":
            with self._lock:
                self._followed.discard(key)
            return
        wanted = done_token(pod)
        if wanted is None or not container_running(pod, wanted[0]):
            return
        with self._lock:
            if self._stopped or key in self._followed:
                return
            if not self._slots.acquire(blocking=False):
                return  # the pod's status will do
            self._followed.add(key)
        thread = threading.Thread(
            target=self._follow, args=(key, job, *wanted), name=f"follow-{key[1]}"[:60], daemon=True
        )
        thread.start()

    def _follow(self, key: tuple[str, str], job: str, container: str, token: str) -> None:
        namespace, name = key
        scanner = LineScanner(jobenv.done_line(token))
        stream = None
        try:
            self._count("log")
            stream = self._core.read_namespaced_pod_log(
                name,
                namespace,
                container=container,
                follow=True,
                _preload_content=False,
                _request_timeout=(10, self._silence),
            )
            with self._lock:
                if self._stopped:
                    return
                self._streams[key] = stream
            for chunk in stream.stream(LINE_LIMIT, decode_content=False):
                if scanner.feed(chunk):
                    self._emit(JobPodObservation(namespace, job, "Running", said_done=True))
                    return
        except Exception as exc:  # noqa: BLE001 - any failure leaves the Job to its pod's status
            log.debug("following %s/%s's log: %s", namespace, name, exc)
        finally:
            with self._lock:
                self._streams.pop(key, None)
            if stream is not None:
                # Closed, not just released: a stream left before its end still has log bytes in flight,
                # and a connection handed back to the pool with them would feed them to the next API call.
                with contextlib.suppress(Exception):
                    stream.close()
                stream.release_conn()
            self._slots.release()

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            streams = list(self._streams.values())
        for stream in streams:
            # Closing a stream that another thread reads may raise there or here; either way it ends.
            with contextlib.suppress(Exception):
                stream.close()
