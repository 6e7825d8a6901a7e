"""The tiny Linux VM: a Debian kernel and an initramfs of busybox and Debian's OpenSSH server.

Built from Debian packages only (``apt-get download`` + ``dpkg-deb -x``; nothing is installed on the
host), in seconds, into a cache directory keyed by what went into it. OpenSSH rather than dropbear because
NETCONF needs an SSH subsystem, which dropbear cannot serve.
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import io
import lzma
import os
import re
import shutil
import struct
import subprocess
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import asyncssh

from syringe.errors import ImageBuildError
from syringe.runtime.local.flavours import (
    FLAVOURS,
    NETCONF_SERVER,
    PYTHON,
    PYTHON_PACKAGES,
    Flavour,
    guest_sources,
    python_files,
)

PACKAGES = ("busybox-static", "openssh-server", "libwrap0", "iputils-ping", "bash")
# Debian binaries, with the libraries they link: sshd (subsystems, for NETCONF); bash, the learner's shell
# (busybox's shell would run its own applets first); ping (ICMP datagram sockets: no root needed).
BINARIES = ("usr/sbin/sshd", "bin/bash", "bin/ping")
# virtio_pci finds the devices; virtio_net and 9pnet_virtio drive the NICs and the lesson share;
# qemu_fw_cfg shows a warm-booted VM its identity.
MODULES = ("virtio_pci", "virtio_net", "9pnet_virtio", "9p", "virtio_rng", "qemu_fw_cfg")
MULTIARCH = "x86_64-linux-gnu"


@dataclass(frozen=True)
class TinyLinux:
    directory: Path

    @property
    def kernel(self) -> Path:
        """The uncompressed kernel, booted through its PVH entry point, where it could be extracted: no
        decompression and no BIOS boot path, which under TCG saves about a third of the boot. Else the
        compressed one."""
        uncompressed = self.directory / "vmlinux"
        return uncompressed if uncompressed.exists() else self.directory / "vmlinuz"

    @property
    def initrd(self) -> Path:
        # Uncompressed: inflating it costs the guest 0.3 s under TCG, more than reading it costs QEMU.
        return self.directory / "initramfs.cpio"


def default_cache() -> Path:
    configured = os.environ.get("SYRINGE_CACHE_DIR")
    if configured:
        return Path(configured)
    if os.geteuid() == 0:
        return Path("/var/cache/syringe")
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "syringe"


def _run(command: list[str], step: str, cwd: Path | None = None, check: bool = True) -> str:
    try:
        done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    except OSError as exc:
        raise ImageBuildError(f"{step}: cannot run {command[0]}: {exc.strerror}") from exc
    if check and done.returncode != 0:
        raise ImageBuildError(f"{step}: {' '.join(command)} failed: {(done.stderr or done.stdout).strip()[-400:]}")
    return done.stdout


@functools.cache  # one apt-cache call per process, not one per flavour
def kernel_package() -> str:
    """The generic kernel flavour (the -cloud- one has no 9p) that linux-image-amd64 points at today."""
    output = _run(["apt-cache", "depends", "linux-image-amd64"], "finding the kernel package", check=False)
    if "Depends: linux-image-" not in output:
        # A fresh machine has no package lists yet.
        _run(["apt-get", "update", "-qq"], "updating the package lists")
        output = _run(["apt-cache", "depends", "linux-image-amd64"], "finding the kernel package")
    match = re.search(r"Depends: (linux-image-\d\S*-amd64)", output)
    if match is None:
        raise ImageBuildError("finding the kernel package: linux-image-amd64 depends on no linux-image-<version>")
    return match.group(1)


def download_packages(packages: list[str], into: Path) -> None:
    into.mkdir(parents=True, exist_ok=True)
    missing = [p for p in packages if not list(into.glob(f"{p}_*.deb"))]
    if not missing:
        return
    try:
        _run(["apt-get", "download", *missing], "downloading packages", cwd=into)
    except ImageBuildError:
        # A fresh machine has no package lists yet.
        _run(["apt-get", "update", "-qq"], "updating the package lists")
        _run(["apt-get", "download", *missing], "downloading packages", cwd=into)


def with_dependencies(packages: tuple[str, ...]) -> list[str]:
    """The packages and every package they depend on (no recommends): what their binaries may link."""
    if not packages:
        return []
    command = ["apt-cache", "depends", "--recurse", "--no-recommends", "--no-suggests", "--no-conflicts",
               "--no-breaks", "--no-replaces", "--no-enhances", *packages]  # fmt: skip
    output = _run(command, "finding the packages' dependencies", check=False)
    if not output.strip():
        _run(["apt-get", "update", "-qq"], "updating the package lists")
        output = _run(command, "finding the packages' dependencies")
    found = {line.strip() for line in output.splitlines() if line and not line[0].isspace() and "<" not in line}
    return sorted(found | set(packages))


def _module_dependencies(path: Path) -> list[str]:
    info = re.search(rb"depends=([\w,-]*)\x00", path.read_bytes())
    return [d.replace("-", "_") for d in info.group(1).decode().split(",") if d] if info else []


def module_load_order(modules_dir: Path, wanted: tuple[str, ...]) -> list[Path]:
    """The wanted modules and everything they depend on, dependencies first (read from each module's
    own .modinfo, so neither depmod nor kmod is needed)."""
    by_name = {p.name.removesuffix(".ko").replace("-", "_"): p for p in modules_dir.rglob("*.ko")}
    order: list[Path] = []
    seen: set[str] = set()

    def visit(name: str) -> None:
        if name in seen:
            return
        seen.add(name)
        if name not in by_name:
            return  # built into the kernel
        for dependency in _module_dependencies(by_name[name]):
            visit(dependency)
        order.append(by_name[name])

    for name in wanted:
        visit(name)
    return order


XEN_ELFNOTE_PHYS32_ENTRY = 18  # the PVH entry point QEMU boots an ELF kernel by


def _has_pvh_entry(elf: bytes) -> bool:
    """Whether a 64-bit little-endian ELF has the note that lets QEMU boot it directly (PVH)."""
    if elf[:4] != b"\x7fELF" or elf[4] != 2:
        return False
    program_headers, entry_size, count = struct.unpack_from("<Q", elf, 0x20)[0], *struct.unpack_from("<HH", elf, 0x36)
    for index in range(count):
        kind, _, offset, _, _, size = struct.unpack_from("<IIQQQQ", elf, program_headers + index * entry_size)
        if kind != 4:  # PT_NOTE
            continue
        position = offset
        while position + 12 <= offset + size:
            name_size, description_size, note_type = struct.unpack_from("<III", elf, position)
            name = elf[position + 12 : position + 12 + name_size].rstrip(b"\x00")
            if name == b"Xen" and note_type == XEN_ELFNOTE_PHYS32_ENTRY:
                return True
            position += 12 + (name_size + 3) // 4 * 4 + (description_size + 3) // 4 * 4
    return False


def extract_vmlinux(bzimage: bytes) -> bytes | None:
    """The ELF kernel inside a bzImage whose payload is xz-compressed (Debian's), if it has a PVH entry."""
    start = bzimage.find(b"\xfd7zXZ\x00")
    if start < 0:
        return None
    try:
        elf = lzma.LZMADecompressor().decompress(bzimage[start:])
    except lzma.LZMAError:
        return None
    return elf if _has_pvh_entry(elf) else None


def _libraries(binary: Path, unpacked: Path, private: tuple[str, ...] = ()) -> list[Path]:
    """The libraries ``binary`` links, found in the unpacked packages first, then on this machine.
    ``private``: packages' own library directories (under the unpacked tree), which their binaries name by
    RUNPATH."""
    directories = (unpacked / "lib" / MULTIARCH, unpacked / "usr/lib" / MULTIARCH, *(unpacked / d for d in private))
    env = {**os.environ, "LD_LIBRARY_PATH": ":".join(str(d) for d in directories)}
    done = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, env=env, check=False)
    missing = re.findall(r"(\S+) => not found", done.stdout)
    if done.returncode != 0 or missing:
        raise ImageBuildError(f"libraries of {binary.name}: missing {', '.join(missing) or done.stderr.strip()}")
    return [Path(p) for p in re.findall(r"(/\S+) \(0x", done.stdout)]


