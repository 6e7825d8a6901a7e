"""Read a curriculum tree strictly, collecting every problem instead of stopping at the first.

The loader never raises for anything found in the tree: unreadable files, bad YAML and bad fields all
become problems with file, line, column and field path.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, TypeVar

from pydantic import ValidationError

from syringe.curriculum import checks
from syringe.curriculum.models import Collection, Curriculum, Image, Lesson, Model
from syringe.curriculum.problems import Problem
from syringe.curriculum.schema_errors import problems_from_validation
from syringe.curriculum.tree import CurriculumTree, LessonSource
from syringe.curriculum.yamlsource import YamlDocument, parse_yaml

CURRICULUM_FILE = "curriculum.meta.yaml"
COLLECTION_FILE = "collection.meta.yaml"
IMAGE_FILE = "image.meta.yaml"
LESSON_FILE = "lesson.meta.yaml"
LEGACY_V01_FILE = "syringe.yaml"

M = TypeVar("M", bound=Model)


def _read(root: Path, path: Path) -> YamlDocument:
    rel = path.relative_to(root).as_posix()
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        return YamlDocument(rel, None, problems=[Problem(rel, 1, 1, "", f"not UTF-8 text: {exc.reason}")])
    except OSError as exc:
        return YamlDocument(rel, None, problems=[Problem(rel, 1, 1, "", f"cannot read file: {exc.strerror}")])
    return parse_yaml(rel, text)


def _validate(doc: YamlDocument, model: type[M], problems: list[Problem]) -> M | None:
    problems.extend(doc.problems)
    if doc.data is None:
        return None
    if not isinstance(doc.data, dict):
        problems.append(doc.problem((), "a metafile must be a mapping of keys to values"))
        return None
    try:
        return model.model_validate(doc.data)
    except ValidationError as exc:
        problems.extend(problems_from_validation(doc, model, exc))
        return None


def _legacy_problem(doc: YamlDocument) -> Problem | None:
    """One clear problem for a lesson in an older Syringe format, instead of a cascade of unknown keys."""
    if doc.file.endswith(LEGACY_V01_FILE):
        return Problem(
            doc.file,
            1,
            1,
            "",
            "legacy format: this is a Syringe v0.1-0.3 syringe.yaml lesson; rewrite it as lesson.meta.yaml "
            "in the current format (see docs/LESSON-FORMAT.md, 'Converting legacy lessons')",
        )
    data: Any = doc.data
    if isinstance(data, dict) and ("lessonId" in data or "lessonName" in data):
        key = "lessonId" if "lessonId" in data else "lessonName"
        line, column = doc.position((key,))
        return Problem(
            doc.file,
            line,
            column,
            key,
            f"legacy format: '{key}' marks a Syringe v0.4-0.5 lesson; the current format identifies "
            "lessons by slug and images by image slug (see docs/LESSON-FORMAT.md, 'Converting legacy lessons')",
        )
    return None


def _subdirs(path: Path) -> list[Path]:
    try:
        return sorted(p for p in path.iterdir() if p.is_dir())
    except OSError:
        return []


def _load_named(tree: CurriculumTree, kind: str, file_name: str, model: type[M]) -> dict[str, tuple[M, YamlDocument]]:
    loaded: dict[str, tuple[M, YamlDocument]] = {}
    for directory in _subdirs(tree.root / kind):
        path = directory / file_name
        if not path.is_file():
            rel = directory.relative_to(tree.root).as_posix()
            tree.problems.append(Problem(rel, 0, 0, "", f"directory has no {file_name}"))
            continue
        doc = _read(tree.root, path)
        item = _validate(doc, model, tree.problems)
        if item is None:
            continue
        slug = getattr(item, "slug")  # noqa: B009 - every named metafile model has a slug
        if slug != directory.name:
            tree.problems.append(
                doc.problem(("slug",), f"slug '{slug}' must match its directory name '{directory.name}'")
            )
        loaded[slug] = (item, doc)
    return loaded


def _lesson_files(root: Path) -> list[Path]:
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root / "lessons"):
        dirnames.sort()
        if LESSON_FILE in filenames:
            found.append(Path(dirpath) / LESSON_FILE)
            dirnames.clear()  # a lesson's own subdirectories hold stages, not lessons
        elif LEGACY_V01_FILE in filenames:
            found.append(Path(dirpath) / LEGACY_V01_FILE)
            dirnames.clear()
    return found


def _declared_slugs(doc: YamlDocument) -> str | None:
    data: Any = doc.data
    slug = data.get("slug") if isinstance(data, dict) else None
    return slug if isinstance(slug, str) else None


def load_curriculum(root: str | os.PathLike[str]) -> CurriculumTree:
    """Load and check the curriculum at ``root``. Problems come back sorted in ``tree.problems``."""
    tree = CurriculumTree(root=Path(root))
    if not tree.root.is_dir():
        tree.problems.append(Problem(str(root), 0, 0, "", "not a directory"))
        return tree
    curriculum_path = tree.root / CURRICULUM_FILE
    if curriculum_path.is_file():
        tree.curriculum = _validate(_read(tree.root, curriculum_path), Curriculum, tree.problems)
    else:
        tree.problems.append(Problem(CURRICULUM_FILE, 0, 0, "", "missing: a curriculum needs curriculum.meta.yaml"))

    tree.collections = {
        slug: item for slug, (item, _) in _load_named(tree, "collections", COLLECTION_FILE, Collection).items()
    }
    images = _load_named(tree, "images", IMAGE_FILE, Image)
    tree.images = {slug: item for slug, (item, _) in images.items()}
    for image, doc in images.values():
        tree.problems.extend(checks.image_problems(image, doc))

    # Names that exist, even where their metafile is invalid: a reference to them is not "unknown".
    known_images = set(tree.images) | {d.name for d in _subdirs(tree.root / "images")}
    known_collections = set(tree.collections) | {d.name for d in _subdirs(tree.root / "collections")}

    lesson_docs: list[YamlDocument] = []
    valid: list[LessonSource] = []
    for path in _lesson_files(tree.root):
        doc = _read(tree.root, path)
        legacy = _legacy_problem(doc)
        if legacy is not None:
            tree.problems.append(legacy)
            continue
        lesson_docs.append(doc)
        lesson = _validate(doc, Lesson, tree.problems)
        if lesson is not None:
            valid.append(LessonSource(lesson=lesson, doc=doc, directory=path.parent))

    known_lessons = {slug for doc in lesson_docs if (slug := _declared_slugs(doc))}
    for source in valid:
        slug = source.lesson.slug
        if slug in tree.lessons:
            other = tree.lessons[slug].doc.file
            tree.problems.append(source.doc.problem(("slug",), f"slug '{slug}' is already used by {other}"))
            continue
        tree.lessons[slug] = source
        tree.problems.extend(checks.lesson_problems(source, tree.images))
        tree.problems.extend(checks.reference_problems(source, known_images, known_collections, known_lessons))
        tree.problems.extend(checks.file_problems(source))
    tree.problems.extend(checks.prerequisite_cycles(tree.lessons))
    tree.problems.sort()
    return tree
