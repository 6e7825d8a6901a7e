"""Bad input and crashes on the local runtime: clear errors that name the endpoint, and no process left."""

from __future__ import annotations

import asyncio
import json
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
from tests.local.test_local_runtime import launch, wait_gone

INSTANCE = f"lf{os.getpid() % 100000}"
# Disks the tests build at launch time (the tree changes after validation), where QEMU (nobody) can read them:
# a refusal must come from the rule, not from a permission.
DISKS = Path(f"/tmp/syringe-test-local/{INSTANCE}-disks")
DISKS_BUILT_AT_LAUNCH = (
    "backing-outside",
    "backing-link",
    "backing-deep",
    "backing-data-file",
    "backing-protocol",
    "backing-fifo",
    "disk-link",
    "backing-inside",
)


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
    # The tiny VM serves SSH, but nothing in it listens on 8080.
    (root / "lessons/nothing-listens/stage0").mkdir(parents=True)
    (root / "lessons/nothing-listens/stage0/guide.md").write_text("# guide\n")
    (root / "lessons/nothing-listens/lesson.meta.yaml").write_text(
        "name: nothing-listens\nslug: nothing-listens\ncategory: tools\nendpoints:\n- name: web\n  image: utility\n"
        "  presentations: [{name: cli, port: 22, type: ssh}, {name: app, port: 8080, type: http}]\n"
        "stages:\n- description: only\n"
    )
    for slug in DISKS_BUILT_AT_LAUNCH:
        _image(root, slug, f"local:\n  kind: disk\n  disk: {DISKS}/{slug}/disk.qcow2\n")
        _lesson(root, slug, [("good", "utility"), ("router", slug)])
    return root


