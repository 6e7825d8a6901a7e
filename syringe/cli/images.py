"""Images of the local runtime: `syringe image build`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def cmd_image_build(args: argparse.Namespace) -> int:
    """Build an image the local runtime boots (today: the tiny Linux VM) into the cache."""
    from syringe.errors import ImageBuildError
    from syringe.runtime.local.tinylinux import timed_build

    try:
        image, seconds = timed_build(Path(args.cache) if args.cache else None, args.force)
    except ImageBuildError as exc:
        print(f"error: building {args.name}: {exc}", file=sys.stderr)
        return 1
    if not args.quiet:
        size = (image.kernel.stat().st_size + image.initrd.stat().st_size) / 2**20
        print(f"{args.name}: {image.kernel} and {image.initrd} ({size:.1f} MiB) in {seconds:.1f}s")
    return 0



def register(commands: Any) -> None:
    image = commands.add_parser("image", help="images of the local runtime")
    image_commands = image.add_subparsers(dest="image_command", required=True)
    build = image_commands.add_parser("build", help="build an image into the cache (quick when it is there)")
    build.add_argument("name", choices=["tiny-linux"], help="tiny-linux: the VM standing in for Linux containers")
    build.add_argument("--cache", help="cache directory (default: $SYRINGE_CACHE_DIR, /var/cache/syringe as root, "
                       "else ~/.cache/syringe)")  # fmt: skip
    build.add_argument("--force", action="store_true", help="build again even when cached")
    build.add_argument("--quiet", action="store_true", help="print nothing on success")
    build.set_defaults(func=cmd_image_build)
