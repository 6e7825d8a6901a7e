"""Debian's own OpenSSH server, for tests that must run against it rather than asyncssh.

Its binary is unpacked from the Debian packages into a cache (nothing is installed, no service starts).
sshd needs two accounts on the machine: ``sshd`` for privilege separation and a learner to log in as.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

CACHE = Path(os.environ.get("SYRINGE_OPENSSH_CACHE", "/var/cache/syringe-openssh"))
LEARNER = "syringe-learner"
LEARNER_PASSWORD = "syringe-learner-password"


def _account(name: str, *args: str) -> None:
    try:
        pwd.getpwnam(name)
    except KeyError:
        subprocess.run(["useradd", *args, name], check=True, capture_output=True)


def ensure_openssh() -> Path:
    """The unpacked sshd (downloaded once), with the accounts it needs. Returns the sshd path."""
    sshd = CACHE / "root/usr/sbin/sshd"
    if not sshd.exists():
        download = CACHE / "debs"
        download.mkdir(parents=True, exist_ok=True)
        fetched = subprocess.run(
            ["apt-get", "download", "openssh-server", "libwrap0"], cwd=download, capture_output=True, text=True
        )
        if fetched.returncode != 0:
            subprocess.run(["apt-get", "update", "-qq"], check=True, capture_output=True)
            subprocess.run(
                ["apt-get", "download", "openssh-server", "libwrap0"], cwd=download, check=True, capture_output=True
            )
        for deb in download.glob("*.deb"):
            subprocess.run(["dpkg", "-x", str(deb), str(CACHE / "root")], check=True)
    _account("sshd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "--home-dir", "/run/sshd")
    _account(LEARNER, "--create-home", "--shell", "/bin/bash")
    subprocess.run(["chpasswd"], input=f"{LEARNER}:{LEARNER_PASSWORD}\n", text=True, check=True)
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    return sshd


def die_with_parent() -> None:
    """In the child: end when the process that started sshd ends, however it ends."""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


@dataclass
class OpenSSHServer:
    address: str
    port: int = 22
    directory: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="syringe-sshd-")))
    process: asyncio.subprocess.Process | None = None

    def _prepare(self) -> tuple[Path, Path]:
        sshd = ensure_openssh()
        key = self.directory / "host_ed25519"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
        config = self.directory / "sshd_config"
        config.write_text(
            f"ListenAddress {self.address}:{self.port}\nHostKey {key}\nPidFile {self.directory}/sshd.pid\n"
            "PasswordAuthentication yes\nKbdInteractiveAuthentication no\nUsePAM no\nPermitRootLogin no\n"
            f"AllowUsers {LEARNER}\nStrictModes no\nPrintMotd no\nPrintLastLog no\n"
        )
        return sshd, config

    async def start(self) -> None:
        sshd, config = await asyncio.to_thread(self._prepare)
        self.process = await asyncio.create_subprocess_exec(
            str(sshd),
            "-D",
            "-e",
            "-f",
            str(config),
            env={"LD_LIBRARY_PATH": str(CACHE / "root/usr/lib/x86_64-linux-gnu"), "PATH": os.environ["PATH"]},
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        for _ in range(100):
            try:
                _, writer = await asyncio.open_connection(self.address, self.port)
                writer.close()
                return
            except OSError:
                if self.process.returncode is not None:
                    raise RuntimeError((await self.process.stderr.read()).decode()) from None  # type: ignore[union-attr]
                await asyncio.sleep(0.05)
        raise RuntimeError(f"sshd did not listen on {self.address}:{self.port}")

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.terminate()
            await self.process.wait()
        shutil.rmtree(self.directory, ignore_errors=True)