@pytest.fixture(scope="module")
def served(tiny_linux: TinyLinux, faulty: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    DISKS.mkdir(parents=True, exist_ok=True)
    DISKS.chmod(0o755)
    env = local_env(
        INSTANCE,
        faulty,
        SYRINGE_LOCAL__IMAGE_DIRS=json.dumps([str(DISKS)]),
        # A disk the runtime wrongly starts fails its probe soon, rather than after the default 300 s.
        SYRINGE_LIFECYCLE__PROBE_TIMEOUT="20",
        SYRINGE_LIFECYCLE__REFUSAL_GRACE="2",
    )
    server = serve_locally(env, tmp_path_factory.mktemp("serve") / "serve.log")
    try:
        yield server.start()
    finally:
        output = server.stop()
        subprocess.run(["rm", "-rf", str(DISKS)], check=False)
        assert "Traceback" not in output, output[-4000:]


@pytest.mark.parametrize(
    ("lesson", "expected"),
    [
        ("missing-disk", "endpoint router: image router-disk: disk image "),
        ("cluster-only", "endpoint switch: image cluster-only cannot run without a cluster"),
        ("too-many-links", "endpoint hub: 29 data interfaces; a VM can have at most 27"),
        # 4 TiB + 128 MiB of guests, QEMU's 70 MiB each, and the bigger guest's 48 MiB more of TCG cache.
        ("huge-memory", "MiB of memory available; the lesson's 2 VM(s) need 4194620 MiB"),
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


async def test_a_port_nothing_listens_on_fails_the_launch_once_the_endpoint_is_up(http: httpx.AsyncClient) -> None:
    """Not after the probe timeout (20 s here, 300 s by default): after the refusal grace (2 s here), with
    the endpoint, the port and what the probe saw."""
    view, _ = await launch(http, "nothing-listens")
    assert view["status"] == "ERROR"
    assert view["error"].startswith("web/app (port 8080): http GET /: "), view["error"]
    assert "after the endpoint was up" in view["error"], view["error"]
    assert (await http.delete(f"/api/v1/livelessons/{view['id']}")).status_code == 202
    await wait_gone(http, view["id"])
    assert qemu_processes(f"syringe.{INSTANCE}-{view['id']}.") == []


def _qcow2(path: Path, backing: str | None = None, backing_format: str = "qcow2") -> None:
    """A qcow2 naming ``backing`` as it is written (qemu-img does not open it: -u)."""
    command = ["qemu-img", "create", "-q", "-f", "qcow2"]
    if backing is not None:
        command += ["-u", "-b", backing, "-F", backing_format]
    subprocess.run([*command, str(path), "64M"], check=True)
    path.chmod(0o644)


def _hostile_disk(slug: str) -> Path:
    """The disk of image ``slug``, built now: each brings along (or is) a file it must not."""
    directory = DISKS / slug
    directory.mkdir(mode=0o755)
    disk = directory / "disk.qcow2"
    if slug == "backing-outside":  # the guest would read /etc/passwd as its disk
        _qcow2(disk, "/etc/passwd", "raw")
    elif slug == "backing-link":  # inside the image's directory by name, a link to /etc/passwd in fact
        (directory / "base.qcow2").symlink_to("/etc/passwd")
        _qcow2(disk, "base.qcow2", "raw")
    elif slug == "backing-deep":  # the disk's backing file is fine; its own backing file is not
        _qcow2(directory / "middle.qcow2", "/etc/passwd", "raw")
        _qcow2(disk, "middle.qcow2")
    elif slug == "backing-data-file":  # a qcow2 whose guest data lives in another file: made here, then renamed
        data = directory / "data.raw"
        made = ["qemu-img", "create", "-q", "-f", "qcow2", "-o", f"data_file={data}", str(disk), "64M"]
        subprocess.run(made, check=True)
        subprocess.run(["qemu-img", "amend", "-o", "data_file=/etc/passwd", str(disk)], check=True)
        disk.chmod(0o644)
    elif slug == "backing-protocol":  # this machine would connect out
        _qcow2(disk, "nbd://127.0.0.1:9/export", "raw")
    elif slug == "backing-fifo":  # opening it would hang whoever opens it
        os.mkfifo(directory / "pipe")
        _qcow2(disk, "pipe", "raw")
    elif slug == "disk-link":  # the disk itself, made a link after validation
        _qcow2(directory / "real.qcow2")
        disk.symlink_to(directory / "real.qcow2")
    elif slug == "backing-inside":  # a chain that stays in the image's directory: allowed
        _qcow2(directory / "base.qcow2")
        _qcow2(disk, "base.qcow2")
    return disk


@pytest.mark.parametrize(
    ("slug", "expected"),
    [
        ("backing-outside", "disk.qcow2: backing file /etc/passwd is outside the image's directory"),
        ("backing-link", "disk.qcow2: backing file {dir}/base.qcow2 is a symbolic link"),
        ("backing-deep", "backing file /etc/passwd is outside the image's directory and the directories "
         "SYRINGE_LOCAL__IMAGE_DIRS lists (named by {dir}/middle.qcow2)"),
        ("backing-data-file", "disk.qcow2: external data file /etc/passwd is outside the image's directory"),
        ("backing-protocol", "backing file 'nbd://127.0.0.1:9/export' is not a file path"),
        ("backing-fifo", "disk.qcow2: backing file {dir}/pipe is a FIFO"),
        ("disk-link", "disk image {dir}/disk.qcow2 is a symbolic link"),
    ],
)  # fmt: skip
async def test_a_disk_that_brings_along_a_file_outside_its_image_is_refused(
    http: httpx.AsyncClient, slug: str, expected: str
) -> None:
    await asyncio.to_thread(_hostile_disk, slug)
    view, _ = await launch(http, slug)
    assert view["status"] == "ERROR", view
    assert f"endpoint router: image {slug}: disk image " in view["error"], view["error"]
    assert expected.format(dir=DISKS / slug) in view["error"], view["error"]
    await asyncio.sleep(1)  # the cleanup runs in the background
    assert qemu_processes(f"syringe.{INSTANCE}-{view['id']}.") == []


async def test_a_backing_chain_inside_the_image_directory_boots(http: httpx.AsyncClient) -> None:
    await asyncio.to_thread(_hostile_disk, "backing-inside")
    view, _ = await launch(http, "backing-inside", until=("BOOTING", "ERROR"))
    assert view["status"] == "BOOTING", view["error"]
    assert len(qemu_processes(f"syringe.{INSTANCE}-{view['id']}.")) == 2
    assert (await http.delete(f"/api/v1/livelessons/{view['id']}")).status_code == 202


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
    image_dirs = json.dumps([str(DISKS)])  # the module's disks, as the curriculum names them
    env = local_env(instance, faulty, SYRINGE_LOCAL__WARM_BOOT="false", SYRINGE_LOCAL__IMAGE_DIRS=image_dirs)
    server = serve_locally(env, tmp_path / "serve.log")
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
