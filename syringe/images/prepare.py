"""`syringe image prepare`: a base disk made ready for Syringe, by content, cached (stage 1 of an image).

Two ways in, because real bases differ:

- **Linux disks, offline** with libguestfs' virt-customize. It boots a small appliance VM of its own (never
  the guest's kernel, never the host's: the disk is untrusted, and its file systems are parsed inside a VM)
  and runs the steps below in the disk's root. The guest itself never boots and needs no network: packages
  are downloaded on the host, with the host's apt, and handed in as a local repository. Chosen over
  cloud-init because it needs nothing inside the base (install images and appliances have no cloud-init,
  cloud images do) and costs one appliance boot (about 15 s under TCG) instead of a full boot of the
  guest.
- **Appliances, through the serial console**: the base boots once under QEMU and an expect-style script
  (prepare.console) logs in and configures it, then powers it off; what it wrote stays in the disk.

Either way the work happens on a copy; only a finished disk is renamed into the cache, so a failure or a
timeout leaves nothing half-written there. The cache key is every input: the base disk's bytes, the
image's prepare section and logins, the guest files, and this recipe."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from syringe.curriculum.models import Image, Prepare
from syringe.errors import ImageBuildError
from syringe.images.console import run_console_script
from syringe.images.progress import Quiet, Reporter, tail
from syringe.qemu.command import MANAGEMENT_GATEWAY, MANAGEMENT_SLOT
from syringe.qemu.process import choose_accel
from syringe.runtime.local.disks import ImageFileRefused, allowed_directories, confined_file
from syringe.runtime.local.flavours import GUEST_MODULES, GUEST_PATH, NETCONF_SERVER
from syringe.runtime.local.tinylinux import default_cache, download_packages, kernel_package, with_dependencies

RECIPE = "syringe-prepare-3"  # change it when a change here must prepare every disk again
GUEST_FILES = Path(__file__).parent / "guest"
REPOSITORY = Path(__file__).resolve().parents[2]  # where GUEST_MODULES are, as the tiny VM's builds read them
PAYLOAD = "/var/tmp/syringe-prepare"  # inside the disk, while it is prepared; removed at the end
LESSON_SHARE = "/antidote"  # where the lesson's files appear in the guest, as on the tiny VM and in pods
NETCONF_SERVICE = "netconf"  # in prepare.services: Syringe's NETCONF server, not a unit of the disk


@dataclass(frozen=True)
class Prepared:
    path: Path  # the prepared disk in the cache (qcow2)
    cached: bool  # it was there already
    seconds: float
    base_bytes: int  # the base disk's allocated size, and the prepared one's, for comparison
    prepared_bytes: int


class PrepareFailed(ImageBuildError):
    """A step of prepare failed: the message names it and ends with what the tool or console last said."""


def _allocated(path: Path) -> int:
    return path.stat().st_blocks * 512


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as source:
        while chunk := source.read(4 * 2**20):
            h.update(chunk)
    return h.hexdigest()


def base_format(base: Path) -> str:
    """qcow2 or raw. A base with a backing file is refused: prepare would read that file into the disk,
    and it could be any file of the host."""
    done = subprocess.run(
        ["qemu-img", "info", "--output=json", str(base)], capture_output=True, text=True, check=False, timeout=60
    )
    if done.returncode != 0:
        raise PrepareFailed(f"reading the base disk {base}: {done.stderr.strip()[-300:]}")
    info = json.loads(done.stdout)
    if info.get("backing-filename") or info.get("full-backing-filename"):
        raise PrepareFailed(f"the base disk {base} has a backing file: give prepare a disk that stands alone")
    fmt = str(info.get("format", ""))
    if fmt not in ("qcow2", "raw"):
        raise PrepareFailed(f"the base disk {base} is {fmt or 'of no known format'}: prepare takes qcow2 or raw")
    return fmt


def _guest_file(name: str, ready_line: str = "") -> str:
    return (GUEST_FILES / name).read_text().replace("@READY_LINE@", ready_line)


def _packages(prepare: Prepare) -> list[str]:
    wanted = list(prepare.packages)
    if NETCONF_SERVICE in prepare.services and "python3" not in wanted:
        wanted.append("python3")  # the NETCONF server is Python's standard library and Syringe's guest modules
    return wanted


def cache_key(image: Image, base_digest: str) -> str:
    assert image.prepare is not None
    h = hashlib.sha256()
    parts = [RECIPE, base_digest, image.prepare.model_dump_json(), image.ssh_user, image.ssh_password,
             image.config_user, image.config_password, image.ready_line(), _management_network()]  # fmt: skip
    parts += [path.read_text() for path in sorted(GUEST_FILES.iterdir()) if path.is_file()]
    if NETCONF_SERVICE in image.prepare.services:
        parts += [(REPOSITORY / module).read_text() for module in GUEST_MODULES]
    for part in parts:
        h.update(part.encode() + b"\0")
    return h.hexdigest()[:16]


def _management_network() -> str:
    # The first NIC QEMU gives every endpoint, on the wrapper as locally: matched by its PCI slot, so the
    # lesson's data NICs, which Syringe addresses itself, are never touched. QEMU's DHCP (restrict=on) offers
    # no router, and connections forwarded from another host arrive from that host's address: the default
    # route through QEMU's gateway carries the replies (QEMU forwards nothing else).
    return (
        f"[Match]\nPath=pci-0000:00:{MANAGEMENT_SLOT:02x}.0\n\n"
        f"[Network]\nDHCP=ipv4\nLinkLocalAddressing=no\nGateway={MANAGEMENT_GATEWAY}\n"
    )


def _q(text: str) -> str:
    return shlex.quote(text)


def offline_steps(image: Image) -> list[tuple[str, str]]:
    """The shell scripts run in the disk's root, in order, each a named step of the progress."""
    prepare = image.prepare
    assert prepare is not None
    head = "set -eu\nexport PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive\n"
    groups = ",".join(prepare.groups)
    logins = [(image.ssh_user, image.ssh_password)]
    if image.config_user and image.config_user not in (image.ssh_user, "root"):
        logins.append((image.config_user, image.config_password))
    users = head + "".join(f"getent group {_q(g)} >/dev/null || groupadd {_q(g)}\n" for g in prepare.groups)
    for user, password in logins:
        users += (
            f"id -u {_q(user)} >/dev/null 2>&1 || useradd --create-home --shell /bin/bash {_q(user)}\n"
            f"printf '%s:%s\\n' {_q(user)} {_q(password)} | chpasswd\n"
        )
        if groups:
            users += f"usermod -a -G {_q(groups)} {_q(user)}\n"
    steps = [("users and groups", users)]
    if _packages(prepare):
        apt = (f"-o Dir::Etc::SourceList={PAYLOAD}/sources.list -o Dir::Etc::SourceParts=- "
               f"-o Dir::State::Lists={PAYLOAD}/lists -o APT::Get::List-Cleanup=0")  # fmt: skip
        steps.append((
            "installing packages",
            head + f"command -v apt-get >/dev/null || {{ echo 'packages: needs apt in the disk (a Debian-family "
            f"system); use commands: elsewhere'; exit 1; }}\nmkdir -p {PAYLOAD}/lists/partial\n"
            f"apt-get -q {apt} update\napt-get -q -y --no-install-recommends {apt} install "
            + " ".join(_q(p) for p in _packages(prepare)) + "\napt-get clean\n",
        ))  # fmt: skip
    ssh = head + (
        "[ -x /usr/sbin/sshd ] || { echo 'SSH: /usr/sbin/sshd is not in the disk: add openssh-server to "
        "prepare.packages'; exit 1; }\n"
        "mkdir -p /etc/ssh/sshd_config.d\n"
        "printf 'PasswordAuthentication yes\\nKbdInteractiveAuthentication yes\\nUseDNS no\\n' "
        "> /etc/ssh/sshd_config.d/50-syringe.conf\n"
        "grep -q '^Include /etc/ssh/sshd_config.d/' /etc/ssh/sshd_config || "
        "sed -i '1i Include /etc/ssh/sshd_config.d/*.conf' /etc/ssh/sshd_config\n"
        "systemctl enable ssh.service 2>/dev/null || systemctl enable sshd.service\n"
    )
    steps.append(("enabling SSH", ssh))
    if NETCONF_SERVICE in prepare.services:
        steps.append((
            "enabling NETCONF",
            head + f"mkdir -p /{GUEST_PATH}\ncp -r {PAYLOAD}/guest/. /{GUEST_PATH}/\n"
            f"printf %s {_q(NETCONF_SERVER)} > /{GUEST_PATH}/netconf-server\nchmod 755 /{GUEST_PATH}/netconf-server\n"
            "printf 'Port 22\\nPort 830\\nSubsystem netconf /" + GUEST_PATH + "/netconf-server\\n' "
            "> /etc/ssh/sshd_config.d/60-syringe-netconf.conf\n"
            "echo 'd /var/lib/netconf 1777 root root -' > /etc/tmpfiles.d/syringe-netconf.conf\n",
        ))  # fmt: skip
    units = [unit for unit in prepare.services if unit != NETCONF_SERVICE]
    if units:
        steps.append(("enabling services", head + "".join(f"systemctl enable {_q(u)}\n" for u in units)))
    steps.append((
        "management network (DHCP)",
        head + f"mkdir -p /etc/systemd/network\ncp {PAYLOAD}/10-syringe-management.network /etc/systemd/network/\n"
        "systemctl enable systemd-networkd.service\n",
    ))  # fmt: skip
    steps.append((
        "identity, lesson share and ready line",
        head + f"install -m 755 {PAYLOAD}/syringe-identity /usr/local/sbin/syringe-identity\n"
        f"cp {PAYLOAD}/syringe-identity.service {PAYLOAD}/syringe-ready.service /etc/systemd/system/\n"
        "systemctl enable syringe-identity.service syringe-ready.service\n"
        f"mkdir -p {LESSON_SHARE}\nsed -i '/ # syringe lesson share$/d' /etc/fstab\n"
        f"echo 'lesson {LESSON_SHARE} 9p trans=virtio,version=9p2000.L,msize=262144,ro,nofail,"
        "x-systemd.device-timeout=5s 0 0 # syringe lesson share' >> /etc/fstab\n",
    ))  # fmt: skip
    if prepare.commands:
        steps.append(("commands", head + "set -x\n" + "\n".join(prepare.commands) + "\n"))
    steps.append(("cleaning up", head + f"rm -rf {PAYLOAD}\n"))
    return steps


