"""The local kinds other than tiny-linux, for real: a kernel and initrd named by the image, and a qcow2
disk booted through an overlay that leaves the image's disk untouched."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import asyncssh
import httpx
import pytest

from syringe.runtime.local.tinylinux import TinyLinux
from tests.local.conftest import local_env, qemu_processes, serve_locally
from tests.local.test_local_faults import _image, _lesson
from tests.local.test_local_runtime import external, launch, wait_gone

INSTANCE = f"li{os.getpid() % 100000}"


@pytest.fixture(scope="module")
def curriculum(tiny_linux: TinyLinux, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("images") / "lessons"
    root.mkdir()
    (root / "curriculum.meta.yaml").write_text("name: Local kinds\n")
    password = base64.b64encode(b"antidotepassword").decode()
    _image(
        root,
        "raw-kernel",
        f"local:\n  kind: kernel\n  kernel: {tiny_linux.kernel}\n  initrd: {tiny_linux.initrd}\n"
        f"  append: syringe.host=rawhost syringe.user=antidote syringe.password={password}\n"
        "  readyLine: SYRINGE-VM-READY\n",
    )
    # QEMU runs as nobody: a disk it can read (absolute path), and one in this test's private directory.
    shared = Path(f"/tmp/syringe-test-local/{INSTANCE}-disks")
    shared.mkdir(parents=True, exist_ok=True, mode=0o755)
    _image(root, "blank-disk", f"local:\n  kind: disk\n  disk: {shared}/blank.qcow2\n")
    _image(root, "private-disk", "local:\n  kind: disk\n  disk: disks/private.qcow2\n")
    (root / "images/private-disk/disks").mkdir()
    for disk in (shared / "blank.qcow2", root / "images/private-disk/disks/private.qcow2"):
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(disk), "64M"], check=True)
        disk.chmod(0o644)
    _lesson(root, "kernel-host", [("host", "raw-kernel")])
    _lesson(root, "disk-host", [("host", "blank-disk")])
    _lesson(root, "private-disk", [("host", "private-disk")])
    return root


@pytest.fixture(scope="module")
def served(curriculum: Path, tiny_linux: TinyLinux, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    # Absolute local: paths are the operator's to allow: the tiny VM's cache and the shared disks' directory.
    image_dirs = json.dumps([str(tiny_linux.directory), f"/tmp/syringe-test-local/{INSTANCE}-disks"])
    env = local_env(INSTANCE, curriculum, SYRINGE_LIFECYCLE__PROBE_TIMEOUT="4", SYRINGE_LOCAL__IMAGE_DIRS=image_dirs)
    server = serve_locally(env, tmp_path_factory.mktemp("serve") / "serve.log")
    try:
        yield server.start()
    finally:
        output = server.stop()
        assert "Traceback" not in output, output[-4000:]


async def test_a_kernel_and_initrd_named_by_the_image_boot(http: httpx.AsyncClient) -> None:
    view, _ = await launch(http, "kernel-host")
    assert view["status"] == "READY", view["error"]
    host, port = external(view, "host", "cli")
    async with asyncssh.connect(
        host, port, username="antidote", password="antidotepassword", known_hosts=None, client_keys=None
    ) as connection:
        assert str((await connection.run("hostname", timeout=30)).stdout).strip() == "rawhost"
    await http.delete(f"/api/v1/livelessons/{view['id']}")


def _info(path: Path) -> dict[str, object]:
    done = subprocess.run(["qemu-img", "info", "-U", "--output=json", str(path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    info: dict[str, object] = json.loads(done.stdout)
    return info


async def test_a_disk_boots_through_an_overlay_and_the_image_stays_as_it_was(
    http: httpx.AsyncClient, curriculum: Path
) -> None:
    base = Path(f"/tmp/syringe-test-local/{INSTANCE}-disks/blank.qcow2")
    before = await asyncio.to_thread(base.read_bytes)
    created = await http.post("/api/v1/livelessons", json={"lesson": "disk-host"})
    livelesson = created.json()["id"]
    overlay = Path(f"/tmp/syringe-test-local/{INSTANCE}/{INSTANCE}-{livelesson}/vms/host/disk.qcow2")
    for _ in range(100):
        if qemu_processes(f"syringe.{INSTANCE}-{livelesson}.") and await asyncio.to_thread(overlay.exists):
            break
        await asyncio.sleep(0.1)
    info = await asyncio.to_thread(_info, overlay)
    assert info["backing-filename"] == str(base)  # already absolute and without links
    assert info["format"] == "qcow2"
    # A blank disk boots nothing: the launch fails on its probe, with the reason. The VM stays for
    # inspection (its console), as a failed pod does, until the live lesson is deleted.
    view, _ = await launch(http, "disk-host")
    assert view["status"] == "ERROR"
    assert "host/cli (port 22): ssh handshake" in view["error"], view["error"]
    assert (await http.delete(f"/api/v1/livelessons/{livelesson}")).status_code == 202
    await wait_gone(http, livelesson)
    assert qemu_processes(f"syringe.{INSTANCE}-{livelesson}.") == []
    assert await asyncio.to_thread(base.read_bytes) == before


async def test_a_disk_qemu_cannot_read_is_refused_before_anything_starts(http: httpx.AsyncClient) -> None:
    view, _ = await launch(http, "private-disk")
    assert view["status"] == "ERROR"
    assert "endpoint host: image private-disk: " in view["error"]
    assert "is not readable by nobody, whom QEMU runs as" in view["error"], view["error"]
    assert qemu_processes(f"syringe.{INSTANCE}-{view['id']}.") == []
