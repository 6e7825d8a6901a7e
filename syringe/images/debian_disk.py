"""A small bootable Debian disk, built from Debian packages with no loop device, mount or VM: the stand-in
for "an install image" that `syringe image prepare` starts from (and its tests use).

What it is: Debian bookworm (minbase, systemd, the generic kernel, iproute2), root's password `root`, a
login on ttyS0 and nothing else: no SSH, no user, no network configuration. That is what a freshly
installed system is before stage 1.

How: mmdebstrap makes the root file system in a directory; mke2fs writes it into the disk file as an ext4
partition (``-d``, at an offset); mkfs.fat, mtools and syslinux's mtools installer make a small FAT boot
partition holding the kernel, the initrd and syslinux.cfg; syslinux's MBR boots it. Each step works on a
plain file, so the build needs root (for mmdebstrap and file ownership) but no devices. The result is a
qcow2, cached by its recipe's content."""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from syringe.errors import ImageBuildError
from syringe.runtime.local.tinylinux import default_cache

SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
PACKAGES = ("linux-image-amd64", "systemd-sysv", "udev", "kmod", "iproute2", "initramfs-tools", "ca-certificates")
ROOT_PASSWORD = "root"  # the install image's own root login, as an installer would have asked for one
DISK_MIB = 2048
BOOT_START_MIB = 1
BOOT_MIB = 96
ROOT_START_MIB = BOOT_START_MIB + BOOT_MIB
MBR = Path("/usr/lib/syslinux/mbr/mbr.bin")
RECIPE = "debian-disk-1"  # change it when a change here must rebuild the disk

# Kernel command line of the disk's boot loader: the serial console is where a prepared disk says it is
# ready, and where console scripts log in.
KERNEL_COMMAND_LINE = "root=/dev/vda2 rw console=ttyS0 quiet"
SYSLINUX_CFG = f"""DEFAULT debian
PROMPT 0
TIMEOUT 0
LABEL debian
  KERNEL vmlinuz
  APPEND initrd=initrd.img {KERNEL_COMMAND_LINE}
"""
FSTAB = "/dev/vda2 / ext4 errors=remount-ro 0 1\n"


@dataclass(frozen=True)
class DebianDisk:
    path: Path
    seconds: float  # how long the build took; 0 when it was cached


def recipe_key() -> str:
    h = hashlib.sha256()
    for part in (RECIPE, SUITE, MIRROR, *PACKAGES, ROOT_PASSWORD, str(DISK_MIB), SYSLINUX_CFG, FSTAB):
        h.update(part.encode() + b"\0")
    return h.hexdigest()[:16]


def _run(command: list[str], step: str) -> None:
    try:
        done = subprocess.run(command, capture_output=True, text=True, check=False)
    except OSError as exc:
        raise ImageBuildError(f"{step}: cannot run {command[0]}: {exc.strerror}") from exc
    if done.returncode != 0:
        raise ImageBuildError(f"{step}: {' '.join(command)} failed: {(done.stderr or done.stdout).strip()[-600:]}")


def build_debian_disk(cache: Path | None = None, force: bool = False) -> DebianDisk:
    """The disk's path in the cache, built first when it is not there. Builds take turns on a lock."""
    import time

    cache = (cache or default_cache()) / "disks"
    target = cache / f"debian-{SUITE}-{recipe_key()}.qcow2"
    if target.exists() and not force:
        return DebianDisk(target, 0.0)
    if os.geteuid() != 0:
        raise ImageBuildError("the Debian disk is built by root (mmdebstrap and file ownership)")
    cache.mkdir(parents=True, exist_ok=True)
    with (cache / ".lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if target.exists() and not force:
            return DebianDisk(target, 0.0)
        started = time.monotonic()
        with tempfile.TemporaryDirectory(prefix="debian-disk.", dir=cache) as work:
            _build(Path(work), target)
        for old in cache.glob(f"debian-{SUITE}-*.qcow2"):
            if old != target:
                old.unlink(missing_ok=True)
        return DebianDisk(target, time.monotonic() - started)


def _build(work: Path, target: Path) -> None:
    root = work / "root"
    hooks = [
        f'echo "root:{ROOT_PASSWORD}" | chroot "$1" chpasswd',
        'echo debian > "$1/etc/hostname"',
        f"printf '%s' '{FSTAB}' > \"$1/etc/fstab\"",
        # Nothing of the build host leaks into the disk.
        'rm -f "$1/etc/resolv.conf" "$1/etc/machine-id" && touch "$1/etc/machine-id"',
    ]
    command = ["mmdebstrap", "--quiet", "--variant=minbase", f"--include={','.join(PACKAGES)}",
               "--dpkgopt=path-exclude=/usr/share/doc/*", "--dpkgopt=path-exclude=/usr/share/man/*",
               "--dpkgopt=path-exclude=/usr/share/locale/*",
               *(f"--customize-hook={hook}" for hook in hooks), SUITE, str(root), MIRROR]  # fmt: skip
    _run(command, "building the root file system (mmdebstrap)")
    kernels = sorted((root / "boot").glob("vmlinuz-*"))
    initrds = sorted((root / "boot").glob("initrd.img-*"))
    if not kernels or not initrds:
        raise ImageBuildError("building the root file system: no kernel or initrd in /boot")
    raw = work / "disk.raw"
    with raw.open("wb") as disk:
        disk.truncate(DISK_MIB * 2**20)
    mib = 2**20 // 512  # sectors per MiB
    table = (
        "label: dos\n"
        f"start={BOOT_START_MIB * mib}, size={BOOT_MIB * mib}, type=e, bootable\n"
        f"start={ROOT_START_MIB * mib}, type=83\n"
    )
    done = subprocess.run(["sfdisk", "--quiet", str(raw)], input=table, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise ImageBuildError(f"partitioning: {done.stderr.strip()[-400:]}")
    with raw.open("r+b") as disk:
        disk.write(MBR.read_bytes()[:440])  # the boot code only: the partition table stays
    root_mib = DISK_MIB - ROOT_START_MIB
    _run(["mkfs.ext4", "-q", "-F", "-L", "debian-root", "-d", str(root), "-E", f"offset={ROOT_START_MIB * 2**20}",
          str(raw), f"{root_mib}M"], "writing the root file system (mke2fs -d)")  # fmt: skip
    _run(["mkfs.fat", "-F", "16", "-n", "BOOT", "--offset", str(BOOT_START_MIB * mib), str(raw), str(BOOT_MIB * 1024)],
         "making the boot partition")  # fmt: skip
    boot = f"{raw}@@{BOOT_START_MIB * 2**20}"
    (work / "syslinux.cfg").write_text(SYSLINUX_CFG)
    for source, name in (
        (kernels[-1], "vmlinuz"),
        (initrds[-1], "initrd.img"),
        (work / "syslinux.cfg", "syslinux.cfg"),
    ):
        _run(["mcopy", "-o", "-i", boot, str(source), f"::{name}"], f"copying {name} to the boot partition")
    _run(["syslinux", "--install", "--offset", str(BOOT_START_MIB * 2**20), str(raw)], "installing syslinux")
    partial = target.with_name(f".{target.name}.partial")
    _run(["qemu-img", "convert", "-q", "-O", "qcow2", "-c", str(raw), str(partial)], "converting to qcow2")
    shutil.rmtree(root, ignore_errors=True)
    partial.chmod(0o644)  # QEMU runs as nobody and reads it through an overlay
    partial.rename(target)
