"""The local runtime's files on this machine, kept private.

The state directory sits at a predictable path in /tmp, where anyone may have made it first (a link to
/etc, a directory of their own). So it is never trusted as found: whatever is there is removed without
following links and made again, owned by Syringe's user, closed to everyone else. When Syringe is root its
VMs run as another user (nobody); the directories on their way are then open to that user's group for
traversal only, and each VM gets a directory of its own, owned by that user, holding its overlay, identity
and console, which no one else can read. Syringe itself (root) must not be led by that user: every file
it creates or reads in such a directory is opened without following links.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from syringe.curriculum.confined import relative_parts

_NO_FOLLOW_READ = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
_NO_FOLLOW_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_ATTEMPTS = 3  # someone makes the path again between removal and creation: try again, then refuse
VMS = "vms"  # a live lesson's directory holds a directory per VM here, named by its endpoint
JOBS = "jobs"  # and its Jobs' scratch directories here


class StateRefused(OSError):
    """A path of the state directory cannot be made private: it belongs to someone Syringe cannot override."""


@dataclass(frozen=True)
class Account:
    """A user of this machine by number: whom QEMU, or lesson code, runs as."""

    name: str
    uid: int
    gid: int

    @classmethod
    def named(cls, name: str) -> Account:
        entry = pwd.getpwnam(name)
        return cls(name, entry.pw_uid, entry.pw_gid)


def _settle(path: Path, traversed_by: Account | None) -> None:
    """Syringe's own directory: 0700, or 0710 with the group of the user who must pass through it."""
    if traversed_by is None:
        os.chmod(path, 0o700)
        return
    os.chown(path, -1, traversed_by.gid, follow_symlinks=False)
    os.chmod(path, 0o710)


def _remove(path: Path) -> None:
    """Whatever is at ``path``, gone, without following a link (rmtree walks by file descriptor)."""
    try:
        found = os.lstat(path)
    except FileNotFoundError:
        return
    try:
        if stat.S_ISDIR(found.st_mode):
            shutil.rmtree(path)
        else:
            os.unlink(path)
    except PermissionError as exc:
        what = "a link" if stat.S_ISLNK(found.st_mode) else "a directory" if stat.S_ISDIR(found.st_mode) else "a file"
        raise StateRefused(
            exc.errno,
            f"{path} is {what} of uid {found.st_uid}, which Syringe (uid {os.geteuid()}) cannot remove; remove it, "
            "or set SYRINGE_LOCAL__STATE_DIR to a directory of Syringe's own",
        ) from exc


def _is_ours(path: Path) -> bool:
    found = os.lstat(path)
    return stat.S_ISDIR(found.st_mode) and found.st_uid == os.geteuid()


def fresh_directory(path: Path, traversed_by: Account | None = None) -> None:
    """``path`` as a new, empty directory of Syringe's, whatever was there (a link, another user's directory):
    removed without following links, then made again. Raises StateRefused when it cannot be."""
    for _ in range(_ATTEMPTS):
        _remove(path)
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            continue  # made again meanwhile: remove it again
        if _is_ours(path):
            _settle(path, traversed_by)
            return
    raise StateRefused(f"{path} keeps being made by someone else; set SYRINGE_LOCAL__STATE_DIR elsewhere")


def own_directory(path: Path, traversed_by: Account | None = None) -> None:
    """``path`` as a directory of Syringe's, its contents kept when it already is one; anything else there
    (a link, another user's directory) is removed first."""
    with contextlib.suppress(FileNotFoundError):
        if _is_ours(path):
            _settle(path, traversed_by)
            return
    fresh_directory(path, traversed_by)


def reachable_by(path: Path, account: Account) -> str | None:
    """Why ``account`` cannot pass through every directory above ``path``, or None when it can."""
    for parent in reversed(path.parents):
        found = parent.stat()
        if found.st_uid == account.uid:
            allowed = bool(found.st_mode & stat.S_IXUSR)
        elif found.st_gid == account.gid:
            allowed = bool(found.st_mode & stat.S_IXGRP)
        else:
            allowed = bool(found.st_mode & stat.S_IXOTH)
        if not allowed:
            return f"{parent} is closed to {account.name}"
    return None


