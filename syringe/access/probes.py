"""Readiness probes. A probe either returns or raises ProbeFailed with a reason a person can read."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable


class ProbeFailed(Exception):
    pass


async def tcp_probe(host: str, port: int, timeout: float = 2.0) -> None:
    """Succeeds when ``host:port`` accepts a TCP connection."""
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    except TimeoutError as exc:
        raise ProbeFailed(f"tcp connect to {host}:{port}: timed out") from exc
    except OSError as exc:
        raise ProbeFailed(f"tcp connect to {host}:{port}: {exc.strerror or exc}") from exc
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()


async def retry_until(
    probe: Callable[[], Awaitable[None]], deadline: float, first_delay: float = 0.05, max_delay: float = 2.0
) -> None:
    """Run ``probe`` until it succeeds, backing off between tries; raise its last failure at ``deadline``."""
    loop = asyncio.get_running_loop()
    delay = first_delay
    while True:
        try:
            await probe()
            return
        except ProbeFailed:
            if loop.time() + delay >= deadline:
                raise
        await asyncio.sleep(delay)
        delay = min(delay * 2, max_delay)
