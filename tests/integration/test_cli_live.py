"""`syringe up`, `ls` and `down` as a user runs them, against the real control plane and stand-in."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.integration.helpers import REPO, StandInProcess

pytestmark = pytest.mark.integration


def syringe(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "syringe.cli", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=180
    )


def test_up_ls_down(standin: StandInProcess, instance: str) -> None:
    env = {
        **os.environ,
        "SYRINGE_KUBECONFIG": os.environ["SYRINGE_TEST_KUBECONFIG"],
        "SYRINGE_KUBERNETES__ADDRESS_MODE": "pod-ip",
        "SYRINGE_PLAN__INSTANCE": instance,
    }
    up = syringe("up", "rest-api-basics", "--stage", "1", "--curriculum", "lessons", env=env)
    assert up.returncode == 0, up.stderr
    assert "status READY" in up.stdout
    assert "inventory: reachable" in up.stdout
    assert re.search(r"linux1/cli \(ssh\): ssh -p 22 antidote@127\.100\.\d+\.\d+", up.stdout)
    assert re.search(r"inventory/web \(http\): http://127\.100\.\d+\.\d+:8080/", up.stdout)
    livelesson = re.search(r"live lesson (\w+) ", up.stdout).group(1)  # type: ignore[union-attr]

    listed = syringe("ls", env=env)
    assert listed.returncode == 0
    row = next(line for line in listed.stdout.splitlines() if line.startswith(livelesson))
    assert row.split()[1:6] == ["rest-api-basics", "1", "READY", "cli", "2/2"]

    down = syringe("down", livelesson, env=env)
    assert down.returncode == 0, down.stderr
    assert f"deleted {livelesson}" in down.stdout
    assert livelesson not in syringe("ls", env=env).stdout
    missing = syringe("down", livelesson, env=env)
    assert missing.returncode == 1
    assert f"no live lesson '{livelesson}'" in missing.stderr


def test_up_without_a_cluster_or_local_vms_says_so() -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("KUBECONFIG", "SYRINGE_KUBECONFIG")}
    env["SYRINGE_LOCAL__ENABLED"] = "false"
    done = syringe("up", "linux-basics", "--curriculum", "lessons", env=env)
    assert done.returncode == 1
    assert "no Kubernetes cluster configured" in done.stderr
    assert "Traceback" not in done.stderr


def test_serve_refuses_an_unreachable_cluster_in_one_line(tmp_path: Path) -> None:
    document = yaml.safe_load(Path(os.environ["SYRINGE_TEST_KUBECONFIG"]).read_text())
    document["clusters"][0]["cluster"]["server"] = "https://127.0.0.1:1"
    (tmp_path / "nowhere.kubeconfig").write_text(yaml.safe_dump(document))
    env = {**os.environ, "SYRINGE_KUBECONFIG": str(tmp_path / "nowhere.kubeconfig")}
    done = syringe("serve", "--curriculum", "lessons", "--port", "1", env=env)
    assert done.returncode == 1
    assert "error: the Kubernetes API server at https://127.0.0.1:1 is unreachable" in done.stderr
    assert "refusing to serve" in done.stderr
    assert "Traceback" not in done.stderr
