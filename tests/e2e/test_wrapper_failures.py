"""A QEMU wrapper pod that cannot boot its VM, on a real node: its disk is not in the image. The launcher
ends with a line naming the missing disk, the pod never passes its readiness probe, and `syringe up` (as
an operator runs it) fails with an error that names the endpoint and says why. Nothing is left behind."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

from syringe.plan import labels
from tests.e2e.conftest import REPO, Node, timing

MISSING_DISK = "/images/not-in-the-wrapper.qcow2"


def broken_disk_curriculum(root: Path) -> Path:
    """One lesson, one endpoint on the project's wrapper image (its slug is the image's name), whose vm.disk
    the wrapper does not hold."""
    (root / "images" / "qemu-wrapper").mkdir(parents=True)
    (root / "curriculum.meta.yaml").write_text("name: e2e\ndescription: a wrapper without its disk\n")
    (root / "images" / "qemu-wrapper" / "image.meta.yaml").write_text(
        "slug: qemu-wrapper\ndescription: the wrapper, pointed at a disk it lacks\nkind: vm\nflavor: trusted\n"
        f"sshUser: antidote\nsshPassword: antidotepassword\nvm:\n  memory: 128Mi\n  disk: {MISSING_DISK}\n"
    )
    lesson = root / "lessons" / "no-disk"
    (lesson / "stage0").mkdir(parents=True)
    (lesson / "stage0" / "guide.md").write_text("# A router without a disk\n")
    (lesson / "lesson.meta.yaml").write_text(
        "name: A router without a disk\nslug: no-disk\ncategory: fundamentals\nendpoints:\n"
        "- name: router\n  image: qemu-wrapper\n  presentations: [{name: cli, port: 22, type: ssh}]\n"
        "stages:\n- description: only\n"
    )
    return root


def syringe(*args: str, env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "syringe.cli", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout
    )


def operator_env(node: Node, instance: str, privileged: list[str], vm_cpu: str = "250m") -> dict[str, str]:
    """`syringe up` as an operator runs it against the node: the locally built images, never pulled."""
    return {
        **os.environ,
        "SYRINGE_KUBECONFIG": node.kubeconfig,
        "SYRINGE_KUBERNETES__ADDRESS_MODE": "pod-ip",
        "SYRINGE_PLAN__INSTANCE": instance,
        "SYRINGE_PLAN__IMAGE_REGISTRY": "localhost/syringe",
        "SYRINGE_PLAN__IMAGE_TAG": "dev",
        "SYRINGE_PLAN__IMAGE_PULL_POLICY": "Never",
        "SYRINGE_PLAN__PRIVILEGED_IMAGES": json.dumps(privileged),
        "SYRINGE_PLAN__VM_CPU_REQUEST": vm_cpu,
    }


def remove_all(node: Node, env: dict[str, str], instance: str) -> str:
    """`syringe down` every live lesson `syringe ls` lists; then what is left of the instance ("": nothing)."""
    for word in syringe("ls", env=env, timeout=60).stdout.split():
        if len(word) == 10 and all(c in "0123456789abcdef" for c in word):
            syringe("down", word, env=env, timeout=300)
    left = ""
    for _ in range(300):
        left = node.kubectl("get", "namespaces", "-l", f"{labels.INSTANCE}={instance}", "-o", "name").strip()
        if not left:
            break
        time.sleep(1)
    return left


def test_a_wrapper_without_its_disk_fails_naming_the_endpoint(
    node: Node, images: dict[str, str], tmp_path: Path
) -> None:
    instance = f"e2e{uuid.uuid4().hex[:6]}"
    env = operator_env(node, instance, ["qemu-wrapper"])
    curriculum = broken_disk_curriculum(tmp_path / "curriculum")
    started = time.monotonic()
    try:
        up = syringe("up", "no-disk", "--curriculum", str(curriculum), env=env)
        timing("wrapper without its disk: syringe up -> ERROR", time.monotonic() - started)
        out = up.stdout + up.stderr
        assert up.returncode != 0, out
        assert "Traceback" not in out, out
        assert "router" in out, out
        # The launcher's own last words reach the operator: which disk is missing.
        assert f"{MISSING_DISK} does not exist" in out, out
    finally:
        # Whatever `up` left, `down` removes, and then nothing of the instance is left in the cluster.
        left = remove_all(node, env, instance)
    assert not left, f"left behind: {left}"
