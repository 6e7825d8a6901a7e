"""`syringe configure`, the configuration Jobs' entrypoint, against real SSH and NETCONF servers."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import asyncssh
import pytest

from syringe.access.netconf import BASE_NS, NetconfSession
from syringe.configure.runners import napalm_command
from syringe.configure.target import ConfigTarget
from syringe.errors import ConfigureError
from tests.integration.helpers import REPO
from tests.standin.servers import PodServers

pytestmark = pytest.mark.integration
HOST = "127.109.0.1"

PYTHON_CONFIG = """\
import asyncio, os
import asyncssh

async def main():
    async with asyncssh.connect(os.environ["SYRINGE_TARGET_HOST"], int(os.environ["SYRINGE_TARGET_PORT"]),
                                username=os.environ["SYRINGE_TARGET_USER"],
                                password=os.environ["SYRINGE_TARGET_PASSWORD"], known_hosts=None) as conn:
        marker = os.environ["MARKER"]
        await conn.run(f"echo python stage {os.environ['SYRINGE_STAGE']} > {marker}", check=True)
        print("wrote", marker)

asyncio.run(main())
"""

ANSIBLE_CONFIG = """\
- hosts: all
  gather_facts: false
  tasks:
  - name: write the marker
    ansible.builtin.raw: echo ansible > {marker}
"""

NETCONF_CONFIG = """\
<config xmlns="urn:ietf:params:xml:ns:netconf:base:1.0">
  <system xmlns="urn:ietf:params:xml:ns:yang:ietf-system"><hostname>configured-by-syringe</hostname></system>
</config>
"""


@pytest.fixture
async def target() -> AsyncIterator[PodServers]:
    pod = PodServers(
        HOST, "r1", [("ssh-2222", 2222), ("netconf-2830", 2830)], asyncssh.generate_private_key("ssh-ed25519")
    )
    await pod.start()
    yield pod
    await pod.stop()


def _lesson(tmp_path: Path, marker: Path) -> Path:
    configs = tmp_path / "lesson" / "stage1" / "configs"
    configs.mkdir(parents=True)
    (configs / "r1.py").write_text(PYTHON_CONFIG)
    (configs / "r1.yml").write_text(ANSIBLE_CONFIG.format(marker=marker))
    (configs / "r1.xml").write_text(NETCONF_CONFIG)
    (configs / "fails.py").write_text("print('the device said no')\nraise SystemExit(3)\n")
    return tmp_path / "lesson"


async def configure(
    kind: str,
    port: int,
    lesson: Path,
    marker: Path,
    endpoint: str = "r1",
    timeout: int = 120,
    extra_env: dict[str, str] | None = None,
    extra_args: tuple[str, ...] = (),
) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "SYRINGE_TARGET_HOST": HOST,
        "SYRINGE_TARGET_PORT": str(port),
        "SYRINGE_TARGET_USER": "antidote",
        "SYRINGE_TARGET_PASSWORD": "antidotepassword",
        "SYRINGE_LESSON_DIR": str(lesson),
        "MARKER": str(marker),
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        **(extra_env or {}),
    }
    return await asyncio.to_thread(
        subprocess.run,
        [
            sys.executable,
            "-m",
            "syringe.cli",
            "configure",
            "--type",
            kind,
            "--endpoint",
            endpoint,
            "--stage",
            "1",
            "--timeout",
            str(timeout),
            *extra_args,
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


async def _read(path: Path) -> str:
    async with asyncssh.connect(HOST, 2222, username="u", password="p", known_hosts=None) as conn:
        return str((await conn.run(f"cat {path}", check=True)).stdout)


async def test_python_configurator_changes_the_target(target: PodServers, tmp_path: Path) -> None:
    marker = tmp_path / "python-marker"
    done = await configure("python", 2222, _lesson(tmp_path, marker), marker)
    assert done.returncode == 0, done.stderr
    assert "configured r1 for stage 1 (python)" in done.stdout
    assert await _read(marker) == "python stage 1\n"


async def test_ansible_configurator_changes_the_target(target: PodServers, tmp_path: Path) -> None:
    marker = tmp_path / "ansible-marker"
    done = await configure("ansible", 2222, _lesson(tmp_path, marker), marker)
    assert done.returncode == 0, done.stdout + done.stderr
    assert await _read(marker) == "ansible\n"


async def test_netconf_configurator_edits_the_datastore(target: PodServers, tmp_path: Path) -> None:
    marker = tmp_path / "unused"
    done = await configure("netconf", 2830, _lesson(tmp_path, marker), marker)
    assert done.returncode == 0, done.stderr
    async with await NetconfSession.open(HOST, 2830, "u", "p") as session:
        reply = await session.rpc(f'<get-config xmlns="{BASE_NS}"><source><running/></source></get-config>')
    assert "configured-by-syringe" in reply
    assert target.store.edits == 1


async def test_a_failing_configurator_says_why(target: PodServers, tmp_path: Path) -> None:
    marker = tmp_path / "unused"
    done = await configure("python", 2222, _lesson(tmp_path, marker), marker, endpoint="fails")
    assert done.returncode == 1
    assert "the device said no" in done.stdout
    assert "error: configuring fails for stage 1 (python): fails.py exited with status 3" in done.stderr
    missing = await configure("python", 2222, _lesson(tmp_path / "x", marker), marker, endpoint="nobody")
    assert missing.returncode == 1 and "no python configuration for nobody" in missing.stderr


SCRIPT_SEES = """\
import os, sys
print("argv0", os.path.basename(sys.argv[0]), "name", __name__, "path0", os.path.basename(sys.path[0]))
print("token", os.environ.get("SYRINGE_DONE_TOKEN"), "endpoint", os.environ["SYRINGE_ENDPOINT"])
"""

LEAVES_A_CHILD = """\
import os, subprocess, time
child = subprocess.Popen(["sleep", "300"])
open(os.environ["MARKER"], "w").write(str(child.pid))
time.sleep(300)
"""


async def test_the_done_line_comes_last_and_only_on_success(target: PodServers, tmp_path: Path) -> None:
    """The configurator's last line is its Job's done line (what the Kubernetes runtime follows), and the
    lesson's script runs as `python script` would, without the token in its environment."""
    marker = tmp_path / "unused"
    lesson = _lesson(tmp_path, marker)
    (lesson / "stage1" / "configs" / "sees.py").write_text(SCRIPT_SEES)
    token = {"SYRINGE_DONE_TOKEN": "5ecret"}
    done = await configure("python", 2222, lesson, marker, endpoint="sees", extra_env=token)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[-1] == "SYRINGE-JOB-DONE 5ecret"
    assert "argv0 sees.py name __main__ path0 configs" in lines
    assert "token None endpoint sees" in lines
    failed = await configure("python", 2222, lesson, marker, endpoint="fails", extra_env=token)
    assert failed.returncode == 1 and "SYRINGE-JOB-DONE" not in failed.stdout + failed.stderr


