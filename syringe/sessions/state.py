"""Live-lesson state as namespace annotations, and back: what lets a restarted Syringe carry on."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from syringe.plan import labels
from syringe.sessions.model import Status

ERROR = "syringe.io/error"
PERSISTENT = "syringe.io/persistent"
SESSION_TOKEN = "syringe.io/session-token-sha256"
SESSION_EXPIRES_AT = "syringe.io/session-expires-at"
GENERATION = "syringe.io/generation"


def status_annotations(status: Status, error: str | None) -> dict[str, str | None]:
    return {labels.STATUS: status.value, ERROR: error}


def parse_time(value: str | None, default: datetime) -> datetime:
    if not value:
        return default
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return default


def parse_status(value: str | None) -> Status:
    try:
        return Status(value or Status.INITIALIZED)
    except ValueError:
        return Status.ERROR


def parse_stage(annotations: Mapping[str, str]) -> int:
    try:
        return int(annotations.get(labels.STAGE, "0"))
    except ValueError:
        return 0


def parse_generation(annotations: Mapping[str, str]) -> int:
    try:
        return int(annotations.get(GENERATION, "0"))
    except ValueError:
        return 0
