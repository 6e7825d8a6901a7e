"""The image metafile's prepare: section, validated with file, line and field; prepare's guest scripts
quote what the metafile says; its cache key follows every input."""

from __future__ import annotations

import shlex
from pathlib import Path

from syringe.curriculum.loader import load_image
from syringe.curriculum.models import PREPARED_READY_LINE, Image
from syringe.images.prepare import cache_key, offline_steps

BASE = "slug: deb\nkind: vm\nsshUser: antidote\nsshPassword: antidotepassword\nlocal:\n  kind: disk\n  disk: d.qcow2\n"


def _load(tmp_path: Path, text: str) -> tuple[Image | None, list[str]]:
    (tmp_path / "deb").mkdir()
    (tmp_path / "deb" / "image.meta.yaml").write_text(text)
    image, problems = load_image(tmp_path / "deb")
    return image, [str(problem) for problem in problems]


def test_a_prepared_image_loads_and_says_its_ready_line(tmp_path: Path) -> None:
    image, problems = _load(tmp_path, BASE + "prepare:\n  groups: [sudo]\n  packages: [openssh-server]\n")
    assert problems == [] and image is not None and image.prepare is not None
    assert image.prepare.groups == ["sudo"] and image.prepare.timeout == 1800
    assert image.ready_line() == PREPARED_READY_LINE


def test_a_console_script_with_offline_steps_is_refused_with_its_line(tmp_path: Path) -> None:
    text = BASE + "prepare:\n  packages: [sudo]\n  console:\n  - {expect: 'login:', send: root}\n"
    image, problems = _load(tmp_path, text)
    assert image is None
    assert len(problems) == 1 and problems[0].startswith("deb/image.meta.yaml:8:"), problems
    assert "use one or the other" in problems[0]


def test_a_package_name_that_is_a_command_is_refused_at_its_field(tmp_path: Path) -> None:
    image, problems = _load(tmp_path, BASE + "prepare:\n  packages:\n  - sudo\n  - 'x; rm -rf /'\n")
    assert image is None
    assert any(p.startswith("deb/image.meta.yaml:11:") and "prepare.packages[1]" in p for p in problems), problems


def test_prepare_needs_a_disk_to_make(tmp_path: Path) -> None:
    text = "slug: deb\nsshUser: a\nsshPassword: b\nlocal:\n  kind: tiny-linux\nprepare:\n  groups: [sudo]\n"
    image, problems = _load(tmp_path, text)
    assert image is None and any("needs local: kind disk or vm: disk:" in p for p in problems), problems


def test_the_guest_scripts_quote_users_passwords_and_commands() -> None:
    image = Image.model_validate(
        {"slug": "deb", "sshUser": "antidote", "sshPassword": "it's $(reboot)", "configUser": "netops",
         "configPassword": "x", "local": {"kind": "disk", "disk": "d.qcow2"},
         "prepare": {"groups": ["sudo"], "commands": ["touch /etc/marker"]}}
    )  # fmt: skip
    steps = dict(offline_steps(image))
    users = steps["users and groups"]
    assert shlex.quote("it's $(reboot)") in users and "$(reboot)) |" not in users
    assert "useradd --create-home --shell /bin/bash netops" in users  # the configuration login too
    assert "usermod -a -G sudo antidote" in users
    assert "touch /etc/marker" in steps["commands"]
    assert list(steps)[-1] == "cleaning up" and "installing packages" not in steps


def test_the_cache_key_follows_the_prepare_section_and_the_base() -> None:
    def image(groups: list[str]) -> Image:
        return Image.model_validate(
            {"slug": "deb", "sshUser": "a", "sshPassword": "b", "local": {"kind": "disk", "disk": "d.qcow2"},
             "prepare": {"groups": groups}}
        )  # fmt: skip

    assert cache_key(image(["sudo"]), "base1") == cache_key(image(["sudo"]), "base1")
    assert cache_key(image(["sudo"]), "base1") != cache_key(image(["sudo", "adm"]), "base1")
    assert cache_key(image(["sudo"]), "base1") != cache_key(image(["sudo"]), "base2")


def test_prepare_base_may_not_leave_the_image_directory(tmp_path: Path) -> None:
    from syringe.images.prepare import PrepareFailed, prepare_disk

    image, _ = _load(tmp_path, BASE + "prepare:\n  base: ../../etc/passwd\n  groups: [sudo]\n")
    assert image is not None
    try:
        prepare_disk(image, tmp_path / "deb", cache=tmp_path / "cache")
    except PrepareFailed as exc:
        assert "prepare.base" in str(exc) and "/etc/passwd" in str(exc), exc
    else:
        raise AssertionError("a base outside the image's directory was prepared")
    assert not (tmp_path / "cache" / "prepared").exists()
