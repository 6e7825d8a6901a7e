"""The committed bundle (api/ui_static) is what ui/src builds to, and stays small."""

from __future__ import annotations

import gzip
import subprocess

from tests.integration.helpers import REPO

STATIC = REPO / "api" / "ui_static"


def test_rebuilding_from_source_reproduces_the_committed_bundle() -> None:
    done = subprocess.run(
        ["node", "build.mjs", "--check"], cwd=REPO / "ui", capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_ui_javascript_is_under_300_kb_gzipped() -> None:
    scripts = sorted(STATIC.glob("*.js"))
    assert scripts, "no bundle in api/ui_static"
    total = sum(len(gzip.compress(path.read_bytes(), 9)) for path in scripts)
    print(f"UI JavaScript: {total} bytes gzipped in {len(scripts)} files")
    assert total < 300 * 1024
