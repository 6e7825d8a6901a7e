"""A lesson's files as the validator and the plan both see them: what a walk of the lesson's directory finds
within the limits, and a problem for everything else (links, FIFOs, devices, sockets, files over a cap,
too many files, too deep a tree)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from syringe.curriculum.confined import kind_problem, walk
from syringe.curriculum.policy import CurriculumLimits
from syringe.curriculum.problems import Problem


@dataclass
class LessonInventory:
    """``files``: path inside the lesson -> size, for every file the lesson may ship; ``present``: every
    non-directory name found, whatever it is, so that a guide that is a link is reported as a link and not
    also as missing; ``complete``: False when a cap stopped the walk (so absence proves nothing)."""

    files: dict[str, int] = field(default_factory=dict)
    present: set[str] = field(default_factory=set)
    problems: list[Problem] = field(default_factory=list)
    complete: bool = True

    def add_problem(self, rel: str, message: str) -> None:
        self.problems.append(Problem(rel, 0, 0, "", message))


def depth_problem(limits: CurriculumLimits) -> str:
    return (
        f"directories nest more than {limits.directory_depth} levels deep "
        "(SYRINGE_CURRICULUM_LIMITS__DIRECTORY_DEPTH); nothing below this one is read"
    )


def lesson_inventory(root: Path, lesson_dir: str, limits: CurriculumLimits, metafile: str) -> LessonInventory:
    """The files under ``root/lesson_dir`` (a path relative to the curriculum root), except hidden ones
    (never shipped) and the lesson's ``metafile`` (read on its own)."""
    inventory = LessonInventory()
    seen = 0
    total = 0
    over_total = False
    for listing in walk(root, lesson_dir, limits.directory_depth, skip_hidden=True):
        if listing.too_deep:
            inventory.complete = False
            inventory.add_problem(listing.rel, depth_problem(limits))
            continue
        if listing.error is not None:
            inventory.complete = False
            why = listing.error if listing.rel == lesson_dir else f"cannot be read: {listing.error}"
            inventory.add_problem(listing.rel, why)
            continue
        for rel, why in listing.unreadable:
            inventory.add_problem(rel, why)
        for entry in listing.entries:
            seen += 1
            if seen > limits.lesson_files:
                inventory.complete = False
                inventory.add_problem(
                    lesson_dir,
                    f"the lesson holds more than {limits.lesson_files} files and directories "
                    "(SYRINGE_CURRICULUM_LIMITS__LESSON_FILES); the rest is not read",
                )
                return inventory
            if entry.is_dir:
                continue
            inside = entry.rel[len(lesson_dir) + 1 :]
            if inside == metafile:
                continue
            inventory.present.add(inside)
            if (reason := kind_problem(entry.mode)) is not None:
                inventory.add_problem(entry.rel, reason)
            elif entry.size > limits.file_bytes:
                inventory.add_problem(
                    entry.rel,
                    f"is {entry.size} bytes, over the limit of {limits.file_bytes} bytes per file "
                    "(SYRINGE_CURRICULUM_LIMITS__FILE_BYTES)",
                )
            elif total + entry.size > limits.lesson_bytes:
                if not over_total:
                    inventory.add_problem(
                        lesson_dir,
                        f"the lesson's files add up to more than {limits.lesson_bytes} bytes "
                        f"(SYRINGE_CURRICULUM_LIMITS__LESSON_BYTES), from {entry.rel} on",
                    )
                over_total = True
            else:
                total += entry.size
                inventory.files[inside] = entry.size
    return inventory
