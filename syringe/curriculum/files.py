"""Reading a lesson's own files (guides, configs, checks) for the plan and the catalog, through the one
confined reader: a file that breaks the rules now, whatever the validator saw, is never read."""

from __future__ import annotations

import logging

from syringe.curriculum.confined import FileRefused, read_confined
from syringe.curriculum.inventory import lesson_inventory
from syringe.curriculum.loader import LESSON_FILE
from syringe.curriculum.tree import LessonSource
from syringe.errors import GuideError

log = logging.getLogger(__name__)


def read_lesson_files(source: LessonSource) -> dict[str, bytes]:
    """Every file under the lesson's directory except its metafile and hidden files, keyed by POSIX path
    relative to it. A file that breaks the rules (the tree changed since it was validated) is left out, with
    a warning: the plan never carries it."""
    limits = source.limits
    inventory = lesson_inventory(source.root, source.rel_dir, limits, LESSON_FILE)
    for problem in inventory.problems:
        log.warning("lesson %s: left out: %s", source.lesson.slug, problem)
    files: dict[str, bytes] = {}
    total = 0
    for inside in sorted(inventory.files):
        try:
            content = read_confined(source.root, f"{source.rel_dir}/{inside}", limits.file_bytes)
        except (FileRefused, OSError) as exc:
            log.warning("lesson %s: left out: %s", source.lesson.slug, exc)
            continue
        if total + len(content) > limits.lesson_bytes:
            log.warning("lesson %s: left out: %s: over the lesson's limit of %d bytes", source.lesson.slug, inside,
                        limits.lesson_bytes)  # fmt: skip
            continue
        total += len(content)
        files[inside] = content
    return files


def read_guide(source: LessonSource, stage: int) -> str:
    """The stage's guide as text. Raises FileRefused when it breaks the rules, OSError when it cannot be
    read, GuideError when it is not UTF-8."""
    rel = f"{source.rel_dir}/{source.guide_name(stage)}"
    content = read_confined(source.root, rel, source.limits.file_bytes)
    try:
        return content.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise GuideError(f"{rel} is not UTF-8 text: {exc.reason}") from exc
