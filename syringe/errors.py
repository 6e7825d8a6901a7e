"""Syringe's exceptions: one module, so callers can catch by meaning."""

from __future__ import annotations


class SyringeError(Exception):
    """Base of every error Syringe raises on purpose."""


class RuntimeUnavailable(SyringeError):
    """The runtime (the Kubernetes API server, or local QEMU) cannot be reached or used."""


class NoCluster(RuntimeUnavailable):
    """No cluster is configured: Syringe serves the catalog only (until the local runtime lands)."""


class RuntimeCheckFailed(SyringeError):
    """A start-up check failed; the message says what to fix."""


class LimitReached(SyringeError):
    """A live-lesson limit refuses the request."""

    def __init__(self, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class NotFound(SyringeError):
    """The named live lesson or session does not exist (or belongs to someone else)."""


class Busy(SyringeError):
    """The live lesson is not in a state that allows the request."""


class UnknownLesson(SyringeError):
    """The curriculum has no such lesson or stage."""
