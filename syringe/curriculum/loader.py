"""Read a curriculum tree strictly, collecting every problem instead of stopping at the first.

The loader never raises for anything found in the tree: unreadable files, bad YAML and bad fields all
become problems with file, line, column and field path.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any, TypeVar

from pydantic import ValidationError

from syringe.curriculum import checks
from syringe.curriculum.confined import LINK, FileRefused, read_confined, walk
from syringe.curriculum.inventory import LessonInventory, depth_problem, lesson_inventory
from syringe.curriculum.models import Collection, Curriculum, Image, Lesson, Model
from syringe.curriculum.policy import CurriculumLimits, CurriculumPolicy
from syringe.curriculum.problems import Problem
from syringe.curriculum.schema_errors import problems_from_validation
from syringe.curriculum.tree import CurriculumTree, LessonSource
from syringe.curriculum.yamlsource import YamlDocument, parse_yaml

CURRICULUM_FILE = "curriculum.meta.yaml"
COLLECTION_FILE = "collection.meta.yaml"
IMAGE_FILE = "image.meta.yaml"
LESSON_FILE = "lesson.meta.yaml"
LEGACY_V01_FILE = "syringe.yaml"
METAFILE_CAP = "per metafile (SYRINGE_CURRICULUM_LIMITS__METAFILE_BYTES)"

M = TypeVar("M", bound=Model)


def _read(root: Path, rel: str, limits: CurriculumLimits) -> YamlDocument:
    """Parse the metafile ``root/rel``, read through the confined reader under the metafile cap."""
    try:
        text = read_confined(root, rel, limits.metafile_bytes, METAFILE_CAP).decode("utf-8")
    except FileRefused as exc:
        line = 1 if exc.rel == rel else 0  # else a directory on the way is refused: it has no line
        return YamlDocument(rel, None, problems=[Problem(exc.rel, line, line, "", exc.reason)])
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


def _subdirs(root: Path, kind: str, problems: list[Problem]) -> list[Path]:
    """The directories in ``root/kind`` (images, collections), in name order; a link there is a problem."""
    found: list[Path] = []
    try:
        with os.scandir(root / kind) as entries:
            for entry in sorted(entries, key=lambda e: e.name):
                if entry.is_symlink():
                    problems.append(Problem(f"{kind}/{entry.name}", 0, 0, "", LINK))
                elif entry.is_dir(follow_symlinks=False):
                    found.append(root / kind / entry.name)
    except OSError:
        return found
    return found


def _exists(path: Path) -> bool:
    """Whether anything is at ``path``, a link included (reading it then says what is wrong with it)."""
    try:
        os.lstat(path)
    except OSError:
        return False
    return True


def _load_named(
    tree: CurriculumTree, kind: str, file_name: str, model: type[M], directories: list[Path]
) -> dict[str, tuple[M, YamlDocument, str]]:
    """Each directory's metafile, validated: slug -> (model, document, directory relative to the root)."""
    loaded: dict[str, tuple[M, YamlDocument, str]] = {}
    limits = tree.policy.limits
    for directory in directories:
        rel = f"{kind}/{directory.name}"
        if not _exists(directory / file_name):
            tree.problems.append(Problem(rel, 0, 0, "", f"directory has no {file_name}"))
            continue
        doc = _read(tree.root, f"{rel}/{file_name}", limits)
        item = _validate(doc, model, tree.problems)
        if item is None:
            continue
        slug = getattr(item, "slug")  # noqa: B009 - every named metafile model has a slug
        if slug != directory.name:
            tree.problems.append(
                doc.problem(("slug",), f"slug '{slug}' must match its directory name '{directory.name}'")
            )
        loaded[slug] = (item, doc, rel)
    return loaded


def _find_lessons(root: Path, limits: CurriculumLimits, problems: list[Problem]) -> list[str]:
    """The metafiles of the lessons under ``lessons/`` (paths relative to the root), found without following
    links and no deeper than the depth cap. A link there is a problem: it may hide a lesson."""
    found: list[str] = []
    if not _exists(root / "lessons"):
        return found
    for listing in walk(root, "lessons", limits.directory_depth, sizes=False):
        if listing.too_deep:
            problems.append(Problem(listing.rel, 0, 0, "", depth_problem(limits)))
            continue
        if listing.error is not None:
            problems.append(Problem(listing.rel, 0, 0, "", f"cannot be searched for lessons: {listing.error}"))
            continue
        names = {entry.name for entry in listing.entries}
        marker = next((name for name in (LESSON_FILE, LEGACY_V01_FILE) if name in names), None)
        if marker is not None:  # lessons/ itself is a lesson: nothing below it is another
            found.append(f"{listing.rel}/{marker}")
            listing.subdirs.clear()
            continue
        problems.extend(Problem(entry.rel, 0, 0, "", LINK) for entry in listing.entries if stat.S_ISLNK(entry.mode))
        searched = []
        for name in listing.subdirs:
            # One lstat tells a lesson's directory, which is then not listed here (its inventory walks it),
            # nor searched further: a lesson's own subdirectories hold stages, not lessons.
            marker = next((m for m in (LESSON_FILE, LEGACY_V01_FILE) if _exists(root / listing.rel / name / m)), None)
            if marker is None:
                searched.append(name)
            else:
                found.append(f"{listing.rel}/{name}/{marker}")
        listing.subdirs[:] = searched
    return found


