"""Curriculum metafiles: models, strict loading with positions, validation and JSON Schema export."""

from syringe.curriculum.loader import load_curriculum
from syringe.curriculum.models import Collection, Connection, Curriculum, Endpoint, Image, Lesson, Presentation, Stage
from syringe.curriculum.problems import Problem
from syringe.curriculum.tree import CurriculumTree, LessonSource

__all__ = [
    "Collection",
    "Connection",
    "Curriculum",
    "CurriculumTree",
    "Endpoint",
    "Image",
    "Lesson",
    "LessonSource",
    "Presentation",
    "Problem",
    "Stage",
    "load_curriculum",
]
