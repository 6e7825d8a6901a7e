"""Stage 1, for real: a bootable Debian disk built from Debian packages (the stand-in for an install image),
prepared by `syringe image prepare` (virt-customize's appliance under TCG, packages from a local
repository), then booted by the local runtime as `kind: disk` beside a tiny VM. And the other way in: a
console script driving the same disk's serial login, whose effect survives a reboot."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncssh
import httpx
import pexpect
import pytest

from syringe.curriculum.models import Image
from syringe.images.console import boot_command
from syringe.images.debian_disk import ROOT_PASSWORD, build_debian_disk
from syringe.runtime.local.tinylinux import TinyLinux, default_cache
from tests.integration.helpers import REPO
from tests.local.conftest import local_env, serve_locally
from tests.local.test_local_runtime import external, launch, run, wait_gone

INSTANCE = f"pp{os.getpid() % 100000}"
PREPARED_IMAGE = """slug: debian
description: Debian bookworm, prepared from a plain install by syringe image prepare
kind: vm
sshUser: antidote
sshPassword: antidotepassword
vm:
  disk: /images/debian/disk.qcow2
  memory: 512Mi
local:
  kind: disk
  disk: disk.qcow2
  memory: 512Mi
prepare:
  groups: [sudo, adm]
  packages: [openssh-server, sudo, iputils-ping]
  services: [netconf]
  commands:
    - echo 'antidote ALL=(ALL) NOPASSWD:ALL' > /etc/sudoers.d/antidote && chmod 440 /etc/sudoers.d/antidote