def _declared_slugs(doc: YamlDocument) -> str | None:
    data: Any = doc.data
    slug = data.get("slug") if isinstance(data, dict) else None
    return slug if isinstance(slug, str) else None


def load_curriculum(root: str | os.PathLike[str], policy: CurriculumPolicy | None = None) -> CurriculumTree:
    """Load and check the curriculum at ``root`` under the operator's ``policy`` (default: the safe one).
    Problems come back sorted in ``tree.problems``; nothing found in the tree makes this raise."""
    tree = CurriculumTree(root=Path(root), policy=policy or CurriculumPolicy())
    limits = tree.policy.limits
    if not tree.root.is_dir():
        tree.problems.append(Problem(str(root), 0, 0, "", "not a directory"))
        return tree
    if _exists(tree.root / CURRICULUM_FILE):
        tree.curriculum = _validate(_read(tree.root, CURRICULUM_FILE, limits), Curriculum, tree.problems)
    else:
        tree.problems.append(Problem(CURRICULUM_FILE, 0, 0, "", "missing: a curriculum needs curriculum.meta.yaml"))

    collection_dirs = _subdirs(tree.root, "collections", tree.problems)
    image_dirs = _subdirs(tree.root, "images", tree.problems)
    collections = _load_named(tree, "collections", COLLECTION_FILE, Collection, collection_dirs)
    tree.collections = {slug: item for slug, (item, _, _) in collections.items()}
    images = _load_named(tree, "images", IMAGE_FILE, Image, image_dirs)
    tree.images = {slug: item for slug, (item, _, _) in images.items()}
    for image, doc, rel in images.values():
        tree.problems.extend(checks.image_problems(image, doc))
        tree.problems.extend(checks.local_file_problems(image, doc, tree.root, rel, tree.policy))
        tree.problems.extend(checks.privilege_problems(image, doc, tree.policy))

    # Names that exist, even where their metafile is invalid: a reference to them is not "unknown".
    known_images = set(tree.images) | {d.name for d in image_dirs}
    known_collections = set(tree.collections) | {d.name for d in collection_dirs}

    lesson_docs: list[YamlDocument] = []
    valid: list[tuple[LessonSource, LessonInventory]] = []
    for rel in _find_lessons(tree.root, limits, tree.problems):
        doc = _read(tree.root, rel, limits)
        legacy = _legacy_problem(doc)
        if legacy is not None:
            tree.problems.append(legacy)
            continue
        lesson_docs.append(doc)
        lesson = _validate(doc, Lesson, tree.problems)
        lesson_dir = rel.rsplit("/", 1)[0]
        inventory = lesson_inventory(tree.root, lesson_dir, limits, LESSON_FILE)
        tree.problems.extend(inventory.problems)
        if lesson is not None:
            directory = tree.root / lesson_dir
            valid.append(
                (LessonSource(lesson=lesson, doc=doc, directory=directory, root=tree.root, limits=limits), inventory)
            )

    known_lessons = {slug for doc in lesson_docs if (slug := _declared_slugs(doc))}
    for source, inventory in valid:
        slug = source.lesson.slug
        if slug in tree.lessons:
            other = tree.lessons[slug].doc.file
            tree.problems.append(source.doc.problem(("slug",), f"slug '{slug}' is already used by {other}"))
            continue
        tree.lessons[slug] = source
        tree.problems.extend(checks.lesson_problems(source, tree.images))
        tree.problems.extend(checks.reference_problems(source, known_images, known_collections, known_lessons))
        tree.problems.extend(checks.file_problems(source, inventory))
    tree.problems.extend(checks.prerequisite_cycles(tree.lessons))
    tree.problems.sort()
    return tree


def load_image(directory: str | os.PathLike[str]) -> tuple[Image | None, list[Problem]]:
    """One image's metafile (``directory/image.meta.yaml``) on its own, validated as the curriculum's are:
    the image, or None and its problems (file, line and field), the file named relative to the images
    directory."""
    path = Path(directory).resolve()
    problems: list[Problem] = []
    doc = _read(path.parent, f"{path.name}/{IMAGE_FILE}", CurriculumLimits())
    image = _validate(doc, Image, problems)
    if image is not None and image.slug != path.name:
        problems.append(doc.problem(("slug",), f"slug '{image.slug}' must match its directory name '{path.name}'"))
        return None, problems
    return image, problems
