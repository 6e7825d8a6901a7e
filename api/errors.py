"""Syringe's exceptions as problem documents: the one place that decides their HTTP status and type."""

from __future__ import annotations

from api.problems import ProblemError
from syringe.errors import Busy, LessonNotFound, LimitReached, NotFound, RuntimeUnavailable, SyringeError, UnknownLesson


def as_problem(exc: SyringeError) -> ProblemError:
    if isinstance(exc, LessonNotFound):
        return ProblemError(404, str(exc), "lesson-not-found")
    if isinstance(exc, NotFound):
        return ProblemError(404, str(exc), "livelesson-not-found")
    if isinstance(exc, Busy):
        return ProblemError(409, str(exc), "livelesson-busy")
    if isinstance(exc, LimitReached):
        if exc.retry_after is not None:
            return ProblemError(429, str(exc), "global-limit", headers={"Retry-After": str(exc.retry_after)})
        return ProblemError(429, str(exc), "session-limit")
    if isinstance(exc, UnknownLesson):
        return ProblemError(422, str(exc), "invalid-stage")
    if isinstance(exc, RuntimeUnavailable):
        return ProblemError(503, str(exc), "runtime-unavailable")
    return ProblemError(400, str(exc), "bad-request")