async def test_a_script_past_its_timeout_is_killed_with_what_it_started(target: PodServers, tmp_path: Path) -> None:
    marker = tmp_path / "child-pid"
    lesson = _lesson(tmp_path, marker)
    (lesson / "stage1" / "configs" / "slow.py").write_text(LEAVES_A_CHILD)
    done = await configure("python", 2222, lesson, marker, endpoint="slow", timeout=3)
    assert done.returncode == 1
    assert "slow.py did not finish within 3s" in done.stderr
    assert not _alive(int(marker.read_text()))


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting for its parent's wait does not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except FileNotFoundError:
        return False


async def test_waiting_for_the_target_then_configuring(target: PodServers, tmp_path: Path) -> None:
    """--wait-for-target: an SSH target that answers its version string is configured at once; one that
    never does is reported with the reason."""
    marker = tmp_path / "python-marker"
    lesson = _lesson(tmp_path, marker)
    done = await configure("python", 2222, lesson, marker, extra_args=("--wait-for-target", "20"))
    assert done.returncode == 0, done.stderr
    assert await _read(marker) == "python stage 1\n"
    nobody = await configure("python", 2299, lesson, marker, extra_args=("--wait-for-target", "1"))
    assert nobody.returncode == 1
    assert "did not answer within 1s" in nobody.stderr and "refused" in nobody.stderr


def test_napalm_command_line(tmp_path: Path) -> None:
    """NAPALM needs real vendor devices, which the tests do not have: its file, driver and mode are checked."""
    configs = tmp_path / "stage0" / "configs"
    configs.mkdir(parents=True)
    (configs / "vqfx1-junos.txt").write_text("set system host-name vqfx1\n")
    target = ConfigTarget("vqfx1", 0, HOST, 22, "u", "p", tmp_path)
    driver, path = napalm_command(target, "replace")
    assert (driver, path.name) == ("junos", "vqfx1-junos.txt")
    with pytest.raises(ConfigureError, match="merge or replace"):
        napalm_command(target, "overwrite")
