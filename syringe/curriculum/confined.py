"""Reading an untrusted curriculum: regular files only, never through a link, never outside the directory
they belong to, never more than a cap. Every read of a metafile, guide or lesson file goes through
``read_confined``, and every walk of a lesson's tree through ``walk``.

The tree can change after validation (a git-sync, a mounted volume), so a read does not trust what the
validator saw. Each directory on the way is opened relative to its parent with O_NOFOLLOW, so no link is
followed anywhere below the base (the operator's curriculum directory, which may itself be a link, as a
git-sync checkout is); the file is opened with O_NONBLOCK (a FIFO must not hang the reader) and must then
be a regular file, under the cap, whose resolved path is inside the base.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from operator import attrgetter
from pathlib import Path, PurePosixPath

from syringe.errors import CurriculumError

LINK = "is a symbolic link; a curriculum's files must be regular files (links are refused wherever they point)"

_DIRECTORY_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
_READ_CHUNK = 1024 * 1024


class FileRefused(CurriculumError):
    """A file of the curriculum breaks the rules (a link, not a regular file, outside its directory, over a
    cap). ``rel`` is its path relative to the curriculum; the message says why, never what it points to."""

    def __init__(self, rel: str, reason: str) -> None:
        super().__init__(f"{rel} {reason}")
        self.rel = rel
        self.reason = reason


def kind_problem(mode: int) -> str | None:
    """Why a file of this mode cannot be part of a curriculum, or None for a regular file."""
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISLNK(mode):
        return LINK
    if stat.S_ISFIFO(mode):
        return "is a FIFO (named pipe), not a regular file"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "is a device, not a regular file"
    if stat.S_ISSOCK(mode):
        return "is a socket, not a regular file"
    if stat.S_ISDIR(mode):
        return "is a directory, not a regular file"
    return "is not a regular file"


def relative_parts(path: str) -> tuple[str, ...] | None:
    """The components of a relative POSIX path that stays where it starts, or None for an absolute path,
    an empty one, or one with ``..`` or ``.`` components (or a NUL)."""
    pure = PurePosixPath(path)
    if not path or "\0" in path or pure.is_absolute():
        return None
    parts = path.split("/")
    if any(part in ("", ".", "..") for part in parts):
        return None
    return tuple(parts)


def _refused_component(rel: str, parts: tuple[str, ...], dir_fd: int, index: int, exc: OSError) -> Exception:
    """What to raise when opening ``parts[index]`` failed: a refusal naming the offending component when it
    is not what it must be (a link, a FIFO, ...), else the OSError itself (missing, unreadable)."""
    try:
        mode = os.stat(parts[index], dir_fd=dir_fd, follow_symlinks=False).st_mode
    except OSError:
        return exc
    last = index == len(parts) - 1
    reason = kind_problem(mode) if last or not stat.S_ISDIR(mode) else None
    if reason is None:
        return exc
    where = rel if last else "/".join(parts[: index + 1])
    return FileRefused(where, reason)


def is_inside(real: str | os.PathLike[str], base: str | os.PathLike[str]) -> bool:
    """Whether the resolved path ``real`` lies strictly below the resolved directory ``base``: the one
    containment test for lesson files, local images and their backing files."""
    return Path(real).is_relative_to(base) and Path(real) != Path(base)


def _resolved_inside(fd: int, base_fd: int) -> bool:
    """Whether the opened file's resolved path is inside the opened base, as the kernel sees both. Where
    /proc is not mounted the answer is yes: the component-by-component no-follow walk already ensures it."""
    try:
        base = os.readlink(f"/proc/self/fd/{base_fd}")
        target = os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return True
    return is_inside(target, base)


def _read_capped(fd: int, rel: str, max_bytes: int, cap: str) -> bytes:
    chunks: list[bytes] = []
    total = 0
    while True:
        chunk = os.read(fd, min(_READ_CHUNK, max_bytes + 1 - total))
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        total += len(chunk)
        if total > max_bytes:  # it grew since fstat
            raise FileRefused(rel, f"is over the limit of {max_bytes} bytes {cap}")


def read_confined(base: Path, rel: str, max_bytes: int, cap: str = "per file") -> bytes:
    """The bytes of ``base/rel``, read without following any link below ``base``.

    Raises FileRefused when the file breaks the rules (a link on the way, not a regular file, over
    ``max_bytes``, outside ``base``) and OSError when it cannot be read (missing, no permission). ``cap``
    says which cap ``max_bytes`` is, in the refusal's message."""
    parts = relative_parts(rel)
    if parts is None:
        raise FileRefused(rel, "is not a relative path inside the curriculum")
    base_fd = os.open(base, _DIRECTORY_FLAGS)
    fds = [base_fd]
    try:
        for index, part in enumerate(parts[:-1]):
            try:
                fds.append(os.open(part, _DIRECTORY_FLAGS | os.O_NOFOLLOW, dir_fd=fds[-1]))
            except OSError as exc:
                raise _refused_component(rel, parts, fds[-1], index, exc) from None
        # Look before opening, so that no device is ever opened (opening some has effects); fstat after
        # opening covers a swap in between.
        try:
            mode = os.stat(parts[-1], dir_fd=fds[-1], follow_symlinks=False).st_mode
            if (reason := kind_problem(mode)) is not None:
                raise FileRefused(rel, reason)
            fd = os.open(parts[-1], _FILE_FLAGS, dir_fd=fds[-1])
        except OSError as exc:
            raise _refused_component(rel, parts, fds[-1], len(parts) - 1, exc) from None
        fds.append(fd)
        status = os.fstat(fd)
        if (reason := kind_problem(status.st_mode)) is not None:
            raise FileRefused(rel, reason)
        if status.st_size > max_bytes:
            raise FileRefused(rel, f"is {status.st_size} bytes, over the limit of {max_bytes} bytes {cap}")
        if not _resolved_inside(fd, base_fd):
            raise FileRefused(rel, "resolves outside the curriculum")
        return _read_capped(fd, rel, max_bytes, cap)
    finally:
        for opened in reversed(fds):
            os.close(opened)


