"""Who a live lesson is: its id, its session, when it was made and when it expires."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

ID_PATTERN = r"^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$"


class LiveLessonIdentity(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern=ID_PATTERN, description="The live lesson's id, unique within this instance.")
    session: str = Field(pattern=ID_PATTERN, description="The learner session that owns it.")
    created_at: datetime
    expires_at: datetime | None = None