def _local_repository(packages: list[str], debs: Path, into: Path) -> None:
    """The packages and their dependencies, downloaded by the host's apt into the cache, as a flat
    repository (a Packages index) that the disk's apt installs from with no network. apt picks only what
    the disk lacks."""
    closure = with_dependencies(tuple(packages))
    download_packages(closure, debs)
    into.mkdir(parents=True)
    stanzas = []
    for package in closure:
        found = sorted(debs.glob(f"{package}_*.deb"))
        if not found:
            continue  # a virtual package or an alternative apt did not download
        deb = found[-1]
        os.link(deb, into / deb.name) if deb.stat().st_dev == into.stat().st_dev else shutil.copy(deb, into)
        control = subprocess.run(["dpkg-deb", "-f", str(deb)], capture_output=True, text=True, check=True).stdout
        data = deb.read_bytes()
        stanzas.append(
            control.rstrip("\n")
            + f"\nFilename: ./{deb.name}\nSize: {len(data)}\nSHA256: {hashlib.sha256(data).hexdigest()}\n"
        )
    (into / "Packages").write_text("\n".join(stanzas))


def appliance_environment(cache: Path) -> dict[str, str]:
    """How virt-customize boots its appliance here: the kernel Syringe already uses for the tiny VM (the
    host may have none in /boot), its modules indexed by depmod, and TCG where KVM does not work."""
    kernel = kernel_package()
    version = kernel.removeprefix("linux-image-")
    root = cache / "appliance" / version
    modules = root / "lib/modules" / version
    if not (modules / "modules.dep").exists():
        download_packages([kernel], cache / "debs")
        partial = root.with_name(root.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        deb = sorted((cache / "debs").glob(f"{kernel}_*.deb"))[-1]
        subprocess.run(["dpkg-deb", "-x", str(deb), str(partial)], check=True, capture_output=True)
        subprocess.run(["depmod", "-b", str(partial), version], check=True, capture_output=True)
        shutil.rmtree(root, ignore_errors=True)
        partial.rename(root)
    if not Path("/lib/modules").is_dir():
        # supermin looks at the host's module directory even when given another kernel's.
        raise PrepareFailed("libguestfs needs the directory /lib/modules on the host (scripts/setup.sh makes it)")
    env = {
        **os.environ,
        "LIBGUESTFS_BACKEND": "direct",
        "LIBGUESTFS_CACHEDIR": str(cache / "appliance"),
        "SUPERMIN_KERNEL": str(root / "boot" / f"vmlinuz-{version}"),
        "SUPERMIN_MODULES": str(modules),
        "SUPERMIN_KERNEL_VERSION": version,
    }
    if choose_accel("auto") == "tcg":
        env["LIBGUESTFS_BACKEND_SETTINGS"] = "force_tcg"
    return env


def _kill_group(process: subprocess.Popen[str]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def _customise(disk: Path, payload: Path, steps: list[tuple[str, Path]], env: dict[str, str], deadline: float,
               reporter: Reporter) -> None:  # fmt: skip
    """virt-customize, one --run per step. Its "Running: <script>" lines tell which step is on."""
    names = {str(script): name for name, script in steps}
    command = ["virt-customize", "--no-network", "-a", str(disk), "--mkdir", str(Path(PAYLOAD).parent),
               "--copy-in", f"{payload}:{Path(PAYLOAD).parent}"]  # fmt: skip
    for _, script in steps:
        command += ["--run", str(script)]
    output: list[str] = []
    current, started = "starting the libguestfs appliance", time.monotonic()
    reporter.start(current)
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                               start_new_session=True)  # fmt: skip
    assert process.stdout is not None
    try:
        for line in _lines_until(process, deadline):
            output.append(line)
            running = re.search(r"Running: (\S+)", line)
            if running and running.group(1) in names:
                reporter.finish(current, time.monotonic() - started)
                current, started = names[running.group(1)], time.monotonic()
                reporter.start(current)
    except TimeoutError:
        _kill_group(process)
        raise PrepareFailed(
            f"{current}: did not finish in time (prepare.timeout)\n" + tail("\n".join(output))
        ) from None
    if process.wait() != 0:
        raise PrepareFailed(f"{current}: virt-customize failed\n" + tail("\n".join(output)))
    reporter.finish(current, time.monotonic() - started)


def _lines_until(process: subprocess.Popen[str], deadline: float) -> Iterator[str]:
    """The process's output lines, raising TimeoutError at the deadline even when it prints nothing."""
    import selectors

    assert process.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            if selector.select(timeout=min(left, 1.0)):
                line = process.stdout.readline()
                if not line:
                    return
                yield line.rstrip("\n")
            elif process.poll() is not None:
                yield from (line.rstrip("\n") for line in process.stdout)
                return


def prepare_disk(
    image: Image,
    image_dir: Path,
    base: Path | None = None,
    cache: Path | None = None,
    force: bool = False,
    reporter: Reporter | None = None,
) -> Prepared:
    """Prepare the image's base disk (``base``, else prepare.base). Returns the prepared disk in the cache."""
    reporter = reporter or Quiet()
    prepare = image.prepare
    if prepare is None:
        raise PrepareFailed(f"image {image.slug} has no prepare: section")
    if base is None:
        if not prepare.base:
            raise PrepareFailed(f"image {image.slug}: no base disk: give --base, or prepare.base in its metafile")
        # The metafile's author names it: the rule of local: files holds (a regular file inside the image's
        # directory, no link, no way out), so prepare never copies another host file into a disk. The
        # operator's --base may be anywhere.
        try:
            base = confined_file(image_dir / prepare.base, allowed_directories(image_dir, ()))
        except ImageFileRefused as exc:
            raise PrepareFailed(f"image {image.slug}: prepare.base: {exc}") from None
    if not base.is_file():
        raise PrepareFailed(f"the base disk {base} is not a file")
    if "\n" in image.ssh_password or "\n" in image.config_password:
        raise PrepareFailed(f"image {image.slug}: a password with a line break cannot be set")
    cache = (cache or default_cache()).resolve()
    began = time.monotonic()
    step, started = "reading the base disk", time.monotonic()
    reporter.start(step)
    fmt = base_format(base)
    key = cache_key(image, _sha256(base))
    reporter.finish(step, time.monotonic() - started, f"{fmt}, key {key}")
    target = cache / "prepared" / f"{image.slug}-{key}.qcow2"
    if target.exists() and not force:
        reporter.start("cached")
        reporter.finish("cached", 0.0, str(target))
        return Prepared(target, True, time.monotonic() - began, _allocated(base), _allocated(target))
    target.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + prepare.timeout
    with tempfile.TemporaryDirectory(prefix=f".{image.slug}-", dir=target.parent) as work_dir:
        work = Path(work_dir)
        disk = work / "disk.qcow2"
        step, started = "copying the base", time.monotonic()
        reporter.start(step)
        subprocess.run(["qemu-img", "convert", "-q", "-f", fmt, "-O", "qcow2", str(base), str(disk)], check=True,
                       timeout=max(1.0, deadline - time.monotonic()))  # fmt: skip
        reporter.finish(step, time.monotonic() - started)
        if prepare.console:
            run_console_script(image, disk, prepare.console, deadline, reporter)
        else:
            _prepare_offline(image, disk, work, cache, deadline, reporter)
        step, started = "compacting", time.monotonic()
        reporter.start(step)
        partial = work / "prepared.qcow2"
        # Compressed: a third of the size (measured: 734 MiB to 288 MiB for the Debian test disk, 19 s), which
        # every wrapper image, push and node import carries; the guest inflates clusters as it reads them.
        subprocess.run(["qemu-img", "convert", "-q", "-c", "-O", "qcow2", str(disk), str(partial)], check=True,
                       timeout=max(1.0, deadline - time.monotonic()))  # fmt: skip
        partial.chmod(0o644)  # QEMU runs as nobody and reads it through an overlay
        partial.rename(target)
        reporter.finish(step, time.monotonic() - started, str(target))
    for old in target.parent.glob(f"{image.slug}-*.qcow2"):
        if old != target:
            old.unlink(missing_ok=True)  # one prepared disk per image: the newest
            shutil.rmtree(old.with_name(f".wrap-{old.stem}"), ignore_errors=True)  # and its wrap context
    return Prepared(target, False, time.monotonic() - began, _allocated(base), _allocated(target))


def _prepare_offline(image: Image, disk: Path, work: Path, cache: Path, deadline: float, reporter: Reporter) -> None:
    assert image.prepare is not None
    payload = work / "syringe-prepare"
    payload.mkdir()
    (payload / "syringe-identity").write_text(_guest_file("syringe-identity"))
    (payload / "syringe-identity.service").write_text(_guest_file("syringe-identity.service"))
    (payload / "syringe-ready.service").write_text(_guest_file("syringe-ready.service", image.ready_line()))
    (payload / "10-syringe-management.network").write_text(_management_network())
    if NETCONF_SERVICE in image.prepare.services:
        for module in GUEST_MODULES:
            (payload / "guest" / module).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(REPOSITORY / module, payload / "guest" / module)
    packages = _packages(image.prepare)
    if packages:
        step, started = "downloading packages", time.monotonic()
        reporter.start(step)
        try:
            _local_repository(packages, cache / "debs", payload / "debs")
        except (ImageBuildError, subprocess.CalledProcessError) as exc:
            raise PrepareFailed(f"{step}: {exc}") from None
        (payload / "sources.list").write_text(f"deb [trusted=yes] file:{PAYLOAD}/debs ./\n")
        reporter.finish(step, time.monotonic() - started, f"{len(list((payload / 'debs').glob('*.deb')))} files")
    step, started = "preparing the appliance kernel", time.monotonic()
    reporter.start(step)
    try:
        env = appliance_environment(cache)
    except subprocess.CalledProcessError as exc:
        raise PrepareFailed(f"{step}: {exc}") from None
    reporter.finish(step, time.monotonic() - started)
    scripts = []
    for index, (name, text) in enumerate(offline_steps(image)):
        script = work / f"step-{index:02d}.sh"
        script.write_text(text)
        scripts.append((name, script))
    _customise(disk, payload, scripts, env, deadline, reporter)