def inspect_confined(base: Path, rel: str) -> str | None:
    """Why ``base/rel`` would be refused (a link or a non-directory on the way, not a regular file), or None
    when it is a regular file or does not exist. For files Syringe never reads itself (an image's disk,
    which QEMU opens), so nothing is opened."""
    parts = relative_parts(rel)
    if parts is None:
        return "is not a relative path inside its directory"
    current = base
    for index, part in enumerate(parts):
        current = current / part
        try:
            mode = os.lstat(current).st_mode
        except OSError:
            return None
        last = index == len(parts) - 1
        if stat.S_ISLNK(mode) or (not last and not stat.S_ISDIR(mode)):
            return f"{'/'.join(parts[: index + 1])} {kind_problem(mode)}"
        if last and (reason := kind_problem(mode)) is not None:
            return f"{rel} {reason}"
    return None


@dataclass(frozen=True)
class Entry:
    """One name in a directory, as lstat sees it (links are not followed)."""

    name: str
    rel: str  # relative to the walk's base
    mode: int
    size: int

    @property
    def is_dir(self) -> bool:
        return stat.S_ISDIR(self.mode)


@dataclass
class Listing:
    """One directory of a walk. Clearing or shortening ``subdirs`` prunes the walk, as with os.walk."""

    rel: str
    depth: int
    entries: list[Entry] = field(default_factory=list)
    subdirs: list[str] = field(default_factory=list)
    error: str | None = None  # the directory could not be listed: why
    too_deep: bool = False  # deeper than the walk's cap: not listed
    unreadable: list[tuple[str, str]] = field(default_factory=list)  # (rel, why) of names lstat refused


def _mode_and_size(item: os.DirEntry[str], sizes: bool) -> tuple[int, int]:
    """What ``item`` is, from the directory listing's own type where that is enough (no system call)."""
    if item.is_symlink():
        return stat.S_IFLNK, 0
    if item.is_dir(follow_symlinks=False):
        return stat.S_IFDIR, 0
    if not sizes and item.is_file(follow_symlinks=False):
        return stat.S_IFREG, 0
    status = item.stat(follow_symlinks=False)
    return status.st_mode, status.st_size


def walk(base: Path, top: str, max_depth: int, skip_hidden: bool = False, sizes: bool = True) -> Iterator[Listing]:
    """Every directory under ``base/top``, depth first in name order, without following links and without
    recursion. Directories more than ``max_depth`` levels below ``top`` are yielded with ``too_deep`` and
    not listed. Without ``sizes``, regular files are not stat'ed (their size reads 0): the directory's own
    listing says what each name is, which saves a system call per file."""
    try:
        top_mode = os.lstat(base / top).st_mode
    except OSError as exc:
        yield Listing(rel=top, depth=0, error=exc.strerror or str(exc))
        return
    if not stat.S_ISDIR(top_mode):
        yield Listing(rel=top, depth=0, error=kind_problem(top_mode) or "is not a directory")
        return
    stack: list[tuple[str, int]] = [(top, 0)]
    while stack:
        rel, depth = stack.pop()
        listing = Listing(rel=rel, depth=depth)
        if depth > max_depth:
            listing.too_deep = True
            yield listing
            continue
        try:
            with os.scandir(base / rel) as found:
                names = sorted(found, key=attrgetter("name"))
        except OSError as exc:
            listing.error = exc.strerror or str(exc)
            yield listing
            continue
        for item in names:
            if skip_hidden and item.name.startswith("."):
                continue
            try:
                mode, size = _mode_and_size(item, sizes)
            except OSError as exc:
                if exc.errno != errno.ENOENT:  # else gone since the listing
                    listing.unreadable.append((f"{rel}/{item.name}", f"cannot be read: {exc.strerror or exc}"))
                continue
            entry = Entry(item.name, f"{rel}/{item.name}", mode, size)
            listing.entries.append(entry)
            if entry.is_dir:
                listing.subdirs.append(item.name)
        yield listing
        stack.extend((f"{rel}/{name}", depth + 1) for name in reversed(listing.subdirs))
