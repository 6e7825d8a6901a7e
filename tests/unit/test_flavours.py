"""The tiny VM's flavours as the lesson format names them, and the warning `syringe validate` gives for a
port that nothing in an endpoint's flavour listens on."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import get_args

from syringe.curriculum import load_curriculum
from syringe.curriculum.models import TinyFlavour
from syringe.runtime.local.flavours import FLAVOURS, unserved_ports
from tests.integration.helpers import REPO


def test_every_flavour_the_format_names_is_built_and_no_other() -> None:
    assert set(FLAVOURS) == set(get_args(TinyFlavour))
    assert 8080 in FLAVOURS["inventory"].serves and 8080 not in FLAVOURS["netconf"].serves


def test_the_example_curriculum_has_no_unserved_port() -> None:
    tree = load_curriculum(REPO / "lessons")
    assert tree.ok and unserved_ports(tree) == []


def test_an_unserved_port_is_a_warning_with_file_line_and_field(tmp_path: Path) -> None:
    root = tmp_path / "lessons"
    shutil.copytree(REPO / "lessons", root)
    metafile = root / "images/api-server/image.meta.yaml"
    metafile.write_text(metafile.read_text().replace("flavour: inventory", "flavour: netconf"))
    done = subprocess.run(
        [str(REPO / ".venv/bin/syringe"), "validate", str(root)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr  # a warning: the lesson still runs on a cluster
    line = next(
        number
        for number, text in enumerate((root / "lessons/rest-api-basics/lesson.meta.yaml").read_text().splitlines(), 1)
        if "port: 8080" in text
    )
    assert f"lessons/rest-api-basics/lesson.meta.yaml:{line}:" in done.stdout, done.stdout
    assert "endpoints[1].presentations[0].port: warning: " in done.stdout
    assert "nothing listens on port 8080 (it serves 22, 80, 830)" in done.stdout
    as_json = subprocess.run(
        [str(REPO / ".venv/bin/syringe"), "validate", "--json", str(root)], capture_output=True, text=True, check=False
    )
    warnings = json.loads(as_json.stdout)["warnings"]
    assert [(w["line"], w["field"]) for w in warnings] == [(line, "endpoints[1].presentations[0].port")]


def test_a_flavour_is_only_for_the_tiny_vm(tmp_path: Path) -> None:
    root = tmp_path / "lessons"
    shutil.copytree(REPO / "lessons", root)
    metafile = root / "images/utility/image.meta.yaml"
    metafile.write_text(metafile.read_text().replace("kind: tiny-linux", "kind: disk\n  disk: x.qcow2"))
    tree = load_curriculum(root)
    assert any("flavour utility is a flavour of the tiny VM" in str(p) for p in tree.problems), tree.problems
