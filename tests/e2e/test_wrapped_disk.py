"""Stage 1 on a real node: the Debian disk prepared by `syringe image prepare`, wrapped by `syringe image
wrap --load` into an image FROM the project's QEMU wrapper, runs as a wrapper pod beside a tiny-VM router,
and `syringe up` sees the lesson READY. Inside, the launcher handed the disk its identity (fw_cfg): its
hostname, the link's NIC renamed and addressed; the management NIC took DHCP from the wrapper's QEMU; the
learner logs in with the metafile's password and pings across the NAD bridge. Nothing is left after."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import time
import uuid
from pathlib import Path

import asyncssh

from syringe.images.debian_disk import build_debian_disk
from tests.e2e.conftest import REPO, Node, timing
from tests.e2e.test_wrapper_failures import operator_env, remove_all, syringe
from tests.local.test_prepare import PREPARED_IMAGE, debian_lesson


def curriculum(root: Path) -> Path:
    (root / "images" / "debian").mkdir(parents=True)
    (root / "curriculum.meta.yaml").write_text("name: e2e\ndescription: a prepared disk in a wrapper pod\n")
    # trusted, and in the operator's privileged list below: QEMU in the wrapper needs /dev/net/tun.
    (root / "images" / "debian" / "image.meta.yaml").write_text(PREPARED_IMAGE + "flavor: trusted\n")
    shutil.copytree(REPO / "lessons" / "images" / "linux-router", root / "images" / "linux-router")
    debian_lesson(root, "debian-pod", ("router", "linux-router"), "10.44.0.0/24")
    return root


async def look_inside(host: str, port: int) -> str:
    async with asyncssh.connect(
        host, port, username="antidote", password="antidotepassword", known_hosts=None, client_keys=None
    ) as connection:
        done = await connection.run("hostname; id -nG; ip -4 -o address show; ping -c 2 -W 3 10.44.0.2", timeout=60)
        return f"{done.exit_status}\n{done.stdout}{done.stderr}"


def test_a_wrapped_prepared_disk_runs_as_a_wrapper_pod(node: Node, images: dict[str, str], tmp_path: Path) -> None:
    root = curriculum(tmp_path / "curriculum")
    started = time.monotonic()
    base = build_debian_disk().path
    wrapped = syringe("image", "wrap", str(root / "images" / "debian"), "--base", str(base), "--load", "--json",
                      env=dict(os.environ), timeout=3600)  # fmt: skip
    timing("syringe image wrap --load (prepare cached or not, wrapper build, import)", time.monotonic() - started)
    assert wrapped.returncode == 0, wrapped.stdout[-3000:] + wrapped.stderr[-3000:]
    done = json.loads(wrapped.stdout.splitlines()[-1])
    assert done["image"] == "localhost/syringe/debian:dev"
    listed = node.kubectl("get", "node", node.node_name, "-o", "jsonpath={.metadata.name}")
    assert listed == node.node_name

    instance = f"e2e{uuid.uuid4().hex[:6]}"
    env = operator_env(node, instance, ["debian", "linux-router"], vm_cpu="500m")
    started = time.monotonic()
    try:
        up = syringe("up", "debian-pod", "--curriculum", str(root), env=env, timeout=1200)
        timing("prepared disk in a wrapper pod: syringe up -> READY", time.monotonic() - started)
        out = up.stdout + up.stderr
        assert up.returncode == 0, out[-4000:]
        assert "READY" in out and "Traceback" not in out, out[-4000:]
        reach = re.search(r"deb/cli \(ssh\): ssh -p (\d+) antidote@(\S+)", out)
        assert reach is not None, out
        inside = asyncio.run(look_inside(reach.group(2), int(reach.group(1))))
        assert inside.startswith("0\ndeb\n"), inside
        assert {"sudo", "adm"} <= set(inside.splitlines()[2].split()), inside
        assert "inet 10.44.0.1/24" in inside, inside  # the link's address, from the launcher's identity
        assert any("10.0.2.15/24" in line and "dynamic" in line for line in inside.splitlines()), inside
        assert " 0% packet loss" in inside, inside
    finally:
        left = remove_all(node, env, instance)
    assert not left, f"left behind: {left}"
