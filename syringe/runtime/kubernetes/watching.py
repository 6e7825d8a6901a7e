"""Watches that survive: relist on 410 Gone, reconnect with backoff when the API server goes away.

Each watch runs in its own thread (the official client's watch blocks) and hands every event to a
callback as ("ADDED" | "MODIFIED" | "DELETED", object), the object as the API server's JSON. After a
relist, objects that vanished while the watch was down are reported as DELETED, so nothing is missed
across an outage.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from typing import Any

from kubernetes import watch
from kubernetes.client.rest import ApiException

from syringe.runtime.kubernetes.creating import raw_body

log = logging.getLogger(__name__)

Handler = Callable[[str, Any], None]


def _key(obj: dict[str, Any]) -> tuple[str, str]:
    metadata = obj.get("metadata") or {}
    return (metadata.get("namespace") or "", metadata.get("name") or "")


def _version(obj: dict[str, Any]) -> str | None:
    version: str | None = (obj.get("metadata") or {}).get("resourceVersion")
    return version


class ResilientWatch:
    def __init__(
        self,
        name: str,
        list_function: Callable[..., Any],
        label_selector: str,
        handler: Handler,
        on_state: Callable[[bool], None] | None = None,
        count: Callable[[str], None] | None = None,
    ) -> None:
        self.name = name
        self._list = list_function
        self._selector = label_selector
        self._handler = handler
        self._on_state = on_state or (lambda connected: None)
        self._count = count or (lambda verb: None)
        self._stop = threading.Event()
        self._watch: watch.Watch | None = None
        self._thread = threading.Thread(target=self._run, name=f"watch-{name}", daemon=True)
        self._known: dict[tuple[str, str], Any] = {}
        self.synced = threading.Event()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._watch is not None:
            self._watch.stop()

    def _relist(self) -> str:
        self._count("list")
        listing = json.loads(raw_body(self._list, label_selector=self._selector, _request_timeout=30))
        seen = {}
        for item in listing.get("items") or []:
            key = _key(item)
            seen[key] = item
            self._handler("MODIFIED" if key in self._known else "ADDED", item)
        for key, item in self._known.items():
            if key not in seen:
                self._handler("DELETED", item)
        self._known = seen
        self.synced.set()
        version: str = listing["metadata"]["resourceVersion"]
        return version

    def _run(self) -> None:
        backoff = 0.2
        version: str | None = None
        while not self._stop.is_set():
            try:
                if version is None:
                    version = self._relist()
                    self._on_state(True)
                self._watch = watch.Watch()
                self._count("watch")
                for event in self._watch.stream(
                    self._list,
                    label_selector=self._selector,
                    resource_version=version,
                    timeout_seconds=300,
                    allow_watch_bookmarks=True,
                    _request_timeout=330,
                    deserialize=False,
                ):
                    if self._stop.is_set():
                        return
                    kind, obj = event["type"], event["object"]
                    if kind == "ERROR":
                        version = None  # typically 410 Gone: start over from a fresh list
                        break
                    if kind == "BOOKMARK":
                        version = _version(obj) or version
                        continue
                    version = _version(obj) or version
                    if kind == "DELETED":
                        self._known.pop(_key(obj), None)
                    else:
                        self._known[_key(obj)] = obj
                    self._handler(kind, obj)
                backoff = 0.2
            except ApiException as exc:
                if exc.status == 410:
                    version = None
                    continue
                self._lost(exc)
                version = None
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 5.0)
            except Exception as exc:  # noqa: BLE001 - connection errors of every kind: keep watching
                self._lost(exc)
                version = None
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 5.0)

    def _lost(self, exc: BaseException) -> None:
        if not self._stop.is_set():
            log.warning("watch %s lost (%s); reconnecting", self.name, exc)
            self._on_state(False)