class Cpio:
    """An initramfs archive in the newc format, written in memory."""

    def __init__(self) -> None:
        self.buffer = io.BytesIO()
        self.inode = 1

    def _entry(self, name: str, mode: int, data: bytes = b"", uid: int = 0, gid: int = 0) -> None:
        encoded = name.encode() + b"\x00"
        fields = (self.inode, mode, uid, gid, 1, 0, len(data), 0, 0, 0, 0, len(encoded), 0)
        header = b"070701" + b"".join(f"{value:08X}".encode() for value in fields)
        self.buffer.write(header + encoded)
        self.buffer.write(b"\x00" * (-(len(header) + len(encoded)) % 4))
        self.buffer.write(data + b"\x00" * (-len(data) % 4))
        self.inode += 1

    def directory(self, name: str, mode: int = 0o755, uid: int = 0) -> None:
        self._entry(name, 0o040000 | mode, uid=uid, gid=uid)

    def file(self, name: str, data: bytes, mode: int = 0o644, uid: int = 0) -> None:
        self._entry(name, 0o100000 | mode, data, uid=uid, gid=uid)

    def symlink(self, name: str, target: str) -> None:
        self._entry(name, 0o120000 | 0o777, target.encode())

    def close(self) -> bytes:
        self._entry("TRAILER!!!", 0)
        return self.buffer.getvalue()


