"""The tiny VM's flavours: what a tiny VM carries beyond its base, what it starts at boot, and the ports it
serves. An image names its flavour in ``local.flavour``; each flavour is built once, by content, into its
own initramfs (tinylinux.py).

The Python flavours carry Debian's python3.11 with only the standard-library modules that Syringe's guest
programs (syringe.guest) import, compiled ahead (a TCG guest compiling them at each start would be slow),
and those programs: a NETCONF server with real edit-config semantics that replaces the base's shell one,
and, in the inventory flavour, the example lessons' inventory service.
"""

from __future__ import annotations

import modulefinder
import py_compile
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import syringe
from syringe.curriculum import CurriculumTree
from syringe.curriculum.problems import Problem
from syringe.errors import ImageBuildError
from syringe.qemu.command import MIN_TINY_MEMORY_MIB

PYTHON_MEMORY_MIB = 256  # measured: 128 MiB panics unpacking a 40 MB initramfs
BASE_PORTS = frozenset({22, 80, 830})  # sshd (SSH, NETCONF), busybox httpd
PYTHON = "python3.11"
PYTHON_PACKAGES = ("python3.11-minimal", "libpython3.11-minimal", "libpython3.11-stdlib", "libexpat1", "zlib1g")
# Imported at every start (site, the codecs), or by the guest programs.
# A learner's python3 has these too: calling a REST API, pretty-printing JSON.
PYTHON_ENTRIES = ("site", "encodings.utf_8", "encodings.latin_1", "encodings.ascii", "encodings.aliases",
                  "encodings.idna", "syringe.guest.netconf_server", "syringe.guest.inventory", "urllib.request",
                  "json.tool", "argparse", "ipaddress", "socket", "subprocess")  # fmt: skip
# Imported only where they are optional (http.client's TLS) or never by what runs in the guest.
PYTHON_EXCLUDES = ("ssl", "_ssl", "_hashlib", "unittest", "pydoc", "doctest", "tkinter", "asyncio",
                   "multiprocessing", "concurrent", "ctypes", "bz2", "lzma", "_lzma", "_bz2", "sqlite3", "curses",
                   "readline", "dbm", "pdb", "lib2to3", "xmlrpc", "getpass", "netrc", "tty", "pty")  # fmt: skip
# The modules of this package that the Python flavours carry: the guest programs and what they import. Each
# flavour's build is keyed by their content; python_files refuses to carry a module missing from here.
GUEST_MODULES = ("syringe/__init__.py", "syringe/errors.py", "syringe/access/__init__.py",
                 "syringe/access/netconf_framing.py", "syringe/guest/__init__.py", "syringe/guest/inventory.py",
                 "syringe/guest/netconf_datastore.py", "syringe/guest/netconf_server.py")  # fmt: skip
GUEST_PATH = "usr/lib/syringe"  # where syringe.guest (and the framing it imports) lives in the VM

NETCONF_SERVER = f"#!/bin/sh\nPYTHONPATH=/{GUEST_PATH} exec /usr/bin/python3 -m syringe.guest.netconf_server\n"


@dataclass(frozen=True)
class Flavour:
    packages: tuple[str, ...] = ()  # Debian packages whose files it may carry ...
    binaries: tuple[tuple[str, str], ...] = ()  # ... of which these (where, in the VM), with their libraries
    python: bool = False
    trees: tuple[str, ...] = ()  # directories of the packages carried whole (data files: YANG modules)
    library_dirs: tuple[str, ...] = ()  # packages' private library directories, named by RUNPATH
    files: tuple[tuple[str, str], ...] = ()  # (path in the VM, text): configuration
    accounts: str = ""  # lines for /etc/passwd and /etc/group, as "passwd:<line>" or "group:<line>"
    start: str = ""  # shell, run by init once the VM has its name and addresses, before its ready line
    serves: frozenset[int] = field(default=BASE_PORTS)
    # The least guest memory it boots in: the initramfs is unpacked into memory, and Python's doubles it.
    memory_mib: int = MIN_TINY_MEMORY_MIB


