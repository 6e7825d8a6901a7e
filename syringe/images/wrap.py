"""`syringe image wrap`: the stage-1 wrapper image of a prepared disk, built the way the project's own
images are (scripts/images.sh: podman with private storage, no daemon, no registry): FROM the project's
QEMU wrapper image, with the disk where the metafile's vm.disk says. The launcher boots it from there."""

from __future__ import annotations

import os
import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from syringe.curriculum.models import Image
from syringe.errors import ImageBuildError
from syringe.images.prepare import REPOSITORY
from syringe.images.progress import Reporter, tail

IMAGES_SCRIPT = REPOSITORY / "scripts" / "images.sh"
WRAPPER = "localhost/syringe/qemu-wrapper:dev"  # scripts/images.sh's name for the wrapper it builds
SAY = re.compile(r"^\[images [0-9:]+\] (.*)$")
IMAGE_NAME = re.compile(r"^[a-z0-9][a-z0-9._/:-]{0,254}$")


@dataclass(frozen=True)
class Wrapped:
    name: str
    archive: Path
    pushed: list[str]


def dockerfile(image: Image) -> str:
    assert image.vm is not None
    return (
        f"# The stage-1 wrapper of image {image.slug}, made by `syringe image wrap`.\n"
        f"FROM {WRAPPER}\n"
        f"COPY --chmod=0644 disk.qcow2 {image.vm.disk}\n"
    )


def wrap_image(
    image: Image,
    disk: Path,
    name: str | None,
    load: bool,
    push: str | None,
    tag: str,
    reporter: Reporter,
) -> Wrapped:
    """Build (or find, by content) the wrapper image; optionally import it into the local node and push it."""
    if image.vm is None or not image.vm.disk.startswith("/"):
        raise ImageBuildError(f"image {image.slug}: vm.disk must be an absolute path inside the image")
    name = name or f"localhost/syringe/{image.slug}:dev"
    if not IMAGE_NAME.match(name):
        raise ImageBuildError(f"{name!r} is not an image name")
    if not IMAGES_SCRIPT.is_file():
        raise ImageBuildError(f"wrap builds with {IMAGES_SCRIPT}, which is not there (run it from a checkout)")
    context = disk.parent / f".wrap-{disk.stem}"
    context.mkdir(exist_ok=True)
    target = context / "disk.qcow2"
    if not (target.exists() and os.path.samefile(target, disk)):
        target.unlink(missing_ok=True)
        os.link(disk, target)
    (context / "Dockerfile").write_text(dockerfile(image))
    command = [str(IMAGES_SCRIPT), "wrap", str(context), name]
    if load:
        command.append("--load")
    if push:
        command += ["--push", push, tag]
    lines: list[str] = []
    current, started = "building the wrapper image", time.monotonic()
    reporter.start(current)
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert process.stderr is not None and process.stdout is not None
    for line in process.stderr:
        lines.append(line.rstrip("\n"))
        said = SAY.match(line.rstrip("\n"))
        if said:
            reporter.finish(current, time.monotonic() - started)
            current, started = said.group(1), time.monotonic()
            reporter.start(current)
    out = process.stdout.read()
    if process.wait() != 0:
        raise ImageBuildError(f"{current}: scripts/images.sh wrap failed\n" + tail("\n".join(lines)))
    reporter.finish(current, time.monotonic() - started)
    archive, pushed = None, []
    for line in out.splitlines():
        kind, _, rest = line.partition(" ")
        if kind == "archive":
            archive = Path(rest)
        elif kind == "pushed":
            pushed.append(rest)
    if archive is None:
        raise ImageBuildError("scripts/images.sh wrap printed no archive")
    return Wrapped(name, archive, pushed)
