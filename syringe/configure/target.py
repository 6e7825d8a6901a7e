"""The endpoint a configurator works on, from the environment its Job sets."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

ENV_HOST = "SYRINGE_TARGET_HOST"
ENV_PORT = "SYRINGE_TARGET_PORT"
ENV_USER = "SYRINGE_TARGET_USER"
ENV_PASSWORD = "SYRINGE_TARGET_PASSWORD"
ENV_LESSON_DIR = "SYRINGE_LESSON_DIR"
ENV_ENDPOINT = "SYRINGE_ENDPOINT"
ENV_STAGE = "SYRINGE_STAGE"


class ConfigureError(Exception):
    """The configuration could not be applied; the message is what the lesson's error shows."""


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
        missing = [name for name in (ENV_HOST, ENV_USER) if not os.environ.get(name)]
        if missing:
            raise ConfigureError(f"the Job must set {', '.join(missing)}")
        try:
            port = int(os.environ.get(ENV_PORT, "22"))
        except ValueError as exc:
            raise ConfigureError(f"{ENV_PORT} is not a port: {os.environ[ENV_PORT]!r}") from exc
        return cls(
            endpoint=endpoint,
            stage=stage,
            host=os.environ[ENV_HOST],
            port=port,
            username=os.environ[ENV_USER],
            password=os.environ.get(ENV_PASSWORD, ""),
            lesson_dir=Path(os.environ.get(ENV_LESSON_DIR, "/antidote")),
        )
