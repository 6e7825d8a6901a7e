"""The strict validator: every check, with file, line and field, all problems at once."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from syringe.curriculum import load_curriculum
from tests.corpus import BASICS, TRIANGLE, edit_lesson, write_curriculum

REPO = Path(__file__).resolve().parents[2]


def test_example_curriculum_is_valid() -> None:
    tree = load_curriculum(REPO / "lessons")
    assert tree.problems == []
    assert len(tree.lessons) >= 4
    shapes = {slug: (len(s.lesson.endpoints), len(s.lesson.connections)) for slug, s in tree.lessons.items()}
    assert any(e == 1 for e, _ in shapes.values())
    assert any(e == 3 and c == 3 for e, c in shapes.values())


def test_fixture_curriculum_is_valid(tmp_path: Path) -> None:
    tree = load_curriculum(write_curriculum(tmp_path))
    assert tree.problems == []
    assert set(tree.lessons) == {"triangle", "basics"}


LESSON = "lessons/triangle/lesson.meta.yaml"

# (old text, new text, expected field, expected line, message fragment)
LESSON_CASES = [
    (
        "  presentations:\n  - name: cli\n    port: 22\n    type: ssh\n- name: r2",
        "  presentaions:\n  - name: cli\n    port: 22\n    type: ssh\n- name: r2",
        "endpoints[0].presentaions",
        10,
        "did you mean 'presentations'",
    ),
    ("    port: 830", "    port: 70000", "endpoints[1].presentations[1].port", 22, "outside 1–65535"),
    ("    port: 830", "    port: '830'", "endpoints[1].presentations[1].port", 22, "expected an integer"),
    ("    type: netconf", "    type: telnet", "endpoints[1].presentations[1].type", 23, "expected one of"),
    ("slug: triangle", "slug: Triangle_1", "slug", 2, "not a valid slug"),
    ("category: fundamentals", "category: cooking", "category", 3, "expected one of"),
    ("- name: r2\n", "- name: r1\n", "endpoints[1].name", 14, "duplicate endpoint name 'r1'"),
    ("  - name: netconf\n", "  - name: cli\n", "endpoints[1].presentations[1].name", 21, "duplicate presentation"),
    ("  additionalPorts: [8080]\n", "", "endpoints[2]", 24, "neither presentations nor additionalPorts"),
    ("  b: h1\n", "  b: h9\n", "connections[1].b", 32, "unknown endpoint 'h9'"),
    ("  b: h1\n", "  b: r1\n", "connections[1]", 31, "linked to itself"),
    ("  b: h1\n", "  b: r2\n", "connections[1]", 31, "already linked by connections[0]"),
    ("  subnet: 10.12.0.0/24", "  subnet: 10.12.0.0/33", "connections[0].subnet", 30, "invalid subnet CIDR"),
    ("  subnet: 10.12.0.0/24", "  subnet: 10.12.0.1/24", "connections[0].subnet", 30, "invalid subnet CIDR"),
    ("  image: linux\n", "  image: nosuch\n", "endpoints[2].image", 25, "unknown image 'nosuch'"),
    ("prereqs: [basics]", "prereqs: [nosuch]", "prereqs[0]", 4, "unknown prerequisite lesson 'nosuch'"),
    ("prereqs: [basics]", "prereqs: [triangle]", "prereqs[0]", 4, "its own prerequisite"),
    ("tags: [routing]", "tags: [routing]\ncollection: nosuch", "collection", 6, "unknown collection 'nosuch'"),
    ("tags: [routing]", "tags: [routing]\nname: again", "name", 6, "duplicate key 'name'"),
    ("tags: [routing]", "tags: routing", "tags", 5, "expected a list, got string 'routing'"),
    ("- description: two\n", "- description: two\n  verbose: true\n", "stages[1].verbose", 37, "unknown key"),
]


@pytest.mark.parametrize(("old", "new", "field", "line", "message"), LESSON_CASES)
def test_lesson_checks(tmp_path: Path, old: str, new: str, field: str, line: int, message: str) -> None:
    root = write_curriculum(tmp_path)
    edit_lesson(root, "triangle", old, new)
    problems = load_curriculum(root).problems
    matching = [p for p in problems if p.field == field and message in p.message]
    assert matching, f"no '{message}' at {field} in {[str(p) for p in problems]}"
    assert matching[0].file == LESSON
    assert matching[0].line == line
    assert matching[0].column >= 1


def test_overlapping_subnets(tmp_path: Path) -> None:
    root = write_curriculum(tmp_path)
    edit_lesson(root, "triangle", "  b: h1\n", "  b: h1\n  subnet: 10.12.0.128/25\n")
    problems = load_curriculum(root).problems
    assert [(p.field, p.line) for p in problems] == [("connections[1].subnet", 33)]
    assert "overlaps 10.12.0.0/24 of connections[0]" in problems[0].message


def test_more_connections_than_interfaces(tmp_path: Path) -> None:
    extra = TRIANGLE.replace("- a: r1\n  b: h1\n", "- a: r1\n  b: h1\n- a: r1\n  b: r3\n").replace(
        "- name: h1\n", "- name: r3\n  image: router\n  additionalPorts: [22]\n- name: h1\n"
    )
    root = write_curriculum(tmp_path, {"triangle": extra, "basics": BASICS})
    problems = load_curriculum(root).problems
    assert len(problems) == 1
    assert problems[0].field == "endpoints[0].image"
    assert "has 3 connections but image 'router' lists only 2" in problems[0].message


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("networkInterfaces: [eth0, ge-1]\n", "eth0 is the management interface"),
        ("networkInterfaces: [a-very-long-interface0, ge-1]\n", "1-15 characters"),
    ],
)
def test_image_interface_checks(tmp_path: Path, text: str, message: str) -> None:
    root = write_curriculum(tmp_path)
    path = root / "images/router/image.meta.yaml"
    path.write_text(path.read_text().replace("networkInterfaces: [ge-0, ge-1]\n", text))
    problems = load_curriculum(root).problems
    assert [(p.file, p.field, p.line) for p in problems] == [
        ("images/router/image.meta.yaml", "networkInterfaces[0]", 4)
    ]
    assert message in problems[0].message


def test_vm_image_needs_its_vm_section(tmp_path: Path) -> None:
    root = write_curriculum(tmp_path)
    path = root / "images/router/image.meta.yaml"
    path.write_text(path.read_text().split("vm:\n")[0])
    problems = load_curriculum(root).problems
    assert [(p.field, p.line) for p in problems] == [("kind", 3)]


def test_prerequisite_cycle_is_reported_once(tmp_path: Path) -> None:
    root = write_curriculum(tmp_path)
    edit_lesson(root, "basics", "category: fundamentals\n", "category: fundamentals\nprereqs: [triangle]\n")
    problems = load_curriculum(root).problems
    assert len(problems) == 1
    assert problems[0].message == "prerequisite cycle: basics → triangle → basics"
    assert problems[0].file == "lessons/basics/lesson.meta.yaml"


def test_duplicate_lesson_slug(tmp_path: Path) -> None:
    root = write_curriculum(tmp_path, {"basics": BASICS, "basics-copy": BASICS})
    problems = load_curriculum(root).problems
    assert [(p.file, p.message) for p in problems] == [
        ("lessons/basics-copy/lesson.meta.yaml", "slug 'basics' is already used by lessons/basics/lesson.meta.yaml")
    ]


def test_missing_guide_and_config_files(tmp_path: Path) -> None:
    root = write_curriculum(tmp_path)
    (root / "lessons/triangle/stage1/guide.ipynb").unlink()
    (root / "lessons/triangle/stage0/configs/r1.py").unlink()
    (root / "lessons/triangle/stage1/configs/r2-eos.txt").rename(root / "lessons/triangle/stage1/configs/r2-bogus.txt")
    problems = load_curriculum(root).problems
    found = {(p.field, p.message) for p in problems}
    assert ("stages[1]", "missing stage guide lessons/triangle/stage1/guide.ipynb") in found
    assert any(f == "endpoints[0].configurationType" and "stage 0" in m and "r1.py" in m for f, m in found)
    assert any(f == "endpoints[1].configurationType" and "stage 1" in m and "r2-<driver>.txt" in m for f, m in found)
    assert len(problems) == 3


def test_legacy_formats_get_one_problem_each(tmp_path: Path) -> None:
    root = write_curriculum(tmp_path)
    old = root / "lessons/lesson-12"
    old.mkdir()
    (old / "syringe.yaml").write_text("lessonName: x\nlessonID: 12\nutilities: []\ndevices: []\n")
    v04 = root / "lessons/lesson-13"
    v04.mkdir()
    (v04 / "lesson.meta.yaml").write_text("lessonName: y\nlessonId: 13\nendpoints: []\nstages:\n- id: 1\n")
    problems = load_curriculum(root).problems
    assert len(problems) == 2
    assert all("legacy format" in p.message for p in problems)
    assert {p.file for p in problems} == {"lessons/lesson-12/syringe.yaml", "lessons/lesson-13/lesson.meta.yaml"}


def test_all_problems_at_once_and_sorted(tmp_path: Path) -> None:
    root = write_curriculum(tmp_path)
    edit_lesson(root, "triangle", "    port: 830", "    port: 0")
    edit_lesson(root, "triangle", "category: fundamentals", "category: x")
    edit_lesson(root, "basics", "    type: ssh", "    type: vnc")
    (root / "curriculum.meta.yaml").write_text("name: test\nwebsite: [1]\n")
    problems = load_curriculum(root).problems
    assert len(problems) == 4
    assert problems == sorted(problems)
    assert [p.file for p in problems] == [
        "curriculum.meta.yaml",
        "lessons/basics/lesson.meta.yaml",
        LESSON,
        LESSON,
    ]


def test_missing_required_field_points_at_its_parent(tmp_path: Path) -> None:
    root = write_curriculum(tmp_path)
    edit_lesson(root, "triangle", "  image: linux\n", "")
    problems = load_curriculum(root).problems
    assert [(p.field, p.line, p.message) for p in problems] == [
        ("endpoints[2].image", 24, "required field 'image' is missing")
    ]


def test_problems_serialise_to_json(tmp_path: Path) -> None:
    root = write_curriculum(tmp_path)
    edit_lesson(root, "triangle", "    port: 830", "    port: 0")
    problem = load_curriculum(root).problems[0]
    assert json.loads(json.dumps(problem.to_dict())) == {
        "file": LESSON,
        "line": 22,
        "column": 5,
        "field": "endpoints[1].presentations[1].port",
        "message": "port 0 is outside 1–65535",
    }


@pytest.mark.parametrize(
    ("check", "field", "message"),
    [
        ("{name: c, endpoint: nobody, command: 'true'}", "stages[0].verify[0].endpoint", "unknown endpoint 'nobody'"),
        ("{name: c, endpoint: linux1, command: x, script: y.py}", "stages[0].verify[0]", "exactly one of command"),
        ("{name: c, endpoint: linux1}", "stages[0].verify[0]", "exactly one of command"),
        ("{name: c, endpoint: linux1, command: x, expect: '(['}", "stages[0].verify[0].expect", "invalid regular"),
        ("{name: c, endpoint: linux1, script: gone.py}", "stages[0].verify[0].script", "missing check script"),
    ],
)
def test_learner_check_problems(tmp_path: Path, check: str, field: str, message: str) -> None:
    root = write_curriculum(tmp_path)
    edit_lesson(root, "basics", "- description: only\n", f"- description: only\n  verify:\n  - {check}\n")
    problems = load_curriculum(root).problems
    assert any(p.field == field and message in p.message for p in problems), problems
    assert all(p.field.startswith("stages[0].verify[0]") for p in problems), problems
