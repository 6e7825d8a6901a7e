"""Reading a lesson's own files (guides, configs, checks) for the plan and the catalog."""

from __future__ import annotations

import os
from pathlib import Path

from syringe.curriculum.loader import LESSON_FILE
from syringe.curriculum.tree import LessonSource


def read_lesson_files(source: LessonSource) -> dict[str, bytes]:
    """Every file under the lesson's directory except its metafile, keyed by POSIX path relative to it."""
    files: dict[str, bytes] = {}
    for dirpath, dirnames, filenames in os.walk(source.directory):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            path = Path(dirpath) / name
            rel = path.relative_to(source.directory).as_posix()
            if rel == LESSON_FILE or name.startswith("."):
                continue
            files[rel] = path.read_bytes()
    return files


def read_guide(source: LessonSource, stage: int) -> str:
    return source.guide_path(stage).read_text(encoding="utf-8")
