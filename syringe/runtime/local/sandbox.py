"""Lesson code on this machine, confined: configuration scripts and learner checks run by bubblewrap.

Off-cluster a Job's container is a local process (jobs.py), and what it runs is the lesson's: its python and
ansible configurators, its `script:` checks. In a cluster the pod is their sandbox; here bubblewrap (Debian's
`bwrap`) makes one per Job:

- **Its own user.** When Syringe is root, bubblewrap runs as root without a user namespace (so it may bind
  Syringe's own Python wherever it lives, even under /root), and `setpriv` then drops to the unprivileged
  account for good (no capabilities, no bounding set, no new privileges) before anything of the lesson
  runs. Otherwise the job keeps Syringe's user, in a user namespace with no capabilities that may make no
  further user namespaces.
- **Its own view of the files.** A new root holding, read-only: /usr (and the /bin, /lib links), the few
  /etc files programs read, Syringe's Python, its packages and Syringe itself, the Job's mounts (the
  lesson's files, the credentials). Writable: the Job's scratch directory, and a size-capped tmpfs at /tmp
  (its HOME). Nothing else of the host, so not /root, not Syringe's state, not other lessons.
- **Its own network, with only the lesson in it.** A network namespace has only a loopback interface;
  Syringe bridges exactly the lesson's endpoints in: one Unix socket per forwarded port, relayed to QEMU's
  port on the host, and inside, sandbox_relay.py listens on 127.0.0.1 at that same port number. The Job's
  environment (127.0.0.1 and the forwarded ports, from job_environment) needs no change; Syringe's API, the
  Kubernetes API, other local services and the internet are out of reach. Relaying through files rather than
  filtering a veth needs no root, no firewall rules and no address plan, and a port that is not relayed
  simply does not exist inside.
- **Its own processes and lifetime**: new PID, IPC and UTS namespaces, a new session (no terminal injection),
  and it dies with Syringe.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import syringe
from syringe.runtime.base import Reach
from syringe.runtime.local.sandbox_relay import pump
from syringe.runtime.local.state import Account

RELAY_SCRIPT = Path(__file__).with_name("sandbox_relay.py")
RELAY_INSIDE = Path("/run/syringe-relay")  # where the relay sockets are inside the sandbox
TMP_BYTES = 256 * 1024 * 1024  # /tmp inside is memory: capped, so a job cannot fill the machine's RAM
PROBE_TIMEOUT = 60.0
# What programs read from /etc (names, users, time zone, certificates, the loader's cache); nothing secret.
ETC_FILES = (
    "passwd",
    "group",
    "nsswitch.conf",
    "hosts",
    "host.conf",
    "localtime",
    "timezone",
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "alternatives",
    "ssl",
    "ca-certificates",
    "protocols",
    "services",
    "mime.types",
    f"python{sys.version_info.major}.{sys.version_info.minor}",
)
USR_LINKS = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")


def _covered(path: Path, roots: Iterable[Path]) -> bool:
    return any(path == root or path.is_relative_to(root) for root in roots)


def _own_packages() -> set[Path]:
    """Where Syringe's distribution's packages are (syringe, and api, which adds `syringe serve`): an
    editable install finds them in the checkout, outside every import path."""
    names = {name for name, dists in importlib.metadata.packages_distributions().items() if "syringe" in dists}
    found = {Path(syringe.__file__).resolve().parent}
    for name in names:
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.submodule_search_locations:
            found |= {Path(location).resolve() for location in spec.submodule_search_locations}
        elif spec is not None and spec.origin:
            found.add(Path(spec.origin).resolve())
    return found


def python_paths() -> tuple[Path, ...]:
    """What the sandbox's Python needs read-only: the interpreter's prefixes, every import path, Syringe's
    own package; never the working directory (a checkout may hold anything)."""
    candidates = {Path(sys.prefix), Path(sys.base_prefix), Path(os.path.realpath(sys.executable)).parent.parent}
    candidates |= _own_packages()
    cwd = Path.cwd()
    for entry in sys.path:
        if entry and Path(entry).resolve() != cwd and Path(entry).exists():
            candidates.add(Path(entry).resolve())
    candidates = {path for path in candidates if not _covered(path, [Path("/usr")]) and path != Path("/")}
    # Only the outermost of nested paths: binding one inside another is redundant.
    return tuple(sorted(p for p in candidates if not _covered(p, [q for q in candidates if q != p])))


@dataclass(frozen=True)
class Sandbox:
    """How lesson code runs confined on this machine (see the module's docstring)."""

    bwrap: str
    account: Account | None  # whom lesson code runs as, when Syringe is root; None: Syringe's own user
    read_only: tuple[Path, ...]  # Syringe's Python and packages
    setpriv: str = "/usr/bin/setpriv"  # what drops to ``account`` inside

    @property
    def user(self) -> str:
        return self.account.name if self.account is not None else f"uid {os.geteuid()}"

    def hand_over(self, workdir: Path) -> None:
        """The scratch directory (and what Syringe put in it) becomes the job's."""
        if self.account is None:
            return
        for path in [workdir, *workdir.rglob("*")]:
            os.chown(path, self.account.uid, self.account.gid, follow_symlinks=False)

    def command(
        self,
        argv: Sequence[str],
        workdir: Path,
        read_only: Iterable[Path] = (),
        relays: Mapping[int, Path] | None = None,
    ) -> list[str]:
        """bwrap's argv: ``argv`` run in the sandbox, in ``workdir`` (bound writable), with ``read_only``
        bound read-only at their own paths, and each (port, socket) of ``relays`` on the sandbox's
        127.0.0.1:port."""
        args = [self.bwrap, "--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts"]
        args += ["--unshare-cgroup-try", "--die-with-parent", "--new-session", "--hostname", "syringe-job"]
        if self.account is None:
            args += ["--unshare-user", "--disable-userns"]
        args += ["--ro-bind", "/usr", "/usr"]
        for name in USR_LINKS:
            host = Path("/") / name
            if host.is_symlink():
                args += ["--symlink", os.readlink(host), str(host)]
            elif host.is_dir():
                args += ["--ro-bind", str(host), str(host)]
        args += ["--proc", "/proc", "--dev", "/dev", "--perms", "1777", "--tmpfs", "/dev/shm"]
        args += ["--perms", "0755", "--dir", "/etc"]
        for name in ETC_FILES:
            args += ["--ro-bind-try", f"/etc/{name}", f"/etc/{name}"]
        args += ["--perms", "1777", "--size", str(TMP_BYTES), "--tmpfs", "/tmp"]
        made = {Path("/"), Path("/usr"), Path("/proc"), Path("/dev"), Path("/etc"), Path("/tmp")}
        bound: list[Path] = [Path("/usr"), Path("/proc"), Path("/dev")]

        def bind(option: str, source: Path, target: Path) -> None:
            for parent in reversed(target.parents):
                if parent not in made and not _covered(parent, bound):
                    args.extend(["--perms", "0755", "--dir", str(parent)])  # else bwrap makes it 0700 root's
                    made.add(parent)
            args.extend([option, str(source), str(target)])
            bound.append(target)

        for path in self.read_only:
            bind("--ro-bind-try", path, path)
        mounts = sorted({Path(p) for p in read_only}, key=lambda p: len(p.parts))
        for path in mounts:
            if not path.is_relative_to(workdir):
                bind("--ro-bind", path, path)
        bind("--bind", workdir, workdir)
        for path in mounts:  # after the scratch directory, so that they stay read-only inside it
            if path.is_relative_to(workdir) and path != workdir:
                bind("--ro-bind", path, path)
        inside: list[str] = []
        if relays:
            directory = {socket.parent for socket in relays.values()}
            assert len(directory) == 1, "one directory of relay sockets"
            bind("--ro-bind", directory.pop(), RELAY_INSIDE)
            inside = [f"{port}={RELAY_INSIDE / socket.name}" for port, socket in sorted(relays.items())]
        args += ["--remount-ro", "/", "--chdir", str(workdir), "--"]
        if self.account is not None:
            args += [self.setpriv, f"--reuid={self.account.uid}", f"--regid={self.account.gid}", "--clear-groups"]
            args += ["--inh-caps=-all", "--bounding-set=-all", "--no-new-privs"]
        return [*args, sys.executable, "-I", str(RELAY_SCRIPT), *inside, "--", *argv]


def find_sandbox(user: str | None) -> Sandbox | str:
    """The sandbox this machine can make, or why it cannot. ``user``: whom lesson code runs as when Syringe
    is root. Tries one: bubblewrap may be installed where user namespaces are refused."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return "bubblewrap (bwrap) is not installed"
    account = None
    setpriv = shutil.which("setpriv") or ""
    if os.geteuid() == 0:
        if user is None:
            return "Syringe runs as root, but no unprivileged user is named to run lesson code as"
        try:
            account = Account.named(user)
        except KeyError:
            return f"there is no user {user} to run lesson code as"
        if not setpriv:
            return "setpriv (util-linux) is not installed"
    sandbox = Sandbox(bwrap, account, python_paths(), setpriv)
    with tempfile.TemporaryDirectory(prefix="syringe-probe-") as directory:
        workdir = Path(directory)
        sandbox.hand_over(workdir)
        try:
            done = subprocess.run(
                sandbox.command(["true"], workdir),
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=PROBE_TIMEOUT,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return f"a trial sandbox did not finish within {PROBE_TIMEOUT:.0f}s"
    if done.returncode != 0:
        said = (done.stderr.strip() or done.stdout.strip())[-300:]
        return f"bubblewrap cannot make a sandbox here (user namespaces refused?): {said}"
    return sandbox


@contextlib.asynccontextmanager
async def relays_to(reach: Mapping[str, Reach]) -> AsyncIterator[dict[int, Path]]:
    """Syringe's side of the bridge: a Unix socket per port of every endpoint (named by the port the job
    dials, in a directory of their own) relayed to that port on the endpoint's host. Yields {port: socket}."""
    targets = {port: where.host for where in reach.values() for port in where.ports.values()}
    # A short path (Unix socket paths are capped at 108 bytes), private to Syringe but for passing through:
    # anyone on this machine may dial those forwarded ports on 127.0.0.1 anyway.
    directory = Path(tempfile.mkdtemp(prefix="syringe-relay-"))
    servers: list[asyncio.Server] = []
    # Each connection's relay, held here: the server does not keep them, and one still running when the job
    # ends (a job that dialled an endpoint still booting) is stopped with the relays, not left to the GC.
    relays: set[asyncio.Task[None]] = set()
    try:
        await asyncio.to_thread(directory.chmod, 0o711)
        sockets = {}
        for port, host in targets.items():

            async def relay(
                reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str = host, port: int = port
            ) -> None:
                task = asyncio.current_task()
                assert task is not None
                relays.add(task)
                target_writer: asyncio.StreamWriter | None = None
                try:
                    target_reader, target_writer = await asyncio.open_connection(host, port)
                    await pump(reader, writer, target_reader, target_writer)
                except (OSError, asyncio.CancelledError):
                    # Stopped with the job's relays: end quietly. (asyncio's server would log a cancelled
                    # handler's CancelledError as an error.)
                    pass
                finally:
                    relays.discard(task)
                    for side in (writer, target_writer):
                        if side is not None:
                            side.close()

            path = directory / str(port)
            servers.append(await asyncio.start_unix_server(relay, path=str(path)))
            await asyncio.to_thread(path.chmod, 0o666)
            sockets[port] = path
        yield sockets
    finally:
        for server in servers:
            server.close()
        for task in list(relays):
            task.cancel()
        await asyncio.gather(*relays, return_exceptions=True)
        await asyncio.to_thread(shutil.rmtree, directory, True)
