"""The files an image hands to its VM, checked at every launch: a kernel, an initrd, a disk and every file
its disk brings along.

A qcow2 names other files in its header: a backing file (whose blocks the guest reads where the disk has
none) and an external data file. A disk whose backing file is /etc/shadow hands that file to the guest,
so each of those files must obey the disk's own rule: a regular file, not a link, whose real path is
inside the image's directory or a directory the operator lists (SYRINGE_LOCAL__IMAGE_DIRS). Validation
checked the names the metafile writes, but the tree may have changed since, and the backing chain lives
inside the files.

The chain is followed one link at a time with `qemu-img info` (without --backing-chain, which opens every
backing file before anyone could judge it: a FIFO hangs it, an nbd:// or http:// backing makes this machine
connect out). Each file is first opened here, without following a link and without blocking, and
qemu-img reads that very file, through /dev/fd, so the file judged is the file read.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from syringe.curriculum.confined import is_inside, kind_problem

MAX_CHAIN = 16  # backing files below a disk; deeper chains are refused, loops with them
QEMU_IMG_TIMEOUT = 30.0
_OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
# "nbd://...", "json:{...}", "http:...": a protocol, not a file. QEMU reads a name this way when what precedes
# the first colon has no slash.
_PROTOCOL = re.compile(r"^[^/]*:")


class ImageFileRefused(ValueError):
    """A file an image names may not reach its VM; the message says which and why."""


def allowed_directories(image_dir: Path, image_dirs: Sequence[Path]) -> tuple[Path, ...]:
    """Where an image's files may really be: its own directory and the operator's, links resolved."""
    return tuple(Path(os.path.realpath(directory)) for directory in (image_dir, *image_dirs))


def _open_confined(path: Path, allowed: Sequence[Path]) -> tuple[int, Path]:
    """Open ``path`` for reading if it obeys the rule: (the descriptor, its real path). Looks before opening,
    so that no device is ever opened, and looks again at what was opened."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        raise ImageFileRefused(f"{path} does not exist") from None
    except OSError as exc:
        raise ImageFileRefused(f"{path} cannot be read: {exc.strerror}") from None
    if (reason := kind_problem(mode)) is not None:
        raise ImageFileRefused(f"{path} {reason}")
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except OSError as exc:
        raise ImageFileRefused(f"{path} cannot be opened: {exc.strerror}") from None
    try:
        if (reason := kind_problem(os.fstat(fd).st_mode)) is not None:
            raise ImageFileRefused(f"{path} {reason}")
        real = Path(os.readlink(f"/proc/self/fd/{fd}"))  # as the kernel opened it: no race with a rename
        if not any(is_inside(real, directory) for directory in allowed):
            raise ImageFileRefused(
                f"{path} is outside the image's directory and the directories SYRINGE_LOCAL__IMAGE_DIRS lists"
            )
    except BaseException:
        os.close(fd)
        raise
    return fd, real


def confined_file(path: Path, allowed: Sequence[Path]) -> Path:
    """The real path of ``path`` (a kernel, an initrd), which obeys the rule; raises ImageFileRefused."""
    fd, real = _open_confined(path, allowed)
    os.close(fd)
    return real


def _info(fd: int, image_format: str | None) -> dict[str, Any]:
    """What qemu-img says of the open image: its header only (no backing file is opened)."""
    command = ["qemu-img", "info", "-U", "--output=json"]
    if image_format:
        command += ["-f", image_format]
    try:
        done = subprocess.run(
            [*command, f"/dev/fd/{fd}"],
            pass_fds=(fd,),
            capture_output=True,
            text=True,
            timeout=QEMU_IMG_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise ImageFileRefused(f"qemu-img info did not answer within {QEMU_IMG_TIMEOUT:.0f}s") from None
    if done.returncode != 0:
        raise ImageFileRefused(done.stderr.strip().removeprefix("qemu-img: ")[-300:])
    info: dict[str, Any] = json.loads(done.stdout)
    return info


def _named_file(name: str, relative_to: Path, what: str) -> Path:
    """A file a qcow2 header names, as QEMU will find it: relative names are relative to the image."""
    if not name or "\0" in name or _PROTOCOL.match(name):
        raise ImageFileRefused(f"{what} {name!r} is not a file path (QEMU would read it as a protocol)")
    path = Path(name)
    return path if path.is_absolute() else relative_to / path


def disk_chain(disk: Path, allowed: Sequence[Path], disk_format: str = "qcow2") -> list[Path]:
    """The real paths of ``disk`` and of every backing file below it, each checked against the rule, as is
    any external data file on the way. Raises ImageFileRefused naming the file at fault."""
    chain: list[Path] = []
    path: Path = disk
    image_format: str | None = disk_format
    for _ in range(MAX_CHAIN + 1):
        below = f" (named by {chain[-1]})" if len(chain) > 1 else ""  # a deeper link: say which file names it
        where = f"{disk}" if not chain else f"{disk}: backing file {path}{below}"
        try:
            fd, real = _open_confined(path, allowed)
        except ImageFileRefused as exc:
            raise ImageFileRefused(str(exc) if not chain else f"{disk}: backing file {exc}{below}") from None
        try:
            if real in chain:
                raise ImageFileRefused(f"{where}: the backing chain loops")
            info = _info(fd, image_format)
        except ImageFileRefused as exc:
            raise ImageFileRefused(f"{where}: {exc}") from None
        finally:
            os.close(fd)
        chain.append(real)
        data_file = ((info.get("format-specific") or {}).get("data") or {}).get("data-file")
        if data_file:
            try:
                named = _named_file(str(data_file), real.parent, "external data file")
            except ImageFileRefused as exc:
                raise ImageFileRefused(f"{where}: {exc}") from None
            try:
                confined_file(named, allowed)
            except ImageFileRefused as exc:
                raise ImageFileRefused(f"{where}: external data file {exc}") from None
        backing = info.get("backing-filename")
        if not backing:
            return chain
        try:
            path = _named_file(str(backing), real.parent, "backing file")
        except ImageFileRefused as exc:
            raise ImageFileRefused(f"{where}: {exc}") from None
        image_format = info.get("backing-filename-format")
    raise ImageFileRefused(f"{disk}: more than {MAX_CHAIN} backing files")
