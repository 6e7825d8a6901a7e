"""The endpoint a configurator works on, from the environment its Job sets."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from syringe.access.probes import Target, probe, retry_until, ssh_banner_probe
from syringe.errors import ConfigureError, ProbeFailed
from syringe.plan import jobenv


@dataclass(frozen=True)
class ConfigTarget:
    endpoint: str
    stage: int
    host: str
    port: int
    username: str
    password: str
    lesson_dir: Path

    @property
    def configs(self) -> Path:
        return self.lesson_dir / f"stage{self.stage}" / "configs"

    @classmethod
    def from_environment(cls, endpoint: str, stage: int) -> ConfigTarget:
        missing = [name for name in (jobenv.TARGET_HOST, jobenv.TARGET_USER) if not os.environ.get(name)]
        if missing:
            raise ConfigureError(f"the Job must set {', '.join(missing)}")
        try:
            port = int(os.environ.get(jobenv.TARGET_PORT, "22"))
        except ValueError as exc:
            raise ConfigureError(f"{jobenv.TARGET_PORT} is not a port: {os.environ[jobenv.TARGET_PORT]!r}") from exc
        return cls(
            endpoint=endpoint,
            stage=stage,
            host=os.environ[jobenv.TARGET_HOST],
            port=port,
            username=os.environ[jobenv.TARGET_USER],
            password=os.environ.get(jobenv.TARGET_PASSWORD, ""),
            lesson_dir=Path(os.environ.get(jobenv.LESSON_DIR, "/antidote")),
        )


# An attempt made while the guest still boots can be caught behind QEMU's user networking, which accepts the
# connection at once and then retransmits its SYN to the guest on a timer of seconds: its answer comes seconds
# after the server is up. So attempts overlap: a new one starts every ATTEMPT_INTERVAL while up to
# MAX_PENDING earlier ones still wait (each up to ATTEMPT_TIMEOUT, for a server that is merely slow), and the
# first answer wins. A refusal ends an attempt at once.
ATTEMPT_INTERVAL = 0.25
MAX_PENDING = 4
ATTEMPT_TIMEOUT = 10.0


async def first_answer(attempt: Callable[[float], Coroutine[Any, Any, None]], seconds: float) -> None:
    """Run overlapping attempts until one succeeds; raise the last failure after ``seconds``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    pending: set[asyncio.Task[None]] = set()
    last: BaseException = ProbeFailed(f"no attempt finished within {seconds:g}s")
    next_start = loop.time()
    try:
        while True:
            now = loop.time()
            if now >= deadline:
                raise last
            if len(pending) < MAX_PENDING and now >= next_start:
                pending.add(asyncio.create_task(attempt(min(ATTEMPT_TIMEOUT, deadline - now))))
                next_start = now + ATTEMPT_INTERVAL
            wake = max(min(deadline, next_start if len(pending) < MAX_PENDING else deadline) - now, 0.01)
            if not pending:
                await asyncio.sleep(wake)
                continue
            done, pending = await asyncio.wait(pending, timeout=wake, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                failure = task.exception()
                if failure is None:
                    return
                last = failure
    finally:
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)


def wait_for(target: ConfigTarget, kind: str, seconds: float) -> None:
    """Wait until the target answers its protocol (an SSH server's version string, the NETCONF subsystem's
    <hello>, an HTTP answer), for a configuration Job started while its endpoint still boots. Raises
    ConfigureError with the last reason.

    Only cheap attempts overlap (first_answer): reading an SSH server's version string, for SSH and, first,
    for NETCONF over SSH. What costs the endpoint real work, a NETCONF login (which starts the subsystem in
    the guest) or an HTTP request, is tried one attempt at a time: overlapped, those attempts would pile up
    on a slow guest and hold back everything else it serves, Syringe's own probes included."""
    protocol = os.environ.get(jobenv.TARGET_PROTOCOL) or ("netconf" if kind == "netconf" else "ssh")
    where = Target(target.host, target.port, protocol, target.username, target.password)

    async def until_answered() -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        if protocol in ("ssh", "netconf"):
            await first_answer(lambda timeout: ssh_banner_probe(target.host, target.port, timeout), seconds)
            if protocol == "ssh":
                return
        patience = min(ATTEMPT_TIMEOUT, seconds)
        await retry_until(lambda: probe(where, patience), deadline, first_delay=0.1, max_delay=0.5)

    try:
        asyncio.run(until_answered())
    except ProbeFailed as exc:
        raise ConfigureError(f"{target.host}:{target.port} did not answer within {seconds:g}s: {exc}") from exc
