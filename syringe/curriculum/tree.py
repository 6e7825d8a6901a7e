"""The loaded curriculum: validated models, and where each came from."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from syringe.curriculum.models import Collection, Curriculum, Image, Lesson
from syringe.curriculum.problems import Problem
from syringe.curriculum.yamlsource import YamlDocument


@dataclass
class LessonSource:
    """A lesson and the files behind it."""

    lesson: Lesson
    doc: YamlDocument
    directory: Path

    @property
    def rel_dir(self) -> str:
        return str(Path(self.doc.file).parent)

    def stage_dir(self, stage: int) -> Path:
        return self.directory / f"stage{stage}"

    def guide_path(self, stage: int) -> Path:
        suffix = "ipynb" if self.lesson.stages[stage].guide_type == "jupyter" else "md"
        return self.stage_dir(stage) / f"guide.{suffix}"


@dataclass
class CurriculumTree:
    """Everything read from one curriculum directory, plus every problem found in it."""

    root: Path
    curriculum: Curriculum | None = None
    collections: dict[str, Collection] = field(default_factory=dict)
    images: dict[str, Image] = field(default_factory=dict)
    lessons: dict[str, LessonSource] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def lesson(self, slug: str) -> LessonSource:
        return self.lessons[slug]
