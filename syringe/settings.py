"""Service settings, read from the environment with the prefix SYRINGE_ (nested with __)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from syringe.plan.settings import PlanSettings


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SYRINGE_", env_nested_delimiter="__", extra="ignore")

    curriculum: Path = Field(default=Path("lessons"), description="The curriculum directory to serve.")
    host: str = "127.0.0.1"
    port: int = Field(default=8086, ge=1, le=65535)
    max_body_bytes: int = Field(default=64 * 1024, description="Largest request body the API accepts.")
    plan: PlanSettings = Field(default_factory=PlanSettings)