def vm_directory(path: Path, owner: Account | None) -> None:
    """A new directory for one VM (or template) and nothing else: 0700, owned by the user its QEMU runs as."""
    os.mkdir(path, 0o700)
    if owner is not None:
        os.chown(path, owner.uid, owner.gid, follow_symlinks=False)


def private_file(path: Path, data: bytes, owner: Account | None, mode: int = 0o600) -> None:
    """A new file only ``owner`` (else Syringe's user) may read: 0600. Whatever had the name goes first, a
    link included, never followed: the directory may be the VM user's."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    fd = os.open(path, _NO_FOLLOW_CREATE, 0o600)
    try:
        if owner is not None:
            os.fchown(fd, owner.uid, owner.gid)
        os.fchmod(fd, mode)
        while data:
            data = data[os.write(fd, data) :]
    finally:
        os.close(fd)


def make_state_dir(state_dir: Path, default_base: Path | None, vm_user: Account | None) -> None:
    """The state directory, new and Syringe's own (emptied at every start), and the directories above it
    made where missing; ``vm_user`` (QEMU's) must be able to pass through them all. ``default_base``: the
    default's per-user directory in /tmp, made Syringe's own too (its contents, other instances', kept)."""
    if default_base is not None:
        own_directory(default_base, vm_user)
    missing = [parent for parent in state_dir.parents if not parent.exists()]
    for parent in reversed(missing):
        parent.mkdir(mode=0o755)
        parent.chmod(0o755)  # whatever the umask: QEMU's user passes through
    fresh_directory(state_dir, vm_user)
    if vm_user is not None and (why := reachable_by(state_dir, vm_user)) is not None:
        raise StateRefused(f"QEMU runs as {vm_user.name}, who cannot reach {state_dir}: {why}")


def lesson_directory(directory: Path, vm_user: Account | None) -> None:
    """A live lesson's directory: closed to all but QEMU's user, who may only pass through it to the share
    and to each VM's own directory (in VMS); the Jobs' scratch directories (in JOBS) are Syringe's alone."""
    fresh_directory(directory, vm_user)
    fresh_directory(directory / VMS, vm_user)
    fresh_directory(directory / JOBS)


def write_share(directory: Path, files: Mapping[str, bytes]) -> None:
    """The lesson's files, 0755 and 0644: the guest checks these modes itself (9p), and its learner must
    read them. On this machine the live lesson's directory above keeps everyone but QEMU's user out. Only
    plain relative names: one with ``..`` would write outside the share."""
    directory.mkdir(mode=0o700)
    directory.chmod(0o755)
    for relative, content in files.items():
        parts = relative_parts(relative)
        if parts is None:
            raise StateRefused(f"the lesson file {relative!r} is not a relative path inside the lesson")
        target = directory.joinpath(*parts)
        for parent in reversed(target.relative_to(directory).parents):
            if not (directory / parent).is_dir():
                (directory / parent).mkdir(mode=0o700)
                (directory / parent).chmod(0o755)
        private_file(target, content, None, 0o644)


def read_tail(path: Path, limit: int) -> bytes:
    """The last ``limit`` bytes of a regular file that another user may control: never through a link, never
    a FIFO or device, never a second name of someone else's file (a hard link). Empty when it is any of
    those, or missing."""
    try:
        fd = os.open(path, _NO_FOLLOW_READ)
    except OSError:
        return b""
    try:
        found = os.fstat(fd)
        if not stat.S_ISREG(found.st_mode) or found.st_nlink != 1:
            return b""
        os.lseek(fd, max(0, found.st_size - limit), os.SEEK_SET)
        data = b""
        while len(data) < limit and (chunk := os.read(fd, limit - len(data))):
            data += chunk
        return data
    finally:
        os.close(fd)
