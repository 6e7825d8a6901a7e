"""Images of the local runtime: `syringe image build`."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path
from typing import Any, get_args

from syringe.curriculum.models import TinyFlavour

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
    """Build an image the local runtime boots (today: the tiny Linux VM) into the cache."""
    from syringe.errors import ImageBuildError
    from syringe.runtime.local.tinylinux import timed_build

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


def register(commands: Any) -> None:
    image = commands.add_parser("image", help="images of the local runtime")
    image_commands = image.add_subparsers(dest="image_command", required=True)
    build = image_commands.add_parser("build", help="build an image into the cache (quick when it is there)")
    build.add_argument("name", choices=["tiny-linux"], help="tiny-linux: the VM standing in for Linux containers")
    build.add_argument("--cache", help="cache directory (default: $SYRINGE_CACHE_DIR, /var/cache/syringe as root, "
                       "else ~/.cache/syringe)")  # fmt: skip
    build.add_argument("--force", action="store_true", help="build again even when cached")
    build.add_argument("--flavour", choices=get_args(TinyFlavour), default="base", help="tiny-linux: which flavour")
    build.add_argument("--quiet", action="store_true", help="print nothing on success")
    build.add_argument(
        "--output",
        metavar="DIR",
        help="also put the kernel and initramfs into DIR as vmlinuz and initramfs.cpio (hard links where possible), "
        "e.g. .build/tiny-linux, the QEMU wrapper image's build context",
    )
    build.set_defaults(func=cmd_image_build)
