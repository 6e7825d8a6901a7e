"""Browser tests: the real `syringe serve` on the embedded default (real QEMU tiny VMs), driven by Debian's
chromium through playwright-core (scripts/setup-ui.sh installs both). Node scripts drive the browser and
answer JSON; the tests assert on it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from syringe.runtime.local.tinylinux import TinyLinux
from tests.integration.helpers import REPO
from tests.local.conftest import local_env, qemu_processes, serve_locally, tiny_linux  # noqa: F401 - a fixture

INSTANCE = f"ui{os.getpid() % 100000}"
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
SCREENSHOTS = REPO / "docs" / "screenshots"
DRIVER = Path(__file__).resolve().parent / "drive.mjs"
CHROMIUM = "/usr/bin/chromium"

# two-hosts with a second stage whose checks the learner can fail, then pass from the terminal.
SECOND_STAGE = """- description: Leave a note on linux1, then check your work
  guideType: markdown
  verify:
  - name: reach-linux2
    endpoint: linux1
    description: linux1 reaches linux2 across the link
    command: ping -c 1 -W 2 10.12.0.2
  - name: note-left
    endpoint: linux1
    description: /tmp/note on linux1 says done
    command: cat /tmp/note
    expect: "^done"
"""
SECOND_GUIDE = """# Check your work

Leave a note where the check looks for it:

```
echo done > /tmp/note
```

Then press **Check my work**.
"""


def _image(root: Path, slug: str, body: str) -> None:
    (root / "images" / slug).mkdir(parents=True)
    (root / "images" / slug / "image.meta.yaml").write_text(
        f"slug: {slug}\nsshUser: antidote\nsshPassword: antidotepassword\n{body}"
    )


def _lesson(root: Path, slug: str, name: str, endpoints: list[tuple[str, str]]) -> None:
    (root / "lessons" / slug / "stage0").mkdir(parents=True)
    (root / "lessons" / slug / "stage0" / "guide.md").write_text(f"# {name}\n")
    text = f"name: {name}\nslug: {slug}\ncategory: tools\ntags: [demo]\nendpoints:\n"
    for endpoint, image in endpoints:
        text += f"- name: {endpoint}\n  image: {image}\n  presentations: [{{name: cli, port: 22, type: ssh}}]\n"
    (root / "lessons" / slug / "lesson.meta.yaml").write_text(text + "stages:\n- description: only\n")


@pytest.fixture(scope="session")
def browser_curriculum(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example curriculum, plus: a second stage for two-hosts, a lesson no local VM can run (the catalog
    says so), and one whose router's disk is missing (its launch fails, naming the endpoint)."""
    root = tmp_path_factory.mktemp("curriculum") / "lessons"
    shutil.copytree(REPO / "lessons", root)
    two_hosts = root / "lessons" / "two-hosts"
    meta = two_hosts / "lesson.meta.yaml"
    meta.write_text(meta.read_text() + SECOND_STAGE)
    (two_hosts / "stage1").mkdir()
    (two_hosts / "stage1" / "guide.md").write_text(SECOND_GUIDE)
    _image(root, "cluster-switch", "description: A switch image with no local VM\n")
    _image(root, "router-disk", "description: A router disk\nlocal:\n  kind: disk\n  disk: disks/router.qcow2\n")
    _lesson(root, "cluster-lab", "Cluster-only switching", [("host", "utility"), ("switch", "cluster-switch")])
    _lesson(root, "missing-disk", "Router from a missing disk", [("host", "utility"), ("router", "router-disk")])
    return root


@pytest.fixture(scope="session")
def served(tiny_linux: TinyLinux, browser_curriculum: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:  # noqa: F811
    if not Path(CHROMIUM).exists() or not (REPO / "ui" / "node_modules" / "playwright-core").is_dir():
        pytest.fail("the browser tests need chromium and ui/node_modules: run scripts/setup-ui.sh", pytrace=False)
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    server = serve_locally(local_env(INSTANCE, browser_curriculum), log)
    try:
        yield server.start()
    finally:
        output = server.stop()
        assert "Traceback" not in output, output[-4000:]
        assert qemu_processes(f"syringe.{INSTANCE}-") == [], "syringe serve stopped, but VMs remain"


def drive(scenario: str, base: str, timeout: float = 300) -> dict[str, Any]:
    """Runs one scenario of drive.mjs in a fresh chromium profile; its JSON answer, or the test fails with its
    output (the script's own errors and the page's console included)."""
    ARTIFACTS.mkdir(exist_ok=True)
    done = subprocess.run(
        ["node", str(DRIVER), scenario, base, str(ARTIFACTS)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        pytest.fail(f"drive.mjs {scenario} failed ({done.returncode}):\n{done.stdout[-6000:]}\n{done.stderr[-6000:]}")
    answer: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return answer


def publish(name: str) -> None:
    """A screenshot the README shows: the test's artifact, copied to docs/screenshots."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(ARTIFACTS / name, SCREENSHOTS / name)
