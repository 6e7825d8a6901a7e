"""Bad input and crashes on the local runtime: clear errors that name the endpoint, and no process left."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from syringe.runtime.local.tinylinux import TinyLinux
from tests.integration.helpers import REPO
from tests.local.conftest import local_env, qemu_processes, serve_locally
from tests.local.test_local_runtime import launch

INSTANCE = f"lf{os.getpid() % 100000}"


def _lesson(root: Path, slug: str, endpoints: list[tuple[str, str]], hub: bool = False) -> None:
    (root / "lessons" / slug / "stage0").mkdir(parents=True)
    (root / "lessons" / slug / "stage0" / "guide.md").write_text("# guide\n")
    text = f"name: {slug}\nslug: {slug}\ncategory: tools\nendpoints:\n"
    for name, image in endpoints:
        text += f"- name: {name}\n  image: {image}\n  presentations: [{{name: cli, port: 22, type: ssh}}]\n"
    if hub:  # the first endpoint linked to every other one
        text += "connections:\n" + "".join(f"- {{a: {endpoints[0][0]}, b: {name}}}\n" for name, _ in endpoints[1:])
    (root / "lessons" / slug / "lesson.meta.yaml").write_text(text + "stages:\n- description: only\n")


def _image(root: Path, slug: str, local: str) -> None:
    (root / "images" / slug).mkdir(parents=True)
    (root / "images" / slug / "image.meta.yaml").write_text(
        f"slug: {slug}\nsshUser: antidote\nsshPassword: antidotepassword\n{local}"
    )


@pytest.fixture(scope="module")
def faulty(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("faulty") / "lessons"
    root.mkdir()
    (root / "curriculum.meta.yaml").write_text("name: Faults\n")
    _image(root, "utility", "local:\n  kind: tiny-linux\n")
    _image(root, "router-disk", "local:\n  kind: disk\n  disk: disks/router.qcow2\n")
    _image(root, "cluster-only", "")
    _image(root, "huge", "local:\n  kind: tiny-linux\n  memory: 4Ti\n")
    _lesson(root, "missing-disk", [("good", "utility"), ("router", "router-disk")])
    _lesson(root, "cluster-only", [("good", "utility"), ("switch", "cluster-only")])
    _lesson(root, "too-many-links", [("hub", "utility")] + [(f"spoke{i}", "utility") for i in range(29)], hub=True)
    _lesson(root, "one-host", [("host", "utility")])
    _lesson(root, "huge-memory", [("small", "utility"), ("big", "huge")])
    return root


@pytest.fixture(scope="module")
def served(tiny_linux: TinyLinux, faulty: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server = serve_locally(local_env(INSTANCE, faulty), tmp_path_factory.mktemp("serve") / "serve.log")
    try:
        yield server.start()
    finally:
        output = server.stop()
        assert "Traceback" not in output, output[-4000:]


@pytest.mark.parametrize(
    ("lesson", "expected"),
    [
        ("missing-disk", "endpoint router: image router-disk: disk image "),
        ("cluster-only", "endpoint switch: image cluster-only cannot run without a cluster"),
        ("too-many-links", "endpoint hub: 29 data interfaces; a VM can have at most 27"),
        ("huge-memory", "MiB of memory available; the lesson's 2 VM(s) need 4194572 MiB"),
    ],
)
async def test_an_endpoint_that_cannot_run_fails_clearly_and_leaves_nothing(
    http: httpx.AsyncClient, lesson: str, expected: str
) -> None:
    view, _ = await launch(http, lesson)
    assert view["status"] == "ERROR"
    assert expected in view["error"], view["error"]
    await asyncio.sleep(1)  # the cleanup runs in the background
    assert qemu_processes(f"syringe.{INSTANCE}-{view['id']}.") == []
    assert not await asyncio.to_thread(os.path.exists, f"/tmp/syringe-test-local/{INSTANCE}/{INSTANCE}-{view['id']}")


def test_an_unknown_local_kind_is_a_validation_error_with_file_line_and_field(tmp_path: Path) -> None:
    root = tmp_path / "lessons"
    root.mkdir()
    (root / "curriculum.meta.yaml").write_text("name: Faults\n")
    _image(root, "odd", "local:\n  kind: docker\n")
    done = subprocess.run(
        [sys.executable, "-m", "syringe.cli", "validate", str(root)], capture_output=True, text=True, cwd=REPO
    )
    assert done.returncode == 1
    assert "images/odd/image.meta.yaml:5:3: local.kind:" in done.stdout, done.stdout
    assert "'tiny-linux'" in done.stdout


def test_vms_left_by_a_crash_are_ended_at_start_and_die_with_syringe(
    tiny_linux: TinyLinux, faulty: Path, tmp_path: Path
) -> None:
    instance = f"lc{os.getpid() % 100000}"
    # A VM whose Syringe is gone (its owner pid does not exist): what a crash leaves behind.
    orphan = subprocess.Popen(
        [
            "qemu-system-x86_64",
            "-name",
            f"syringe.{instance}-0123456789.host@999999999",
            "-nodefaults",
            "-display",
            "none",
            "-S",
            "-m",
            "16",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    # Cold boots here, so that the path without warm-boot templates stays tested end to end.
    server = serve_locally(local_env(instance, faulty, SYRINGE_LOCAL__WARM_BOOT="false"), tmp_path / "serve.log")
    try:
        base = server.start()
        assert orphan.wait(timeout=10) == -signal.SIGKILL
        with httpx.Client(base_url=base, timeout=60) as client:
            client.headers["Authorization"] = "Bearer " + client.post("/api/v1/sessions").json()["token"]
            livelesson = client.post("/api/v1/livelessons", json={"lesson": "one-host"}).json()["id"]
            for _ in range(600):
                view = client.get(f"/api/v1/livelessons/{livelesson}").json()
                if view["status"] in ("READY", "ERROR"):
                    break
                time.sleep(0.1)
        assert view["status"] == "READY", view
        assert len(qemu_processes(f"syringe.{instance}-{livelesson}.")) == 1
        assert "VM booted in" in (tmp_path / "serve.log").read_text()
        assert server.process is not None
        server.process.kill()  # no shutdown at all: the VMs must still go
        server.process.wait()
        for _ in range(100):
            if not qemu_processes(f"syringe.{instance}-"):
                break
            time.sleep(0.1)
        assert qemu_processes(f"syringe.{instance}-") == []
    finally:
        orphan.kill()
        server.stop()
