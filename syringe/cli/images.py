"""Images: `syringe image build` (the local runtime's), `prepare` and `wrap` (stage 1 of a lesson image)."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, get_args

from syringe.curriculum.models import Image, TinyFlavour
from syringe.images.progress import JsonLines as JsonLinesType
from syringe.images.progress import Reporter

# The names `--output` gives the tiny VM's files; the QEMU wrapper's Dockerfile copies them from
# .build/tiny-linux/ to /images/tiny-linux/.
OUTPUT_NAMES = ("vmlinuz", "initramfs.cpio")


def place_files(files: dict[str, Path], directory: Path) -> None:
    """Put each source file into DIRECTORY under its name: a hard link where both are on one file system,
    else a copy. Each name is replaced atomically, and left alone when it already is that file."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, source in files.items():
        target = directory / name
        if target.exists() and os.path.samefile(source, target):
            continue
        partial = directory / f".{name}.partial-{os.getpid()}"
        partial.unlink(missing_ok=True)
        try:
            os.link(source, partial)
        except OSError:  # another file system (EXDEV), or one without hard links
            shutil.copyfile(source, partial)
        os.replace(partial, target)


def cmd_image_build(args: argparse.Namespace) -> int:
    """Build an image the local runtime boots (the tiny Linux VM), or the Debian base disk, into the cache."""
    from syringe.errors import ImageBuildError
    from syringe.runtime.local.tinylinux import timed_build

    if args.name == "debian-disk":
        return _build_debian_disk(args)
    try:
        image, seconds = timed_build(Path(args.cache) if args.cache else None, args.force, args.flavour)
    except ImageBuildError as exc:
        print(f"error: building {args.name}: {exc}", file=sys.stderr)
        return 1
    if args.output:
        # The kernel the local runtime boots (the uncompressed one where it could be extracted: QEMU boots
        # either), under one fixed name.
        try:
            place_files(dict(zip(OUTPUT_NAMES, (image.kernel, image.initrd), strict=True)), Path(args.output))
        except OSError as exc:
            print(f"error: {args.name}: writing into {args.output}: {exc}", file=sys.stderr)
            return 1
    if not args.quiet:
        size = (image.kernel.stat().st_size + image.initrd.stat().st_size) / 2**20
        where = f" (also in {args.output})" if args.output else ""
        print(f"{args.name}: {image.kernel} and {image.initrd} ({size:.1f} MiB) in {seconds:.1f}s{where}")
    return 0


def _build_debian_disk(args: argparse.Namespace) -> int:
    from syringe.errors import ImageBuildError
    from syringe.images.debian_disk import build_debian_disk

    try:
        disk = build_debian_disk(Path(args.cache) if args.cache else None, args.force)
        if args.output:
            place_files({"debian.qcow2": disk.path}, Path(args.output))
    except (ImageBuildError, OSError) as exc:
        print(f"error: building {args.name}: {exc}", file=sys.stderr)
        return 1
    if not args.quiet:
        size = disk.path.stat().st_size / 2**20
        where = f" (also in {args.output}/debian.qcow2)" if args.output else ""
        print(f"{args.name}: {disk.path} ({size:.0f} MiB) in {disk.seconds:.1f}s{where}")
    return 0


def _reporter(json_lines: bool) -> Reporter:
    from syringe.images.progress import JsonLines, StepList

    return JsonLines() if json_lines else StepList()


def _image(directory: str) -> tuple[Image | None, int]:
    """The image of DIRECTORY's image.meta.yaml, or None and the exit status after printing its problems."""
    from syringe.curriculum.loader import load_image

    image, problems = load_image(directory)
    for problem in problems:
        print(f"{Path(directory).resolve().parent}/{problem}", file=sys.stderr)
    if image is None:
        return None, 1
    if image.prepare is None:
        print(f"error: {directory}/image.meta.yaml has no prepare: section", file=sys.stderr)
        return None, 1
    return image, 0


def _failed(reporter: Reporter, json_lines: bool, step: str, message: str) -> int:
    if json_lines:
        assert isinstance(reporter, JsonLinesType)
        reporter.emit(event="error", step=step, message=message)
    else:
        getattr(reporter, "failed", lambda: None)()
    print(f"error: {message}", file=sys.stderr)
    return 1


def cmd_image_prepare(args: argparse.Namespace) -> int:
    """Prepare an image's base disk (stage 1): syringe.images.prepare."""
    from syringe.errors import ImageBuildError
    from syringe.images.prepare import prepare_disk

    image, status = _image(args.image)
    if image is None:
        return status
    reporter = _reporter(args.json)
    try:
        prepared = prepare_disk(
            image,
            Path(args.image),
            Path(args.base) if args.base else None,
            Path(args.cache) if args.cache else None,
            args.force,
            reporter,
        )
        output = Path(args.output) if args.output else _local_disk(image, Path(args.image))
        if output is not None:
            place_files({output.name: prepared.path}, output.parent)
    except (ImageBuildError, OSError, subprocess.SubprocessError) as exc:
        return _failed(reporter, args.json, "prepare", str(exc))
    summary = {
        "disk": str(prepared.path),
        "placed": str(output) if output is not None else None,
        "cached": prepared.cached,
        "seconds": round(prepared.seconds, 1),
        "baseMiB": round(prepared.base_bytes / 2**20, 1),
        "preparedMiB": round(prepared.prepared_bytes / 2**20, 1),
    }
    if args.json:
        print(json.dumps({"event": "done", **summary}), flush=True)
    else:
        where = f", placed at {output}" if output is not None else ""
        how = "cached" if prepared.cached else f"prepared in {prepared.seconds:.0f}s"
        print(f"{image.slug}: {prepared.path} ({summary['preparedMiB']} MiB; base {summary['baseMiB']} MiB), "
              f"{how}{where}")  # fmt: skip
    return 0