"""
MARK = "/etc/syringe-console-mark"
NETCONF = "urn:ietf:params:xml:ns:netconf:base:1.0"
SYSTEM = "urn:ietf:params:xml:ns:yang:ietf-system"


def syringe(*args: str, timeout: float = 1800) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "syringe.cli", *args], cwd=REPO, capture_output=True, text=True, timeout=timeout
    )


def events(output: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


def console_image(root: Path, slug: str, steps: list[dict[str, Any]]) -> Path:
    directory = root / slug
    directory.mkdir(parents=True)
    text = f"slug: {slug}\nkind: vm\nvm:\n  disk: /images/{slug}/disk.qcow2\n  memory: 512Mi\nprepare:\n  console:\n"
    for step in steps:
        text += "  - " + json.dumps(step) + "\n"
    (directory / "image.meta.yaml").write_text(text)
    return directory


def debian_lesson(root: Path, slug: str, peer: tuple[str, str], subnet: str) -> None:
    """A lesson of two endpoints: ``deb`` (the prepared Debian image), linked to ``peer`` (name, image)."""
    lesson = root / "lessons" / slug
    (lesson / "stage0").mkdir(parents=True)
    (lesson / "stage0" / "guide.md").write_text("# A prepared Debian disk\n")
    (lesson / "lesson.meta.yaml").write_text(
        f"name: A prepared Debian disk\nslug: {slug}\ncategory: fundamentals\nendpoints:\n"
        "- name: deb\n  image: debian\n  presentations: [{name: cli, port: 22, type: ssh}]\n"
        f"- name: {peer[0]}\n  image: {peer[1]}\n  presentations: [{{name: cli, port: 22, type: ssh}}]\n"
        f"connections:\n- {{a: deb, b: {peer[0]}, subnet: {subnet}}}\nstages:\n- description: only\n"
    )


@pytest.fixture(scope="module")
def debian_base() -> Path:
    """The plain Debian disk (cached by its recipe: the first build takes a minute or two)."""
    return build_debian_disk().path


@pytest.fixture(scope="module")
def curriculum(debian_base: Path, tiny_linux: TinyLinux) -> Iterator[Path]:
    # QEMU runs as nobody: the prepared disk is placed in a directory it can read (pytest's are closed).
    root = Path(f"/tmp/syringe-test-local/{INSTANCE}-lessons")
    shutil.rmtree(root, ignore_errors=True)
    (root / "images" / "debian").mkdir(parents=True)
    for directory in (root.parent, root, root / "images", root / "images" / "debian"):
        directory.chmod(0o755)
    (root / "curriculum.meta.yaml").write_text("name: Prepared disks\n")
    (root / "images" / "debian" / "image.meta.yaml").write_text(PREPARED_IMAGE)
    (root / "images" / "tiny").mkdir()
    (root / "images" / "tiny" / "image.meta.yaml").write_text(
        "slug: tiny\nsshUser: antidote\nsshPassword: antidotepassword\nlocal:\n  kind: tiny-linux\n"
    )
    debian_lesson(root, "debian-lab", ("peer", "tiny"), "10.33.0.0/24")
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def prepared(curriculum: Path, debian_base: Path) -> list[dict[str, Any]]:
    """`syringe image prepare --json` on the Debian disk: its progress events (prepared, or cached)."""
    done = syringe("image", "prepare", str(curriculum / "images" / "debian"), "--base", str(debian_base), "--json")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    return events(done.stdout)


@pytest.fixture(scope="module")
def served(curriculum: Path, prepared: list[dict[str, Any]], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    env = local_env(INSTANCE, curriculum)
    server = serve_locally(env, tmp_path_factory.mktemp("serve") / "serve.log")
    try:
        yield server.start()
    finally:
        output = server.stop()
        assert "Traceback" not in output, output[-4000:]


def test_prepare_reports_each_step_and_is_cached_by_content(curriculum: Path, debian_base: Path,
                                                            prepared: list[dict[str, Any]]) -> None:  # fmt: skip
    done = prepared[-1]
    assert done["event"] == "done", prepared
    disk = Path(done["disk"])
    assert disk.is_file() and disk.parent == default_cache() / "prepared"
    # The prepared disk is where the local runtime boots it from (local.disk), as the same file.
    assert os.path.samefile(disk, curriculum / "images" / "debian" / "disk.qcow2")
    finished = [e["step"] for e in prepared if e["event"] == "finish"]
    if not done["cached"]:
        for step in ("users and groups", "installing packages", "enabling SSH", "management network (DHCP)",
                     "identity, lesson share and ready line", "commands", "compacting"):  # fmt: skip
            assert step in finished, finished
    # Again: the same inputs give the same disk, from the cache.
    again = syringe("image", "prepare", str(curriculum / "images" / "debian"), "--base", str(debian_base), "--json")
    assert again.returncode == 0, again.stderr
    last = events(again.stdout)[-1]
    assert last["cached"] is True and last["disk"] == done["disk"]
    # The base disk is left as it was: prepare worked on a copy.
    info = subprocess.run(["qemu-img", "check", "-q", str(debian_base)], capture_output=True, text=True)
    assert info.returncode == 0, info.stderr


async def test_a_prepared_disk_boots_with_its_login_groups_dhcp_share_and_link(served: str) -> None:
    async with httpx.AsyncClient(base_url=served, timeout=60) as http:
        token = (await http.post("/api/v1/sessions")).json()["token"]
        http.headers["Authorization"] = f"Bearer {token}"
        view, _ = await launch(http, "debian-lab")
        assert view["status"] == "READY", view["error"]
        host, port = external(view, "deb", "cli")
        # SSH as the metafile's user, in the groups it names; the hostname and the link's address from the
        # identity Syringe handed over (fw_cfg), the management NIC's address from DHCP (a "dynamic" one).
        looked = "hostname; id -nG; ip -4 -o address show; cat /antidote/stage0/guide.md; ip route"
        shown = await run(host, port, looked)
        assert shown.exit_status == 0, shown.stderr
        out = str(shown.stdout)
        assert out.startswith("deb\n"), out
        assert {"antidote", "sudo", "adm"} <= set(out.splitlines()[1].split()), out
        assert "inet 10.33.0.1/24" in out, out
        management = [line for line in out.splitlines() if "10.0.2.15/24" in line]
        assert management and "dynamic" in management[0], out
        assert "# A prepared Debian disk" in out, out
        # Replies to a client on another host (a pod's) go back through QEMU's gateway.
        assert "default via 10.0.2.2 dev" in out, out
        pinged = await run(host, port, "ping -c 2 -W 3 10.33.0.2 && sudo -n true && echo root-by-sudo")
        assert pinged.exit_status == 0, str(pinged.stdout) + str(pinged.stderr)
        assert "root-by-sudo" in str(pinged.stdout)
        # services: [netconf]: Syringe's NETCONF server is sshd's netconf subsystem, with the guest's state.
        assert "<os-name>Linux</os-name>" in await netconf_get(host, port)
        await http.delete(f"/api/v1/livelessons/{view['id']}")
        await wait_gone(http, view["id"])


async def netconf_get(host: str, port: int) -> str:
    """A <get> of system-state over the netconf subsystem (base:1.0 framing): the reply."""
    end = "]]>]]>"
    hello = f'<hello xmlns="{NETCONF}"><capabilities><capability>urn:ietf:params:netconf:base:1.0</capability>'
    rpc = f'<rpc message-id="1" xmlns="{NETCONF}"><get><filter type="subtree"><system-state xmlns="{SYSTEM}"/>'
    async with asyncssh.connect(
        host, port, username="antidote", password="antidotepassword", known_hosts=None, client_keys=None
    ) as connection:
        writer, reader, _ = await connection.open_session(subsystem="netconf", encoding="utf-8")
        await asyncio.wait_for(reader.readuntil(end), 60)
        writer.write(f"{hello}</capabilities></hello>{end}{rpc}</filter></get></rpc>{end}")
        return str(await asyncio.wait_for(reader.readuntil(end), 60))


def test_a_console_script_prepares_the_disk_and_its_effect_survives_a_reboot(debian_base: Path, tmp_path: Path) -> None:
    login = [{"expect": "login:", "send": "root", "timeout": 300},
             {"expect": "Password:", "send": ROOT_PASSWORD, "secret": True}]  # fmt: skip
    # The mark is computed by the guest's shell, so the echo of the command never shows the text looked for.
    steps = [*login, {"expect": "#", "send": f"echo console-$((6*7)) > {MARK}; sync; poweroff"}]
    image = console_image(tmp_path, "appliance", steps)
    done = syringe("image", "prepare", str(image), "--base", str(debian_base), "--json", "--force")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    seen = events(done.stdout)
    assert "console step 2: expect 'Password:' then send ****" in [e.get("step") for e in seen]
    assert ROOT_PASSWORD + "\n" not in done.stdout  # the secret step never shows what it sent
    disk = Path(seen[-1]["disk"])
    # Boot what prepare made and look: the file the script wrote is there after the reboot.
    command = boot_command_for(disk, tmp_path / "check.qcow2")
    child = pexpect.spawn(command[0], command[1:], encoding="utf-8", codec_errors="replace", timeout=300)
    try:
        child.expect_exact("login:")
        child.send("root\r")
        child.expect_exact("Password:")
        child.send(ROOT_PASSWORD + "\r")
        child.expect_exact("#")
        child.send(f"cat {MARK}; poweroff\r")
        child.expect_exact("console-42")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)


def test_a_console_step_that_times_out_names_the_step_and_leaves_nothing(debian_base: Path, tmp_path: Path) -> None:
    steps = [{"expect": "login:", "send": "root", "timeout": 300},
             {"expect": "a prompt this guest never prints", "timeout": 5}]  # fmt: skip
    image = console_image(tmp_path, "stuck", steps)
    before = set((default_cache() / "prepared").iterdir())
    done = syringe("image", "prepare", str(image), "--base", str(debian_base))
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert "console step 2: expect 'a prompt this guest never prints'" in done.stderr
    assert "did not appear in time" in done.stderr
    assert "Password:" in done.stderr  # the console's last lines, as the guest printed them
    after = set((default_cache() / "prepared").iterdir())
    assert after - before == set(), after - before  # no disk, no work directory left


def boot_command_for(disk: Path, overlay: Path) -> list[str]:
    """QEMU booting ``disk`` through an overlay, its serial console on stdio, as prepare's console runs."""
    image = Image.model_validate({"slug": "check", "kind": "vm", "vm": {"disk": "/x.qcow2", "memory": "512Mi"}})
    command = ["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", str(disk), str(overlay)]
    subprocess.run(command, check=True)
    return boot_command(image, overlay)