def _guest_file(name: str) -> bytes:
    return resources.files("syringe.runtime.local").joinpath("guest").joinpath(name).read_bytes()


GUEST_FILES = ("init", "netconf-server", "index.html.in", "status.cgi")

SSHD_CONFIG = """\
Port 22
Port 830
HostKey /etc/ssh/ssh_host_ed25519_key
HostKey /etc/ssh/ssh_host_rsa_key
PasswordAuthentication yes
KbdInteractiveAuthentication no
PermitRootLogin yes
PermitEmptyPasswords no
UsePAM no
UseDNS no
PrintMotd no
PrintLastLog no
StrictModes no
Subsystem netconf /usr/libexec/syringe/netconf-server
"""

ETC = {
    "etc/passwd": "root:x:0:0:root:/root:/bin/bash\nsshd:x:100:65534::/run/sshd:/bin/false\n"
    "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    "etc/shadow": "root:!:19000:0:99999:7:::\nsshd:!:19000:0:99999:7:::\nnobody:!:19000:0:99999:7:::\n",
    "etc/group": "root:x:0:\ntty:x:5:\nnogroup:x:65534:\n",
    "etc/shells": "/bin/sh\n/bin/bash\n",
    "etc/hosts": "127.0.0.1 localhost\n",
    "etc/nsswitch.conf": "passwd: files\ngroup: files\nshadow: files\nhosts: files\n",
    "etc/profile": "export PATH=/bin:/sbin:/usr/bin:/usr/sbin\nexport PS1='\\u@\\h:\\w\\$ '\ncd 2>/dev/null\n",
    "etc/ssh/sshd_config": SSHD_CONFIG,
}


def _host_keys() -> dict[str, bytes]:
    keys = {}
    for algorithm, name in (("ssh-ed25519", "ed25519"), ("ssh-rsa", "rsa")):
        key = asyncssh.generate_private_key(algorithm)
        keys[f"etc/ssh/ssh_host_{name}_key"] = key.export_private_key("openssh")
        keys[f"etc/ssh/ssh_host_{name}_key.pub"] = key.export_public_key("openssh")
    return keys


TOP_DIRECTORIES = ("bin", "sbin", "usr", "usr/bin", "usr/sbin", "usr/libexec", "usr/libexec/syringe", "etc",
                   "etc/ssh", "proc", "sys", "dev", "run", "tmp", "root", "home", "mnt", "var", "var/log", "var/lib",
                   "srv", "srv/www", "srv/www/cgi-bin", "lib", "lib/modules", "lib64")  # fmt: skip


