"""`syringe render` output is pinned by golden files, and every object passes the Kubernetes schema."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from syringe.cli import main

REPO = Path(__file__).resolve().parents[2]
GOLDEN = REPO / "tests" / "golden"
CASES = [
    ("linux-basics", 0),
    ("routing-triangle", 0),
    ("routing-triangle", 1),
    ("netconf-basics", 2),
    ("rest-api-basics", 1),
    ("static-routing", 1),
]
KUBERNETES_VERSION = "1.29"


def render(lesson: str, stage: int, capsys: pytest.CaptureFixture[str]) -> str:
    code = main(
        [
            "render",
            lesson,
            "--curriculum",
            str(REPO / "lessons"),
            "--stage",
            str(stage),
            "--id",
            "golden",
            "--session",
            "golden",
            "--created",
            "2026-01-01T00:00:00+00:00",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    return out


@pytest.mark.parametrize(("lesson", "stage"), CASES)
def test_render_matches_golden(lesson: str, stage: int, capsys: pytest.CaptureFixture[str]) -> None:
    out = render(lesson, stage, capsys)
    golden = GOLDEN / f"{lesson}-stage{stage}.yaml"
    if os.environ.get("SYRINGE_UPDATE_GOLDEN") == "1":
        golden.write_text(out)
    assert out == golden.read_text(), f"render differs from {golden}; SYRINGE_UPDATE_GOLDEN=1 rewrites it"


def _nad_schema() -> dict[str, Any]:
    crd = yaml.safe_load((REPO / "manifests/prerequisites/network-attachment-definition-crd.yaml").read_text())
    schema: dict[str, Any] = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


@pytest.mark.parametrize(("lesson", "stage"), CASES)
def test_rendered_objects_pass_the_kubernetes_schema(
    lesson: str, stage: int, capsys: pytest.CaptureFixture[str]
) -> None:
    objects = list(yaml.safe_load_all(render(lesson, stage, capsys)))
    assert objects
    for obj in objects:
        if obj["kind"] == "NetworkAttachmentDefinition":
            jsonschema.validate(obj, _nad_schema())
            assert isinstance(obj["spec"]["config"], str)
        else:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


def test_schema_check_would_catch_a_bad_object() -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "x"},
        "spec": {"containers": [{"name": "c", "image": "i", "ports": [{"containerPort": "22"}]}]},
    }
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(pod, KUBERNETES_VERSION, strict=True)
    nad = {"apiVersion": "k8s.cni.cncf.io/v1", "kind": "NetworkAttachmentDefinition", "spec": {"config": {}}}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(nad, _nad_schema())
