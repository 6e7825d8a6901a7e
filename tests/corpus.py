"""Small curricula written into a temporary directory, for validator and plan tests."""

from __future__ import annotations

from pathlib import Path

import yaml

CURRICULUM = "name: test\ndescription: test curriculum\n"

IMAGES = {
    "linux": "slug: linux\nflavor: untrusted\nsshUser: u\nsshPassword: p\n",
    "router": (
        "slug: router\nflavor: trusted\nkind: vm\nnetworkInterfaces: [ge-0, ge-1]\n"
        "vm:\n  memory: 512Mi\n  cpus: 1\n  disk: /images/router.qcow2\n"
    ),
}

TRIANGLE = """\
name: Triangle
slug: triangle
category: fundamentals
prereqs: [basics]
tags: [routing]
endpoints:
- name: r1
  image: router
  configurationType: python
  presentations:
  - name: cli
    port: 22
    type: ssh
- name: r2
  image: router
  configurationType: napalm
  presentations:
  - name: cli
    port: 22
    type: ssh
  - name: netconf
    port: 830
    type: netconf
- name: h1
  image: linux
  additionalPorts: [8080]
connections:
- a: r1
  b: r2
  subnet: 10.12.0.0/24
- a: r1
  b: h1
stages:
- description: one
  guideType: markdown
- description: two
  guideType: jupyter
"""

BASICS = """\
name: Basics
slug: basics
category: fundamentals
endpoints:
- name: linux1
  image: linux
  presentations:
  - name: cli
    port: 22
    type: ssh
stages:
- description: only
"""

STAGE_FILES = {
    "triangle": [
        "stage0/guide.md",
        "stage0/configs/r1.py",
        "stage0/configs/r2-junos.txt",
        "stage1/guide.ipynb",
        "stage1/configs/r1.py",
        "stage1/configs/r2-eos.txt",
    ],
    "basics": ["stage0/guide.md"],
}


def write_curriculum(root: Path, lessons: dict[str, str] | None = None) -> Path:
    """Write a valid two-lesson curriculum (or ``lessons`` instead) and return its root."""
    (root / "curriculum.meta.yaml").write_text(CURRICULUM)
    for slug, text in IMAGES.items():
        (root / "images" / slug).mkdir(parents=True)
        (root / "images" / slug / "image.meta.yaml").write_text(text)
    (root / "collections" / "core").mkdir(parents=True)
    (root / "collections" / "core" / "collection.meta.yaml").write_text("slug: core\ntitle: Core\n")
    for slug, text in (lessons or {"triangle": TRIANGLE, "basics": BASICS}).items():
        directory = root / "lessons" / slug
        directory.mkdir(parents=True)
        (directory / "lesson.meta.yaml").write_text(text)
        for rel in STAGE_FILES.get(slug, ["stage0/guide.md"]):
            (directory / rel).parent.mkdir(parents=True, exist_ok=True)
            content = '{"cells": []}' if rel.endswith(".ipynb") else f"# {rel}\n"
            (directory / rel).write_text(content)
    return root


def edit_lesson(root: Path, slug: str, old: str, new: str) -> None:
    path = root / "lessons" / slug / "lesson.meta.yaml"
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


def dump(data: object) -> str:
    return yaml.safe_dump(data, sort_keys=False)
