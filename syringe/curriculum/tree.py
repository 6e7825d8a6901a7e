"""The loaded curriculum: validated models, and where each came from."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from syringe.curriculum.models import Collection, Curriculum, Image, Lesson
from syringe.curriculum.policy import CurriculumLimits, CurriculumPolicy
from syringe.curriculum.problems import Problem
from syringe.curriculum.yamlsource import YamlDocument


@dataclass
class LessonSource:
    """A lesson and the files behind it: ``root`` is the curriculum's directory, which every read of the
    lesson's files is confined to (with ``limits``), and ``directory`` the lesson's own."""

    lesson: Lesson
    doc: YamlDocument
    directory: Path
    root: Path
    limits: CurriculumLimits = field(default_factory=CurriculumLimits)

    @property
    def rel_dir(self) -> str:
        """The lesson's directory relative to the curriculum root, in POSIX form."""
        return PurePosixPath(self.doc.file).parent.as_posix()

    def guide_name(self, stage: int) -> str:
        """The stage's guide, relative to the lesson's directory."""
        suffix = "ipynb" if self.lesson.stages[stage].guide_type == "jupyter" else "md"
        return f"stage{stage}/guide.{suffix}"


@dataclass
class CurriculumTree:
    """Everything read from one curriculum directory, plus every problem found in it."""

    root: Path
    policy: CurriculumPolicy = field(default_factory=CurriculumPolicy)
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
