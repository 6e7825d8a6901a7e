"""Runtimes: where live lessons actually run. One protocol, a Kubernetes and (later) a local implementation."""

from syringe.runtime.base import (
    EndpointObservation,
    JobObservation,
    LiveLessonRecord,
    NamespaceGone,
    Runtime,
    RuntimeEvent,
)

__all__ = [
    "EndpointObservation",
    "JobObservation",
    "LiveLessonRecord",
    "NamespaceGone",
    "Runtime",
    "RuntimeEvent",
]
