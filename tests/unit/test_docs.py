"""Docs stay true: every setting is documented, and every documented setting exists."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from pydantic import BaseModel

from syringe.launcher.main import ENVIRONMENT as LAUNCHER_ENVIRONMENT
from syringe.settings import Settings

REPO = Path(__file__).resolve().parents[2]


def _env_names(model: type[BaseModel], prefix: str = "SYRINGE_") -> Iterator[str]:
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            yield from _env_names(annotation, f"{prefix}{name.upper()}__")
        else:
            yield f"{prefix}{name.upper()}"


def test_every_setting_is_in_operations_md_and_no_other() -> None:
    text = (REPO / "docs/OPERATIONS.md").read_text()
    # The service's settings, the wrapper launcher's environment, and the tiny VM's cache override.
    settings = set(_env_names(Settings)) | set(LAUNCHER_ENVIRONMENT) | {"SYRINGE_CACHE_DIR"}
    harness = ("SYRINGE_K8S_", "SYRINGE_TEST_", "SYRINGE_IMAGES_")  # the scripts' own variables, not settings
    documented = {m for m in re.findall(r"`(SYRINGE_[A-Z0-9_]+)", text) if not m.startswith(harness)}
    assert settings - documented == set(), "undocumented settings"
    assert documented - settings == set(), "documented settings that do not exist"
