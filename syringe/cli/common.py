"""What the command's parts share: settings from the environment, the curriculum, its problems."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TextIO

from syringe.curriculum import CurriculumTree, load_curriculum
from syringe.settings import Settings

CURRICULUM_HELP = "curriculum directory (default: $SYRINGE_CURRICULUM or lessons)"


def print_problems(tree: CurriculumTree, stream: TextIO | None = None) -> None:
    out = stream or sys.stderr
    for problem in tree.problems:
        print(problem, file=out)
    count = len(tree.problems)
    print(f"{count} problem{'s' if count != 1 else ''} in {tree.root}", file=out)


def curriculum_path(args: argparse.Namespace) -> Path:
    return Path(args.curriculum) if args.curriculum else Settings().curriculum


def load_or_exit(path: Path) -> CurriculumTree:
    tree = load_curriculum(path, Settings().curriculum_policy())
    if tree.problems:
        print_problems(tree)
        raise SystemExit(1)
    return tree