# Keyed by the lesson format's names for them (curriculum.models.TinyFlavour).
FLAVOURS: dict[str, Flavour] = {
    "base": Flavour(),
    "netconf": Flavour(python=True, memory_mib=PYTHON_MEMORY_MIB),
    "inventory": Flavour(
        python=True,
        memory_mib=PYTHON_MEMORY_MIB,
        start=f"PYTHONPATH=/{GUEST_PATH} setsid /usr/bin/python3 -m syringe.guest.inventory --port 8080 "
        "</dev/null >/var/log/inventory.log 2>&1 &\n"
        # Ready means serving: wait (briefly) for the service to listen.
        "i=0; while ! wget -q -O /dev/null http://127.0.0.1:8080/ 2>/dev/null && [ $i -lt 100 ]; do\n"
        "  sleep 0.1; i=$((i+1))\ndone\n",
        serves=BASE_PORTS | {8080},
    ),
    # FRRouting 8.4 from Debian: zebra, staticd, ospfd and bgpd run as frr; vtysh works for root (the
    # configurators) and for the learner, whom the start script puts in frrvty.
    "frr": Flavour(
        packages=("frr",),
        binaries=tuple(
            (path, path)
            for path in (
                # vtysh asks PAM (service "frr") before it talks to the daemons: a shell login is the check.
                "lib/x86_64-linux-gnu/security/pam_permit.so",
                "usr/bin/vtysh",
                "usr/lib/frr/zebra",
                "usr/lib/frr/staticd",
                "usr/lib/frr/ospfd",
                "usr/lib/frr/bgpd",
            )
        ),
        trees=("usr/share/yang",),
        library_dirs=("usr/lib/x86_64-linux-gnu/frr",),
        files=(
            ("etc/frr/frr.conf", "frr defaults traditional\nservice integrated-vtysh-config\n"),
            ("etc/frr/vtysh.conf", "service integrated-vtysh-config\n"),
            ("etc/pam.d/frr", "auth required pam_permit.so\naccount required pam_permit.so\n"),
        ),
        accounts="passwd:frr:x:101:101:FRRouting:/nonexistent:/bin/false\ngroup:frr:x:101:\ngroup:frrvty:x:102:frr\n",
        start=(
            "learner=$(awk -F: '$3 == 1000 {print $1}' /etc/passwd)\n"
            '[ -n "$learner" ] && sed -i "s/^frrvty:x:102:.*/&,$learner/" /etc/group\n'
            "mkdir -p /var/run/frr /var/log/frr /var/tmp/frr && chown frr:frr /var/run/frr /var/log/frr /var/tmp/frr\n"
            "chown -R frr:frr /etc/frr && chmod 775 /etc/frr\n"
            "for daemon in zebra staticd ospfd bgpd; do\n"
            "  /usr/lib/frr/$daemon -d -F traditional -u frr -g frr --log file:/var/log/frr/$daemon.log\n"
            "done\n"
            "i=0; while [ ! -S /var/run/frr/ospfd.vty ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done\n"
        ),
        memory_mib=PYTHON_MEMORY_MIB,
    ),
    "utility": Flavour(
        packages=("curl", "tcpdump", "traceroute"),
        binaries=(
            ("usr/bin/curl", "usr/bin/curl"),
            ("usr/bin/tcpdump", "usr/bin/tcpdump"),
            ("usr/bin/traceroute.db", "usr/bin/traceroute"),
        ),
        python=True,
        memory_mib=PYTHON_MEMORY_MIB,
    ),
}


def guest_sources() -> list[Path]:
    """GUEST_MODULES, as files of this checkout or installation."""
    package_root = Path(syringe.__path__[0]).parent
    return [package_root / module for module in GUEST_MODULES]


@dataclass(frozen=True)
class PythonFile:
    inside: str  # its path in the VM
    data: bytes
    mode: int = 0o644


