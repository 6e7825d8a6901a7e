"""Live lessons: their lifecycle behind one façade (``LiveLessons``), the work in small modules beside it."""

from syringe.livelessons.facade import LiveLessons
from syringe.livelessons.model import IN_PROGRESS, EndpointState, LiveLesson, Status, Verification

__all__ = ["IN_PROGRESS", "EndpointState", "LiveLesson", "LiveLessons", "Status", "Verification"]
