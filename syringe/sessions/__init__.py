"""Live sessions and live lessons: state machine, in-memory store, expiry, limits, recovery."""

from syringe.sessions.manager import LiveLessonManager
from syringe.sessions.model import EndpointState, LiveLesson, Status

__all__ = ["EndpointState", "LiveLesson", "LiveLessonManager", "Status"]
