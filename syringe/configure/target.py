"""The endpoint a configurator works on, from the environment its Job sets."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from syringe.errors import ConfigureError
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