def _local_disk(image: Image, directory: Path) -> Path | None:
    """Where the local runtime boots the image's disk from (local: kind disk), if it is in the image's
    directory: prepare places the prepared disk there."""
    if image.local is None or image.local.kind != "disk":
        return None
    disk = Path(image.local.disk)
    return disk if disk.is_absolute() else directory / disk


def cmd_image_wrap(args: argparse.Namespace) -> int:
    """Prepare the disk (cached), then build the stage-1 wrapper image: the QEMU wrapper with the disk at
    vm.disk (syringe.images.wrap)."""
    from syringe.errors import ImageBuildError
    from syringe.images.prepare import prepare_disk
    from syringe.images.wrap import wrap_image

    image, status = _image(args.image)
    if image is None:
        return status
    if image.vm is None or not image.vm.disk:
        print(f"error: {args.image}/image.meta.yaml: wrap puts the disk at vm.disk, and it has none", file=sys.stderr)
        return 1
    reporter = _reporter(args.json)
    cache = Path(args.cache) if args.cache else None
    try:
        prepared = prepare_disk(image, Path(args.image), Path(args.base) if args.base else None, cache, False, reporter)
        wrapped = wrap_image(image, prepared.path, args.name, args.load, args.push, args.tag, reporter)
    except (ImageBuildError, OSError, subprocess.SubprocessError) as exc:
        return _failed(reporter, args.json, "wrap", str(exc))
    if args.json:
        print(json.dumps({"event": "done", "image": wrapped.name, "archive": str(wrapped.archive),
                          "pushed": wrapped.pushed}), flush=True)  # fmt: skip
    else:
        pushed = f", pushed as {', '.join(wrapped.pushed)}" if wrapped.pushed else ""
        print(f"{image.slug}: {wrapped.name} ({wrapped.archive}){pushed}")
    return 0


def register(commands: Any) -> None:
    image = commands.add_parser("image", help="images of the local runtime")
    image_commands = image.add_subparsers(dest="image_command", required=True)
    build = image_commands.add_parser("build", help="build an image into the cache (quick when it is there)")
    build.add_argument("name", choices=["tiny-linux", "debian-disk"],
                       help="tiny-linux: the VM standing in for Linux containers; debian-disk: a plain bootable Debian "
                       "disk (root's password root, no SSH), a base to prepare")  # fmt: skip
    build.add_argument("--cache", help="cache directory (default: $SYRINGE_CACHE_DIR, /var/cache/syringe as root, "
                       "else ~/.cache/syringe)")  # fmt: skip
    build.add_argument("--force", action="store_true", help="build again even when cached")
    build.add_argument("--flavour", choices=get_args(TinyFlavour), default="base", help="tiny-linux: which flavour")
    build.add_argument("--quiet", action="store_true", help="print nothing on success")
    build.add_argument(
        "--output",
        metavar="DIR",
        help="also put the kernel and initramfs into DIR as vmlinuz and initramfs.cpio (hard links where possible), "
        "e.g. .build/tiny-linux, the QEMU wrapper image's build context; debian-disk: DIR/debian.qcow2",
    )
    build.set_defaults(func=cmd_image_build)

    cache_help = "cache directory (default: $SYRINGE_CACHE_DIR, /var/cache/syringe as root, else ~/.cache/syringe)"
    prepare = image_commands.add_parser(
        "prepare",
        help="stage 1: make a base disk (qcow2 or raw) ready for Syringe, as the image's prepare: section says "
        "(cached by content)",
    )
    prepare.add_argument("image", help="the image's directory (with image.meta.yaml)")
    prepare.add_argument("--base", help="the base disk (default: prepare.base in the metafile)")
    prepare.add_argument("--output", help="also put the prepared disk here (default: local.disk, when kind disk)")
    prepare.add_argument("--cache", help=cache_help)
    prepare.add_argument("--force", action="store_true", help="prepare again even when cached")
    prepare.add_argument("--json", action="store_true", help="progress as JSON lines on stdout, for CI")
    prepare.set_defaults(func=cmd_image_prepare)
    wrap = image_commands.add_parser(
        "wrap", help="stage 1: prepare the disk (cached), then build the QEMU wrapper image that boots it"
    )
    wrap.add_argument("image", help="the image's directory (with image.meta.yaml)")
    wrap.add_argument("--base", help="the base disk (default: prepare.base in the metafile)")
    wrap.add_argument("--name", help="the image's name (default: localhost/syringe/SLUG:dev, as the dev overlay "
                      "names endpoint images)")  # fmt: skip
    wrap.add_argument("--load", action="store_true", help="also import it into the local node's containerd")
    wrap.add_argument("--push", metavar="REGISTRY", help="also push it as REGISTRY/syringe/SLUG:TAG")
    wrap.add_argument("--tag", default="dev", help="the tag --push gives it (default: dev)")
    wrap.add_argument("--cache", help=cache_help)
    wrap.add_argument("--json", action="store_true", help="progress as JSON lines on stdout, for CI")
    wrap.set_defaults(func=cmd_image_wrap)
