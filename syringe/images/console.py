"""Appliances prepared through their serial console: the base boots once under QEMU, and the image's
console script (wait for text, type a line, each with its timeout) configures it, as vrnetlab does at every
boot; here it happens once, at prepare time, and what the script wrote stays in the disk. The script ends
by powering the guest off; QEMU exits with it, and the disk is complete."""

from __future__ import annotations

import time
from pathlib import Path

import pexpect

from syringe.curriculum.models import ConsoleStep, Image
from syringe.errors import ImageBuildError
from syringe.images.progress import Reporter, tail
from syringe.plan.quantity import mebibytes
from syringe.qemu.command import DiskBoot, VmSpec, qemu_command
from syringe.qemu.process import choose_accel

SHUTDOWN_SECONDS = 300  # after the last step, for the guest to power off
TAIL_CHARACTERS = 4096


class ConsoleFailed(ImageBuildError):
    """A console step failed: the message names it and ends with the console's last lines."""


def _memory_mib(image: Image) -> int:
    quantity = image.local.memory if image.local is not None and image.local.kind == "disk" else None
    if quantity is None and image.vm is not None:
        quantity = image.vm.memory
    return max(256, mebibytes(quantity or "512Mi"))


def _describe(index: int, step: ConsoleStep) -> str:
    sent = "" if step.send is None else (" then send ****" if step.secret else f" then send {step.send!r}")
    return f"console step {index + 1}: expect {step.expect!r}{sent}"


class _Transcript:
    """What the console printed, the last TAIL_CHARACTERS of it, for errors."""

    def __init__(self) -> None:
        self.text = ""

    def write(self, data: str) -> None:
        self.text = (self.text + data)[-TAIL_CHARACTERS:]

    def flush(self) -> None:
        pass


def boot_command(image: Image, disk: Path) -> list[str]:
    spec = VmSpec(
        name=f"syringe-prepare.{image.slug}",
        memory_mib=_memory_mib(image),
        cpus=1,
        boot=DiskBoot(str(disk)),
        accel=choose_accel("auto"),
        forwards={},
        console=None,  # the serial console on stdio, where pexpect reads and types
    )
    return qemu_command(spec)


def run_console_script(image: Image, disk: Path, steps: list[ConsoleStep], deadline: float, reporter: Reporter) -> None:
    """Boot ``disk`` and drive its console through ``steps``; then wait for the guest to power off."""
    command = boot_command(image, disk)
    transcript = _Transcript()
    child = pexpect.spawn(command[0], command[1:], encoding="utf-8", codec_errors="replace", timeout=None)
    child.logfile_read = transcript
    try:
        for index, step in enumerate(steps):
            name = _describe(index, step)
            started = time.monotonic()
            reporter.start(name)
            timeout = min(float(step.timeout), deadline - time.monotonic())
            try:
                child.expect_exact(step.expect, timeout=max(timeout, 0.1))
            except pexpect.TIMEOUT:
                why = "did not appear in time" if timeout >= step.timeout else "prepare.timeout ran out"
                raise ConsoleFailed(f"{name}: {step.expect!r} {why}\n{tail(transcript.text)}") from None
            except pexpect.EOF:
                raise ConsoleFailed(f"{name}: the guest stopped first\n{tail(transcript.text)}") from None
            if step.send is not None:
                child.send(step.send + "\r")
            reporter.finish(name, time.monotonic() - started)
        name, started = "powering off", time.monotonic()
        reporter.start(name)
        try:
            child.expect(pexpect.EOF, timeout=max(0.1, min(SHUTDOWN_SECONDS, deadline - time.monotonic())))
        except pexpect.TIMEOUT:
            raise ConsoleFailed(
                f"{name}: the guest still runs after the last console step: end the script with a step that "
                f"powers it off (send: poweroff)\n{tail(transcript.text)}"
            ) from None
        reporter.finish(name, time.monotonic() - started)
    finally:
        child.close(force=True)
    if child.exitstatus not in (0, None):
        raise ConsoleFailed(f"QEMU exited with status {child.exitstatus}\n{tail(transcript.text)}")
