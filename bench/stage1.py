"""Issue 18: stage 1 of a lesson image, measured. From the Debian base disk (the stand-in for an install
image) to a prepared disk: prepare's time cold (the disk's cache forgotten; libguestfs' appliance and the
downloaded packages stay cached, as on any machine that prepared once) and cached; the prepared disk's size
against the base's; and boot to the ready line of the prepared disk under TCG, against the base's boot to
its login prompt in the same run.

    .venv/bin/python bench/stage1.py [--repeat 2]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pexpect

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from syringe.curriculum.loader import load_image  # noqa: E402
from syringe.curriculum.models import PREPARED_READY_LINE  # noqa: E402
from syringe.images.debian_disk import build_debian_disk  # noqa: E402
from syringe.images.prepare import prepare_disk  # noqa: E402
from tests.local.test_prepare import PREPARED_IMAGE, boot_command_for  # noqa: E402


def boot_until(disk: Path, text: str, work: Path) -> float:
    """Seconds from QEMU's start until ``text`` on the serial console (through an overlay)."""
    overlay = work / "boot.qcow2"
    overlay.unlink(missing_ok=True)
    command = boot_command_for(disk, overlay)
    started = time.monotonic()
    child = pexpect.spawn(command[0], command[1:], encoding="utf-8", codec_errors="replace", timeout=600)
    try:
        child.expect_exact(text)
        return time.monotonic() - started
    finally:
        child.close(force=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    base = build_debian_disk()
    print(f"Debian base disk: {base.path.name}, " + (f"built in {base.seconds:.0f} s" if base.seconds else "cached"))
    with tempfile.TemporaryDirectory() as work_dir:
        work = Path(work_dir)
        (work / "debian").mkdir()
        (work / "debian" / "image.meta.yaml").write_text(PREPARED_IMAGE)
        image, problems = load_image(work / "debian")
        assert image is not None, problems
        cold, cached = [], []
        prepared = None
        for _ in range(args.repeat):
            prepared = prepare_disk(image, work / "debian", base.path, force=True)
            cold.append(prepared.seconds)
            again = prepare_disk(image, work / "debian", base.path)
            cached.append(again.seconds)
        assert prepared is not None
        print(
            f"prepare, cold (x{args.repeat}):   median {statistics.median(cold):6.1f} s  {[round(s, 1) for s in cold]}"
        )
        print(f"prepare, cached (x{args.repeat}): median {statistics.median(cached):6.2f} s")
        print(f"size: base {prepared.base_bytes / 2**20:.0f} MiB, prepared {prepared.prepared_bytes / 2**20:.0f} MiB "
              f"(x{prepared.prepared_bytes / prepared.base_bytes:.2f})")  # fmt: skip
        base_boots = [boot_until(base.path, "login:", work) for _ in range(args.repeat)]
        ready = [boot_until(prepared.path, PREPARED_READY_LINE, work) for _ in range(args.repeat)]
        print(f"boot under TCG, base to its login prompt:      median {statistics.median(base_boots):5.1f} s")
        print(f"boot under TCG, prepared disk to {PREPARED_READY_LINE}: median {statistics.median(ready):5.1f} s "
              f"(x{statistics.median(ready) / statistics.median(base_boots):.2f} the base's)")  # fmt: skip


if __name__ == "__main__":
    main()
