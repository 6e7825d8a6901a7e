from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from syringe.cli import main
from tests.corpus import edit_lesson, write_curriculum

REPO = Path(__file__).resolve().parents[2]


def test_validate_ok_exits_zero(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(REPO / "lessons")]) == 0
    assert "ok (6 lessons" in capsys.readouterr().out


def test_validate_problems_exit_one_with_human_and_json_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = write_curriculum(tmp_path)
    edit_lesson(root, "triangle", "    port: 830", "    port: 0")
    assert main(["validate", str(root)]) == 1
    out = capsys.readouterr().out
    assert "lessons/triangle/lesson.meta.yaml:22:5: endpoints[1].presentations[1].port: port 0 is outside" in out
    assert main(["validate", str(root), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is False
    assert report["problems"][0]["line"] == 22


def test_validate_missing_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(tmp_path / "nope")]) == 1
    assert "not a directory" in capsys.readouterr().out


def test_schema_validates_the_example_lessons(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema"]) == 0
    schemas = json.loads(capsys.readouterr().out)
    assert set(schemas) == {"curriculum", "collection", "image", "lesson"}
    for path in (REPO / "lessons/lessons").glob("*/lesson.meta.yaml"):
        jsonschema.validate(yaml.safe_load(path.read_text()), schemas["lesson"])
    for path in (REPO / "lessons/images").glob("*/image.meta.yaml"):
        jsonschema.validate(yaml.safe_load(path.read_text()), schemas["image"])
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(
            {"name": "x", "slug": "x", "category": "tools", "endpoints": [], "stages": [{}], "presentaions": []},
            schemas["lesson"],
        )


def test_schema_out_writes_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema", "--out", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "collection.schema.json",
        "curriculum.schema.json",
        "image.schema.json",
        "lesson.schema.json",
    ]


def test_lessons_lists_every_lesson(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lessons", "--curriculum", str(REPO / "lessons"), "--json"]) == 0
    slugs = [row["slug"] for row in json.loads(capsys.readouterr().out)]
    assert slugs == [
        "linux-basics", "netconf-basics", "rest-api-basics", "routing-triangle", "static-routing", "two-hosts"
    ]  # fmt: skip


def test_render_refuses_unknown_lesson_and_stage(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["render", "nope", "--curriculum", str(REPO / "lessons")]) == 1
    assert "unknown lesson 'nope'" in capsys.readouterr().err
    assert main(["render", "linux-basics", "--stage", "3", "--curriculum", str(REPO / "lessons")]) == 1
    assert "stages 0-0, not 3" in capsys.readouterr().err
    assert main(["render", "linux-basics", "--id", "Bad_Id", "--curriculum", str(REPO / "lessons")]) == 1
    assert "cannot render" in capsys.readouterr().err


def test_commands_refuse_a_curriculum_with_problems(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = write_curriculum(tmp_path)
    edit_lesson(root, "basics", "    type: ssh", "    type: vnc")
    with pytest.raises(SystemExit) as exit_info:
        main(["lessons", "--curriculum", str(root)])
    assert exit_info.value.code == 1
    assert "1 problem in" in capsys.readouterr().err
    assert main(["serve", "--curriculum", str(root)]) == 1
    assert "refusing to serve" in capsys.readouterr().err


def test_a_malformed_setting_stops_start_up_naming_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SYRINGE_PORT", "eighty")
    monkeypatch.setenv("SYRINGE_LIFECYCLE__TTL_SECONDS", "-5")
    assert main(["serve", "--curriculum", str(REPO / "lessons")]) == 2
    err = capsys.readouterr().err
    assert "invalid setting SYRINGE_PORT='eighty'" in err
    assert "invalid setting SYRINGE_LIFECYCLE__TTL_SECONDS='-5'" in err
    assert "Traceback" not in err
