"""Read-only questions about a loaded curriculum: filtering, prerequisites, guides."""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache

from syringe.curriculum.files import read_guide
from syringe.curriculum.guides import render_guide
from syringe.curriculum.models import Lesson
from syringe.curriculum.tree import CurriculumTree
from syringe.errors import LessonNotFound


class Catalog:
    def __init__(self, tree: CurriculumTree) -> None:
        self.tree = tree
        self._guide = lru_cache(maxsize=1024)(self._render_guide)

    def lessons(
        self, category: str | None = None, tag: str | None = None, collection: str | None = None
    ) -> list[Lesson]:
        found: Iterable[Lesson] = (s.lesson for s in self.tree.lessons.values())
        if category:
            found = (lesson for lesson in found if lesson.category == category)
        if tag:
            found = (lesson for lesson in found if tag in lesson.tags)
        if collection:
            found = (lesson for lesson in found if lesson.collection == collection)
        return sorted(found, key=lambda lesson: lesson.slug)

    def lesson(self, slug: str) -> Lesson:
        source = self.tree.lessons.get(slug)
        if source is None:
            raise LessonNotFound(f"no lesson '{slug}'")
        return source.lesson

    def prerequisites(self, slug: str) -> list[Lesson]:
        """Every lesson to take before ``slug``, transitively, each once, the most basic first."""
        ordered: list[str] = []
        seen: set[str] = {slug}

        def visit(current: str) -> None:
            for prereq in self.lesson(current).prereqs:
                if prereq in seen or prereq not in self.tree.lessons:
                    continue
                seen.add(prereq)
                visit(prereq)
                ordered.append(prereq)

        self.lesson(slug)
        visit(slug)
        return [self.tree.lessons[s].lesson for s in ordered]

    def guide(self, slug: str, stage: int) -> str:
        lesson = self.lesson(slug)
        if not 0 <= stage < len(lesson.stages):
            raise LessonNotFound(f"lesson '{slug}' has stages 0-{len(lesson.stages) - 1}, not {stage}")
        return self._guide(slug, stage)

    def _render_guide(self, slug: str, stage: int) -> str:
        """The guide rendered, sanitised when the operator says so. Raises FileRefused (a CurriculumError)
        when its file breaks the rules now, whatever validation saw: the file is then never read."""
        source = self.tree.lessons[slug]
        guide_type = source.lesson.stages[stage].guide_type
        return render_guide(read_guide(source, stage), guide_type, sanitize=self.tree.policy.sanitize_guides)
