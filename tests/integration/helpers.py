"""Shared pieces of the integration tests: the stand-in process, curricula, and waiting on live lessons."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from syringe.sessions import LiveLesson, LiveLessonManager, Status

REPO = Path(__file__).resolve().parents[2]


class StandInProcess:
    """The pod stand-in as its own process, like a kubelet would be."""

    def __init__(
        self,
        kubeconfig: str,
        node: str = "syringe-standin",
        addresses: str = "127.100.0.0/16",
        log_path: Path | None = None,
    ) -> None:
        self.kubeconfig = kubeconfig
        self.node = node
        self.addresses = addresses
        self.log_path = log_path or Path(f"/tmp/syringe-standin-{node}.log")
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.standin.agent",
                "--kubeconfig",
                self.kubeconfig,
                "--node",
                self.node,
                "--addresses",
                self.addresses,
            ],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=log,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if b"standin ready" not in line:
            self.stop()
            raise RuntimeError(f"the pod stand-in did not start: {self.log_path.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()


def failure_curriculum(root: Path) -> Path:
    """The example curriculum plus lessons whose images fail the way a kubelet reports it."""
    shutil.copytree(REPO / "lessons", root, dirs_exist_ok=True)
    for image, lesson in (
        ("pull-fail", "broken-image"), ("crash", "crashing-image"), ("slow", "slow-image"), ("mute", "mute-image"),
    ):
        (root / "images" / image).mkdir(parents=True)
        (root / "images" / image / "image.meta.yaml").write_text(f"slug: {image}\nsshUser: u\nsshPassword: p\n")
        (root / "lessons" / lesson / "stage0").mkdir(parents=True)
        (root / "lessons" / lesson / "stage0" / "guide.md").write_text("# guide\n")
        (root / "lessons" / lesson / "lesson.meta.yaml").write_text(
            f"name: {lesson}\nslug: {lesson}\ncategory: tools\nendpoints:\n"
            "- name: good\n  image: utility\n  presentations: [{name: cli, port: 22, type: ssh}]\n"
            f"- name: bad\n  image: {image}\n  presentations: [{{name: cli, port: 22, type: ssh}}]\n"
            "stages:\n- description: only\n"
        )
    return root


async def settled(manager: LiveLessonManager, ll: LiveLesson, timeout: float = 60) -> Status:
    """Wait, on the manager's change notifications, until the live lesson is READY or ERROR."""
    queue = manager.listen()
    try:
        deadline = time.monotonic() + timeout
        while ll.status not in (Status.READY, Status.ERROR):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"{ll.lesson} still {ll.status} after {timeout}s")
            try:
                await asyncio.wait_for(queue.get(), remaining)
            except TimeoutError:
                continue
        return ll.status
    finally:
        manager.unlisten(queue)