def python_files(stdlib: Path) -> tuple[list[PythonFile], list[Path]]:
    """The files of the Python flavours' python3: the modules the guest programs reach from PYTHON_ENTRIES
    (sources, and bytecode that is never re-validated), from Debian's standard library unpacked at
    ``stdlib`` and from this package. Also returns the extension modules, whose libraries the caller adds."""
    package_root = Path(syringe.__path__[0]).parent
    finder = modulefinder.ModuleFinder(
        path=[str(package_root), str(stdlib), str(stdlib / "lib-dynload")], excludes=list(PYTHON_EXCLUDES)
    )
    with tempfile.NamedTemporaryFile("w", suffix=".py") as script:
        script.write("".join(f"import {name}\n" for name in PYTHON_ENTRIES))
        script.flush()
        finder.run_script(script.name)
    files: list[PythonFile] = []
    extensions: list[Path] = []
    for name, module in sorted(finder.modules.items()):
        where: str | None = getattr(module, "__file__", None)
        if where is None or name == "__main__":
            continue  # built into the interpreter
        source = Path(where)
        if source.is_relative_to(stdlib):
            inside = f"usr/lib/python3.11/{source.relative_to(stdlib)}"
        elif source.is_relative_to(package_root / "syringe"):
            carried = source.relative_to(package_root).as_posix()
            if carried not in GUEST_MODULES:
                raise ImageBuildError(f"the guest programs import {carried}: add it to flavours.GUEST_MODULES")
            inside = f"{GUEST_PATH}/{carried}"
        else:
            continue
        if source.suffix == ".so":
            files.append(PythonFile(inside, source.read_bytes(), 0o755))
            extensions.append(source)
            continue
        files.append(PythonFile(inside, source.read_bytes()))
        if sys.version_info[:2] == (3, 11):  # bytecode is per minor version: this one's is the guest's
            with tempfile.TemporaryDirectory() as scratch:
                compiled = py_compile.compile(
                    str(source),
                    cfile=f"{scratch}/{source.stem}.pyc",
                    dfile=f"/{inside}",
                    doraise=True,
                    invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
                )
                if compiled is not None:
                    cached = f"{Path(inside).parent}/__pycache__/{source.stem}.cpython-311.pyc"
                    files.append(PythonFile(cached, Path(compiled).read_bytes()))
    # The interpreter finds its prefix by this landmark, and its extension modules' directory by name.
    if not any(f.inside == "usr/lib/python3.11/os.py" for f in files):
        files.append(PythonFile("usr/lib/python3.11/os.py", (stdlib / "os.py").read_bytes()))
    return files, extensions


def unserved_ports(tree: CurriculumTree) -> list[Problem]:
    """Warnings, with file and line: presentations and additional ports that nothing in an endpoint's tiny
    VM flavour listens on. On the embedded default such a lesson fails once the VM is up (the refusal
    grace), so its author hears of it from `syringe validate` first."""
    warnings = []
    for source in tree.lessons.values():
        for index, endpoint in enumerate(source.lesson.endpoints):
            image = tree.images.get(endpoint.image)
            if image is None or image.local is None or image.local.kind != "tiny-linux":
                continue
            flavour = FLAVOURS[image.local.flavour]
            served = ", ".join(str(port) for port in sorted(flavour.serves))
            ports: list[tuple[tuple[str | int, ...], int]] = [
                (("endpoints", index, "presentations", p, "port"), presentation.port)
                for p, presentation in enumerate(endpoint.presentations)
            ]
            ports += [
                (("endpoints", index, "additionalPorts", a), port) for a, port in enumerate(endpoint.additional_ports)
            ]
            for path, port in ports:
                if port in flavour.serves:
                    continue
                message = (
                    f"warning: image {image.slug} runs locally as the tiny VM's {image.local.flavour} flavour, where "
                    f"nothing listens on port {port} (it serves {served}): on the embedded default, a launch of "
                    "this lesson fails once the VM is up"
                )
                warnings.append(source.doc.problem(path, message))
    return sorted(warnings, key=lambda w: (w.file, w.line, w.column))