def _initramfs(unpacked: Path, modules: list[Path], modules_root: Path, flavour: Flavour) -> bytes:
    archive = Cpio()
    for directory in TOP_DIRECTORIES:
        archive.directory(directory, 0o700 if directory == "root" else 0o755)
    busybox = unpacked / "bin/busybox"
    archive.file("bin/busybox", busybox.read_bytes(), 0o755)
    applets = _run([str(busybox), "--list-full"], "listing busybox applets").split()
    linked = {"bin/busybox", "linuxrc", *BINARIES}
    for applet in applets:
        # Also in /bin: sshd gives users a PATH without the sbin directories, and ip, ifconfig... live there.
        for path in (applet, f"bin/{Path(applet).name}"):
            if path not in linked and f"bin/{Path(path).name}" not in BINARIES:
                archive.symlink(path, "/bin/busybox")
                linked.add(path)

    made: set[str] = set(TOP_DIRECTORIES)
    added: set[str] = set()

    def directories_for(inside: str) -> None:
        parent = Path(inside).parent
        for depth in range(1, len(parent.parts) + 1):
            part = str(Path(*parent.parts[:depth]))
            if part not in made:
                archive.directory(part)
                made.add(part)

    def with_libraries(source: Path) -> None:
        for library in _libraries(source, unpacked, flavour.library_dirs):
            inside = str(library).removeprefix(str(unpacked)).lstrip("/")
            if inside in added:
                continue
            added.add(inside)
            directories_for(inside)
            archive.file(inside, library.resolve().read_bytes(), 0o755)

    binaries = [(binary, binary) for binary in BINARIES] + list(flavour.binaries)
    if flavour.python:
        binaries.append((f"usr/bin/{PYTHON}", f"usr/bin/{PYTHON}"))
    for source, inside in binaries:
        directories_for(inside)
        archive.file(inside, (unpacked / source).read_bytes(), 0o755)
        with_libraries(unpacked / source)
    if flavour.python:
        archive.symlink("usr/bin/python3", PYTHON)
        files, extensions = python_files(unpacked / "usr/lib/python3.11")
        for python_file in files:
            directories_for(python_file.inside)
            archive.file(python_file.inside, python_file.data, python_file.mode)
        directories_for("usr/lib/python3.11/lib-dynload/x")
        for extension in extensions:
            with_libraries(extension)
    if flavour.start:
        directories_for("etc/syringe/start")
        archive.file("etc/syringe/start", ("#!/bin/sh\n" + flavour.start).encode(), 0o755)

    order = []
    for module in modules:
        relative = module.relative_to(modules_root)
        archive.file(f"lib/modules/{relative.name}", module.read_bytes())
        order.append(relative.name)
    archive.file("etc/modules.order", ("\n".join(order) + "\n").encode())

    etc = dict(ETC)
    for line in flavour.accounts.splitlines():
        database, _, entry = line.partition(":")
        etc[f"etc/{database}"] += entry + "\n"
        if database == "passwd":
            etc["etc/shadow"] += f"{entry.split(':')[0]}:!:19000:0:99999:7:::\n"
    for name, text in etc.items():
        archive.file(name, text.encode(), 0o600 if name == "etc/shadow" else 0o644)
    for inside, text in flavour.files:
        directories_for(inside)
        archive.file(inside, text.encode())
    for tree in flavour.trees:
        for found in sorted((unpacked / tree).rglob("*")):
            inside = str(found.relative_to(unpacked))
            if found.is_dir():
                directories_for(f"{inside}/x")
            elif found.is_file():
                directories_for(inside)
                archive.file(inside, found.read_bytes())
    for name, data in _host_keys().items():
        archive.file(name, data, 0o644 if name.endswith(".pub") else 0o600)
    archive.file("init", _guest_file("init"), 0o755)
    netconf_server = NETCONF_SERVER.encode() if flavour.python else _guest_file("netconf-server")
    archive.file("usr/libexec/syringe/netconf-server", netconf_server, 0o755)
    archive.file("srv/www/index.html.in", _guest_file("index.html.in"))
    archive.file("srv/www/cgi-bin/status", _guest_file("status.cgi"), 0o755)
    return archive.close()


