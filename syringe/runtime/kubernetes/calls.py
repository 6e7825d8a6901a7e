"""Blocking calls of the official client, run in a bounded thread pool and counted by verb."""

from __future__ import annotations

import asyncio
import functools
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import urllib3
from kubernetes.client.rest import ApiException

T = TypeVar("T")

# Statuses worth retrying: the server is starting, overloaded or briefly unreachable.
TRANSIENT_STATUSES = {429, 500, 502, 503, 504}


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, ApiException):
        return exc.status in TRANSIENT_STATUSES or exc.status == 0
    return isinstance(exc, urllib3.exceptions.HTTPError | ConnectionError | TimeoutError | OSError)


def describe(exc: BaseException) -> str:
    """What went wrong, in a line: the API server's own message where there is one."""
    if isinstance(exc, ApiException):
        import json

        try:
            body = json.loads(exc.body or "{}")
            return f"{exc.status} {body.get('reason') or exc.reason}: {body.get('message') or ''}".strip()
        except ValueError:
            return f"{exc.status} {exc.reason}"
    if isinstance(exc, urllib3.exceptions.MaxRetryError):
        return f"API server unreachable: {exc.reason}"
    return f"{type(exc).__name__}: {exc}"


class ApiCalls:
    """Runs client calls off the event loop, at most ``max_threads`` at once, counting each by verb.

    Every call has a deadline (``request_timeout``, unless the caller gives ``_request_timeout``): an API
    server that accepts a request and never answers must not hold a launch, a deletion or a start forever.
    """

    def __init__(self, max_threads: int = 8, request_timeout: float = 30.0) -> None:
        self._pool = ThreadPoolExecutor(max_workers=max_threads, thread_name_prefix="kube-api")
        self.counts: Counter[str] = Counter()
        self.request_timeout = request_timeout

    async def __call__(self, verb: str, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        self.counts[verb] += 1
        kwargs.setdefault("_request_timeout", self.request_timeout)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, functools.partial(function, *args, **kwargs))

    async def retrying(self, verb: str, deadline: float, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Like a call, but transient failures are retried with backoff until ``deadline`` (loop time)."""
        loop = asyncio.get_running_loop()
        delay = 0.2
        while True:
            try:
                return await self(verb, function, *args, **kwargs)
            except Exception as exc:
                if not is_transient(exc) or loop.time() + delay > deadline:
                    raise
            await asyncio.sleep(delay)
            delay = min(delay * 2, 3.0)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
