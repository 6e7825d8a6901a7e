"""Issue 15: every example lesson on the embedded default (LiveLessons + the local runtime, real QEMU
under TCG, the lessons' real configuration), launch -> READY, cold and warm; and the tiny VM's flavours:
build time from an empty cache and the initramfs size.

- cold: the lesson's first launch in a fresh process: every VM boots from scratch while a warm-boot
  template is made for its flavour and shape;
- warm: the next launches, which restore those templates.

    .venv/bin/python bench/local_lessons.py [--repeat 2] [--lessons two-hosts,rest-api-basics]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from syringe.curriculum import load_curriculum  # noqa: E402
from syringe.livelessons import LiveLessons, Status  # noqa: E402
from syringe.plan import PlanSettings  # noqa: E402
from syringe.runtime.local.flavours import FLAVOURS  # noqa: E402
from syringe.runtime.local.runtime import LocalRuntime  # noqa: E402
from syringe.runtime.local.tinylinux import timed_build  # noqa: E402
from syringe.settings import LifecycleSettings, LocalSettings  # noqa: E402


def flavours() -> None:
    print("tiny VM flavours, built into an empty cache (package downloads included):")
    with tempfile.TemporaryDirectory() as cache:
        for name in FLAVOURS:
            image, seconds = timed_build(Path(cache), False, name)
            size = image.initrd.stat().st_size / 2**20
            print(f"  {name:10} build {seconds:5.1f} s   initramfs {size:5.1f} MiB", flush=True)


async def launch(manager: LiveLessons, learner: str, lesson: str) -> float:
    started = time.monotonic()
    ll = await manager.launch(learner, lesson)
    queue = manager.listen(ll.id)
    try:
        while ll.status not in (Status.READY, Status.ERROR):
            await asyncio.wait_for(queue.get(), 600)
    finally:
        manager.unlisten(queue)
    seconds = time.monotonic() - started
    if ll.status is not Status.READY:
        raise SystemExit(f"{lesson} ended {ll.status}: {ll.error}")
    await manager.delete(ll.id)
    return seconds


async def lessons(names: list[str], repeat: int) -> None:
    tree = load_curriculum(REPO / "lessons")
    assert tree.ok, tree.problems
    print(f"launch -> READY on the embedded default (TCG), cold then warm (median of {repeat}):")
    for lesson in names:
        with tempfile.TemporaryDirectory() as state:
            runtime = LocalRuntime(tree.root, tree.images, "bench", LocalSettings(state_dir=Path(state)))
            manager = LiveLessons(tree, runtime, PlanSettings(instance="bench"), LifecycleSettings(max_per_session=1))
            await manager.start()
            try:
                cold = await launch(manager, "cold", lesson)
                warm = [await launch(manager, f"warm{i}", lesson) for i in range(repeat)]
            finally:
                await manager.stop()
                await runtime.close()
        print(f"  {lesson:18} cold {cold:5.1f} s   warm {statistics.median(warm):5.1f} s", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=2)
    every = "two-hosts,linux-basics,netconf-basics,rest-api-basics,routing-triangle,static-routing"
    parser.add_argument("--lessons", default=every)
    args = parser.parse_args()
    flavours()
    asyncio.run(lessons(args.lessons.split(","), args.repeat))