def _digest(kernel: str, flavour: str) -> str:
    h = hashlib.sha256(f"{kernel} {' '.join(PACKAGES)} {' '.join(MODULES)} {flavour}".encode())
    # How it is built is part of what is built, and so are the programs it carries.
    h.update(Path(__file__).read_bytes())
    h.update((Path(__file__).parent / "flavours.py").read_bytes())
    for name in GUEST_FILES:
        h.update(_guest_file(name))
    if FLAVOURS[flavour].python:
        for source in guest_sources():
            h.update(source.read_bytes())
    return f"{flavour}-{h.hexdigest()[:12]}" if flavour != "base" else h.hexdigest()[:12]


def _flavour_of(build: str) -> str:
    """A build directory's flavour: <flavour>-<digest>, or the bare digest of the base."""
    return build.rsplit("-", 1)[0] if "-" in build else "base"


KEEP_BUILDS = 3  # other checkouts (or a running Syringe) may still use an older build


def build_tiny_linux(cache: Path | None = None, force: bool = False, flavour: str = "base") -> TinyLinux:
    """Build (or find) the tiny VM of a flavour. Returns where its kernel and initramfs are. Builds of one
    cache are serialised by a lock, so two checkouts building different versions at once never undo each
    other."""
    if flavour not in FLAVOURS:
        raise ImageBuildError(f"no tiny VM flavour {flavour!r}: there are {', '.join(FLAVOURS)}")
    cache = cache or default_cache()
    kernel = kernel_package()
    target = TinyLinux(cache / "tiny-linux" / _digest(kernel, flavour))
    if target.initrd.exists() and not force:
        return target
    cache.mkdir(parents=True, exist_ok=True)
    with (cache / "tiny-linux.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if target.initrd.exists() and not force:
            return target  # built by whoever held the lock
        return _build_locked(cache, kernel, target, force, FLAVOURS[flavour])


def _build_locked(cache: Path, kernel: str, target: TinyLinux, force: bool, flavour: Flavour) -> TinyLinux:
    debs = cache / "debs"
    packages = [*PACKAGES, *with_dependencies(flavour.packages), *(PYTHON_PACKAGES if flavour.python else ())]
    packages = list(dict.fromkeys(packages))
    download_packages([kernel, *packages], debs)
    unpacked = cache / "unpacked" / target.directory.name
    if not unpacked.exists() or force:
        partial = unpacked.with_name(unpacked.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        for package in (kernel, *packages):
            deb = sorted(debs.glob(f"{package}_*.deb"))[-1]
            _run(["dpkg-deb", "-x", str(deb), str(partial)], f"unpacking {deb.name}")
        shutil.rmtree(unpacked, ignore_errors=True)
        partial.rename(unpacked)
    version = kernel.removeprefix("linux-image-")
    modules_root = unpacked / "lib/modules" / version
    modules = module_load_order(modules_root, MODULES)
    staging = target.directory.with_name(target.directory.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    shutil.copyfile(unpacked / "boot" / f"vmlinuz-{version}", staging / "vmlinuz")
    vmlinux = extract_vmlinux((staging / "vmlinuz").read_bytes())
    if vmlinux is not None:
        (staging / "vmlinux").write_bytes(vmlinux)
    (staging / "initramfs.cpio").write_bytes(_initramfs(unpacked, modules, modules_root, flavour))
    shutil.rmtree(target.directory, ignore_errors=True)
    staging.rename(target.directory)  # complete builds only: a crash mid-build leaves a .partial behind
    for parent in (target.directory.parent, unpacked.parent):
        others = sorted(
            (
                old
                for old in parent.iterdir()
                if old.name != target.directory.name and _flavour_of(old.name) == _flavour_of(target.directory.name)
            ),
            key=lambda old: old.stat().st_mtime,
            reverse=True,
        )
        for old in others[KEEP_BUILDS - 1 :]:
            shutil.rmtree(old, ignore_errors=True)
    return target


def timed_build(cache: Path | None = None, force: bool = False, flavour: str = "base") -> tuple[TinyLinux, float]:
    started = time.monotonic()
    image = build_tiny_linux(cache, force, flavour)
    return image, time.monotonic() - started
