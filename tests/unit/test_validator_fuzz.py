"""The validator never raises: mutated YAML always comes back as problems, each with a line."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from syringe.curriculum import load_curriculum
from tests.corpus import TRIANGLE, write_curriculum

LESSON = "lessons/triangle/lesson.meta.yaml"
FRAGMENTS = [
    ":",
    "-",
    " ",
    "\t",
    "\n",
    "[",
    "]",
    "{",
    "}",
    "&a",
    "*a",
    "!!python/object",
    "'",
    '"',
    "#",
    "\x00",
    "port",
    "name",
    "70000",
    "null",
    "~",
    "<<: *a",
    "ü",
    "---",
    "%YAML 1.1",
]


@st.composite
def mutated_lessons(draw: st.DrawFn) -> str:
    text = TRIANGLE
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        position = draw(st.integers(min_value=0, max_value=len(text)))
        action = draw(st.sampled_from(["insert", "delete", "duplicate-line", "swap-lines"]))
        if action == "insert":
            fragment = draw(st.sampled_from(FRAGMENTS) | st.text(max_size=5))
            text = text[:position] + fragment + text[position:]
        elif action == "delete":
            length = draw(st.integers(min_value=1, max_value=20))
            text = text[:position] + text[position + length :]
        else:
            lines = text.splitlines(keepends=True)
            i = draw(st.integers(min_value=0, max_value=len(lines) - 1))
            j = draw(st.integers(min_value=0, max_value=len(lines) - 1))
            if action == "duplicate-line":
                lines.insert(j, lines[i])
            else:
                lines[i], lines[j] = lines[j], lines[i]
            text = "".join(lines)
    return text


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_lessons())
def test_mutated_yaml_gives_problems_with_lines_never_exceptions(text: str) -> None:
    with tempfile.TemporaryDirectory() as directory:
        root = write_curriculum(Path(directory))
        (root / LESSON).write_text(text, encoding="utf-8", errors="surrogatepass")
        tree = load_curriculum(root)
    for problem in tree.problems:
        assert problem.message
        if problem.file == LESSON:
            assert problem.line >= 1
            assert problem.column >= 1
    if not tree.problems:
        # A mutation the validator accepts must still be the lesson, loaded.
        assert "triangle" in tree.lessons
