"""The endpoint a configurator works on, from the environment its Job sets."""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from pathlib import Path

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


def wait_for(target: ConfigTarget, kind: str, seconds: float) -> None:
    """Wait until the target answers its protocol (an SSH server's version string, the NETCONF subsystem's
    <hello>, an HTTP answer), for a configuration Job started while its endpoint still boots. Raises
    ConfigureError with the last reason."""
    protocol = os.environ.get(jobenv.TARGET_PROTOCOL) or ("netconf" if kind == "netconf" else "ssh")
    where = Target(target.host, target.port, protocol, target.username, target.password)
    attempt_timeout = min(10.0, seconds)

    async def attempt() -> None:
        if protocol == "ssh":
            await ssh_banner_probe(target.host, target.port, attempt_timeout)
        else:
            await probe(where, attempt_timeout)

    async def until_answered() -> None:
        deadline = asyncio.get_running_loop().time() + seconds
        await retry_until(attempt, deadline, first_delay=0.05, max_delay=0.1)

    try:
        asyncio.run(until_answered())
    except ProbeFailed as exc:
        raise ConfigureError(f"{target.host}:{target.port} did not answer within {seconds:g}s: {exc}") from exc
