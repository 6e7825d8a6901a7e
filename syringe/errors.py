"""Syringe's exceptions: one tree under ``SyringeError``, grouped by what went wrong, so callers catch by
meaning and the API maps each group to a problem type in one place (api/errors.py).

    SyringeError
    ├── RequestRefused          what a caller asked cannot be done (4xx)
    │   ├── NotFound, Busy, LimitReached, UnknownLesson, LessonNotFound
    ├── RuntimeUnavailable      the runtime cannot be reached or used (503)
    │   └── NoCluster
    ├── RuntimeCheckFailed      a start-up check failed
    ├── CurriculumError         a lesson's content cannot be used (GuideError, ...)
    ├── EndpointError           an endpoint did not answer as it should (probes, SSH, terminals, NETCONF,
    │                           configuration)
    ├── VmError                 a QEMU VM could not be specified, built, booted or kept running
    └── LaunchFailed            a live lesson's launch or stage change failed (with a metrics ``kind``)
"""

from __future__ import annotations


class SyringeError(Exception):
    """Base of every error Syringe raises on purpose."""


# ---------------------------------------------------------------------------------------------- requests
class RequestRefused(SyringeError):
    """What a caller asked cannot be done; the message says why."""


class NotFound(RequestRefused):
    """The named live lesson or session does not exist (or belongs to someone else)."""


class Busy(RequestRefused):
    """The live lesson is not in a state that allows the request."""


class LimitReached(RequestRefused):
    """A live-lesson limit refuses the request."""

    def __init__(self, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class UnknownLesson(RequestRefused):
    """The curriculum has no such lesson or stage (asked of a live lesson)."""


class LessonNotFound(RequestRefused):
    """The catalog has no such lesson, stage or guide; the message says what."""


# ---------------------------------------------------------------------------------------------- runtime
class RuntimeUnavailable(SyringeError):
    """The runtime (the Kubernetes API server, or local QEMU) cannot be reached or used."""


class NoCluster(RuntimeUnavailable):
    """No cluster is configured, and live lessons cannot run on local VMs here."""


class RuntimeCheckFailed(SyringeError):
    """A start-up check failed; the message says what to fix."""


# ---------------------------------------------------------------------------------------------- content
class CurriculumError(SyringeError):
    """A lesson's content cannot be used as it is."""


# ---------------------------------------------------------------------------------------------- endpoints
class EndpointError(SyringeError):
    """An endpoint did not answer as it should: probes, logins, terminals, NETCONF, configuration."""


# ---------------------------------------------------------------------------------------------- VMs
class VmError(SyringeError):
    """A QEMU VM could not be specified, built, booted or kept running."""


# ---------------------------------------------------------------------------------------------- launches
class LaunchFailed(SyringeError):
    """A launch step failed; the message names the endpoint, the step and what the runtime said. ``kind``
    is a short category for metrics (ImagePullBackOff, Unschedulable, probe, timeout, ...)."""

    def __init__(self, message: str, kind: str) -> None:
        super().__init__(message)
        self.kind = kind


# ---------------------------------------------------------------------------------------------- the members
# Content.
class GuideError(CurriculumError, ValueError):
    """A guide that cannot be rendered (for example a notebook that is not valid JSON)."""


# Endpoints.
class ProbeFailed(EndpointError):
    """A presentation did not answer its protocol probe in time; the message names which and why.
    ``refused``: the endpoint refused or cut the connection (nothing listens there), rather than being
    slow to answer."""

    def __init__(self, message: str, refused: bool = False) -> None:
        super().__init__(message)
        self.refused = refused


class LoginFailed(EndpointError):
    """The SSH login did not happen; the message says why (refused, timed out, credentials, ...)."""


class TerminalError(EndpointError):
    """The terminal could not be opened; the message says why."""


class NetconfError(EndpointError):
    """The NETCONF conversation failed; the message says at which step and why."""


class FramingError(NetconfError):
    """The peer broke the NETCONF framing; the message says how."""


class MessageTooLarge(FramingError):
    """A NETCONF message is larger than the decoder's cap."""


class Unreachable(EndpointError):
    """The endpoint's HTTP server did not answer the proxy; the message says why."""


class ConfigureError(EndpointError):
    """The configuration could not be applied; the message is what the lesson's error shows."""


# VMs.
class QemuSpecError(VmError, ValueError):
    """The endpoint cannot be described as a QEMU VM; the message says which endpoint and why."""


class VmFailed(VmError):
    """The VM did not start, or its QEMU ended; the message carries what QEMU and the console said."""


class WarmBootFailed(VmError):
    """A template could not be made or restored; the caller boots the VM cold instead."""


class ImageBuildError(VmError):
    """A VM image could not be built; the message says which step and why."""


# Runtimes.
class EndpointCannotRunLocally(RuntimeUnavailable):
    """An endpoint's image says nothing (or something impossible) about running without a cluster."""
