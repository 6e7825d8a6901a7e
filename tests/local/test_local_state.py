"""The local runtime's files on this machine: a state directory someone else made first is never trusted
(nor followed), and after a launch nothing in it is open to anyone but Syringe and QEMU's user, each VM's
overlay and identity (its login) to QEMU's user alone."""

from __future__ import annotations

import asyncio
import json
import os
import pwd
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from syringe.runtime.local.runtime import LocalRuntime
from syringe.runtime.local.state import Account, make_state_dir
from syringe.runtime.local.tinylinux import TinyLinux
from syringe.settings import LocalSettings
from tests.local.conftest import local_env, qemu_processes, serve_locally
from tests.local.test_local_faults import _image, _lesson
from tests.local.test_local_runtime import launch, wait_gone

INSTANCE = f"ls{os.getpid() % 100000}"
STATE = Path(f"/tmp/syringe-test-local/{INSTANCE}")
DISKS = Path(f"/tmp/syringe-test-local/{INSTANCE}-disks")
ROOT = os.geteuid() == 0
QEMU_USER = pwd.getpwnam("nobody") if ROOT else pwd.getpwuid(os.geteuid())


@pytest.fixture
def passable() -> Iterator[Path]:
    """A directory in /tmp that QEMU's user may pass through (pytest's own are closed to others)."""
    directory = Path(tempfile.mkdtemp(prefix="syringe-test-state-", dir="/tmp"))
    directory.chmod(0o755)
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


def _victim(directory: Path) -> Path:
    """A directory the attacker's link points at, which Syringe must leave exactly as it was."""
    directory.mkdir(mode=0o700)
    directory.chmod(0o700)
    (directory / "keep").write_text("mine\n")
    return directory


def _assert_private_directory(path: Path) -> None:
    found = path.lstat()
    assert stat.S_ISDIR(found.st_mode), f"{path} is not a directory of its own"
    assert found.st_uid == os.geteuid(), f"{path} belongs to uid {found.st_uid}"
    assert stat.S_IMODE(found.st_mode) & 0o067 == 0, f"{path} is {oct(stat.S_IMODE(found.st_mode))}"


def _start_and_close(state_dir: Path) -> None:
    runtime = LocalRuntime(state_dir.parent, {}, INSTANCE, LocalSettings(state_dir=state_dir, warm_boot=False))

    async def run() -> None:
        await runtime.start()
        await runtime.close()

    asyncio.run(run())


def test_a_state_dir_that_is_a_link_is_replaced_and_never_followed(passable: Path) -> None:
    victim = _victim(passable / "victim")
    state = passable / "state"
    state.symlink_to(victim)  # what anyone may do in /tmp before Syringe starts
    _start_and_close(state)
    _assert_private_directory(state)
    assert stat.S_IMODE(victim.stat().st_mode) == 0o700
    assert (victim / "keep").read_text() == "mine\n"


def test_a_state_dir_another_user_made_is_replaced(passable: Path) -> None:
    if not ROOT:
        pytest.fail("making a directory another user's needs root (run the test command as root)", pytrace=False)
    state = passable / "state"
    state.mkdir()
    (state / "planted").write_text("a trap\n")
    (state / "link").symlink_to("/etc")
    for path in (state, state / "planted"):
        os.chown(path, QEMU_USER.pw_uid, QEMU_USER.pw_gid)
    state.chmod(0o777)
    _start_and_close(state)
    _assert_private_directory(state)
    assert sorted(os.listdir(state)) == []
    assert Path("/etc/passwd").exists()  # the link was removed, not followed


def test_the_default_per_user_directory_is_made_syringes_own(passable: Path) -> None:
    """The default state directory is /tmp/syringe-local-<uid>/<instance>: both levels are predictable."""
    victim = _victim(passable / "victim")
    base = passable / "syringe-local"
    base.symlink_to(victim)
    vm_user = Account.named("nobody") if ROOT else None
    make_state_dir(base / INSTANCE, base, vm_user)
    _assert_private_directory(base)
    _assert_private_directory(base / INSTANCE)
    assert os.listdir(victim) == ["keep"]


# ---------------------------------------------------------------------------------------- after a launch


@pytest.fixture(scope="module")
def curriculum(tiny_linux: TinyLinux, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("state") / "lessons"
    root.mkdir()
    (root / "curriculum.meta.yaml").write_text("name: State\n")
    _image(root, "utility", "local:\n  kind: tiny-linux\n")
    DISKS.mkdir(parents=True, exist_ok=True)
    DISKS.chmod(0o755)
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(DISKS / "blank.qcow2"), "64M"], check=True)
    (DISKS / "blank.qcow2").chmod(0o644)
    _image(root, "blank-disk", f"local:\n  kind: disk\n  disk: {DISKS}/blank.qcow2\n")
    _lesson(root, "two-kinds", [("tiny", "utility"), ("disk", "blank-disk")])
    return root


@pytest.fixture(scope="module")
def served(curriculum: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    env = local_env(
        INSTANCE, curriculum, SYRINGE_LIFECYCLE__PROBE_TIMEOUT="4", SYRINGE_LOCAL__IMAGE_DIRS=json.dumps([str(DISKS)])
    )
    server = serve_locally(env, tmp_path_factory.mktemp("serve") / "serve.log")
    try:
        yield server.start()
    finally:
        output = server.stop()
        shutil.rmtree(DISKS, ignore_errors=True)
        assert "Traceback" not in output, output[-4000:]


def _entries(directory: Path) -> list[Path]:
    return [Path(top) / name for top, dirs, files in os.walk(directory) for name in [*dirs, *files]]


async def test_after_a_launch_nothing_in_the_state_dir_is_open_to_others(http: httpx.AsyncClient) -> None:
    view, _ = await launch(http, "two-kinds", until=("BOOTING", "READY", "ERROR"))
    livelesson = view["id"]
    directory = STATE / f"{INSTANCE}-{livelesson}"
    for _ in range(200):  # each VM's console appears as its QEMU starts
        consoles = await asyncio.to_thread(lambda: [p for p in _entries(directory) if "console" in p.name])
        if len(consoles) == 2 and len(qemu_processes(f"syringe.{INSTANCE}-{livelesson}.")) == 2:
            break
        await asyncio.sleep(0.1)
    entries = await asyncio.to_thread(_entries, STATE)
    share = directory / "lesson"
    for path in [STATE, *entries]:
        if path.is_relative_to(share):
            continue  # the guest itself checks these modes (9p); the live lesson's directory keeps others out
        mode = stat.S_IMODE(path.lstat().st_mode)
        assert mode & 0o007 == 0, f"{path} is {oct(mode)}: open to every user of this machine"
    # What holds a VM's disk or login is QEMU's user's alone.
    secrets = [p for p in entries if "identity" in p.name or p.suffix == ".qcow2" or p.name == "state"]
    assert len(secrets) >= 4, secrets  # the tiny VM's identity, the disk's overlay, a template's identity and state
    for path in secrets:
        found = path.lstat()
        assert (stat.S_IMODE(found.st_mode), found.st_uid) == (0o600, QEMU_USER.pw_uid), path
    # Each VM in a directory of its own, which only QEMU's user may enter; so each warm-boot template.
    for vm_dir in [directory / "vms" / "tiny", directory / "vms" / "disk", *(STATE / "templates").iterdir()]:
        found = vm_dir.lstat()
        assert (stat.S_IMODE(found.st_mode), found.st_uid) == (0o700, QEMU_USER.pw_uid), vm_dir
    assert (await http.delete(f"/api/v1/livelessons/{livelesson}")).status_code == 202
    await wait_gone(http, livelesson)
