"""Real protocol servers for one stand-in pod, bound to the pod's own loopback address."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import signal
import struct
import termios
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncssh
from aiohttp import web

from tests.standin.hostile import add_hostile_routes
from tests.standin.netconf import Datastores, NetconfSession
from tests.standin.openssh import OpenSSHServer, die_with_parent

SHELL = "/bin/bash" if os.path.exists("/bin/bash") else "/bin/sh"
STANDIN_BIN = str(Path(__file__).parent / "bin")  # the CLIs lesson images carry (vtysh)


class _Auth(asyncssh.SSHServer):
    """Password auth with the credentials the pod was given (any password when none were)."""

    def __init__(self, credentials: dict[str, str]) -> None:
        self.credentials = credentials

    def begin_auth(self, username: str) -> bool:
        return True

    def password_auth_supported(self) -> bool:
        return True

    def validate_password(self, username: str, password: str) -> bool:
        if not self.credentials:
            return bool(password)
        return self.credentials.get(username) == password


def _set_window(fd: int, columns: int, rows: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))


def _take_terminal() -> None:
    """In the child, after setsid: make the PTY the controlling terminal, so the shell has job control."""
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


async def _shell(process: asyncssh.SSHServerProcess[bytes], hostname: str, enter: list[str]) -> None:
    env = {
        "PATH": f"{STANDIN_BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        "HOSTNAME": hostname,
        "HOME": "/tmp",
        "PS1": f"{hostname}$ ",
        "TERM": process.get_terminal_type() or "dumb",
    }
    if process.get_terminal_type() is None:
        command = enter + ([SHELL, "-c", process.command] if process.command else [SHELL, "--norc", "-i"])
        proc = await asyncio.create_subprocess_exec(
            *command,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
            cwd="/tmp",
        )
        await _pipe_until_exit(process, proc)
        return
    await _pty_shell(process, env, enter)


async def _pipe_until_exit(process: asyncssh.SSHServerProcess[bytes], proc: asyncio.subprocess.Process) -> None:
    """Copy the session's input to the command and all its output back, then report its exit status
    (asyncssh's redirect can report the exit before the last output is through)."""
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None

    async def copy(source: asyncio.StreamReader, sink: asyncssh.SSHWriter[bytes]) -> None:
        while data := await source.read(65536):
            sink.write(data)

    async def feed() -> None:
        with contextlib.suppress(asyncssh.Error, ConnectionError):
            while data := await process.stdin.read(65536):
                proc.stdin.write(data)  # type: ignore[union-attr]
        proc.stdin.close()  # type: ignore[union-attr]

    feeding = asyncio.create_task(feed())
    await asyncio.gather(copy(proc.stdout, process.stdout), copy(proc.stderr, process.stderr))
    code = await proc.wait()
    feeding.cancel()
    process.exit(code)


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _hang_up(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGHUP)


async def _pty_shell(process: asyncssh.SSHServerProcess[bytes], env: dict[str, str], enter: list[str]) -> None:
    """A shell on a real PTY: what a login gives, with window-size changes passed on."""
    columns, rows, _, _ = process.get_terminal_size()
    master, slave = os.openpty()
    _set_window(slave, columns or 80, rows or 24)
    command = enter + ([SHELL, "-c", process.command] if process.command else [SHELL, "--norc", "-i"])
    proc = await asyncio.create_subprocess_exec(
        *command,
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env,
        cwd="/tmp",
        start_new_session=True,
        preexec_fn=_take_terminal,
    )
    os.close(slave)
    loop = asyncio.get_running_loop()
    output_done = loop.create_future()

    def readable() -> None:
        try:
            data = os.read(master, 65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if data:
            process.stdout.write(data)
        else:
            loop.remove_reader(master)
            if not output_done.done():
                output_done.set_result(None)

    os.set_blocking(master, False)
    loop.add_reader(master, readable)

    async def write_all(data: bytes) -> None:
        """Into the PTY as the shell takes it. A shell that does not read (sleep, a busy program) fills the
        PTY's buffer; then this waits, and stops reading the session, as sshd does, so the client's SSH
        window closes. A blocking write here would stop every pod of the stand-in."""
        view = memoryview(data)
        while view:
            try:
                view = view[os.write(master, view) :]
            except BlockingIOError:
                writable: asyncio.Future[None] = loop.create_future()
                loop.add_writer(master, _settle, writable)
                try:
                    await writable
                finally:
                    loop.remove_writer(master)

    async def pump_input() -> None:
        while True:
            try:
                data = await process.stdin.read(65536)
            except asyncssh.TerminalSizeChanged as change:
                _set_window(master, change.width, change.height)
                continue
            if not data:
                return
            await write_all(data)

    pumping = asyncio.create_task(pump_input())
    # The client hanging up ends the session, like sshd sending SIGHUP to the login shell.
    pumping.add_done_callback(lambda _: _hang_up(proc.pid))
    try:
        await output_done
        code = await proc.wait()
    finally:
        pumping.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await pumping  # it may be waiting on the PTY: done with it before the PTY closes
        loop.remove_reader(master)
        os.close(master)
        if proc.returncode is None:
            proc.kill()
    process.exit(code)


def _http_app(hostname: str, port: int) -> web.Application:
    devices: list[Any] = []
    app = web.Application(client_max_size=64 * 1024 * 1024)

    async def index(_: web.Request) -> web.Response:
        return web.Response(text=f"<html><body><h1>{hostname}:{port}</h1></body></html>", content_type="text/html")

    async def get_devices(_: web.Request) -> web.Response:
        return web.json_response(devices)

    async def put_devices(request: web.Request) -> web.Response:
        devices[:] = await request.json()
        return web.json_response(devices)

    async def health(_: web.Request) -> web.Response:
        return web.json_response({"host": hostname, "port": port})

    async def redirect(request: web.Request) -> web.Response:
        raise web.HTTPFound(request.query.get("to", "/"))

    async def echo(request: web.Request) -> web.Response:
        size = 0
        async for chunk in request.content.iter_chunked(65536):
            size += len(chunk)
        return web.json_response({"bytes": size}, headers={"X-Received-Bytes": str(size)})

    async def stream(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        for _ in range(int(request.query.get("megabytes", "1")) * 16):
            await response.write(b"x" * 65536)
        await response.write_eof()
        return response

    async def login(_: web.Request) -> web.Response:
        response = web.json_response({"ok": True})
        response.headers["Set-Cookie"] = "session=abc; HttpOnly; Path=/app"
        return response

    async def whoami(request: web.Request) -> web.Response:
        return web.json_response(
            {"session": request.cookies.get("session"), "authorization": request.headers.get("Authorization")}
        )

    app.router.add_get("/", index)
    app.router.add_get("/redirect", redirect)
    app.router.add_post("/api/echo", echo)
    app.router.add_get("/api/stream", stream)
    app.router.add_get("/api/login", login)
    app.router.add_get("/api/whoami", whoami)
    app.router.add_get("/healthz", health)
    app.router.add_get("/api/devices", get_devices)
    app.router.add_put("/api/devices", put_devices)
    add_hostile_routes(app)
    return app


@dataclass
class PodNamespace:
    """A pod's own UTS and network namespaces, held open by a sleeping process: its shells see the pod's
    hostname and the data interfaces Multus would have given it: veth links, with the addresses the network
    selection's ``ips`` name, as static IPAM gives them."""

    hostname: str
    interfaces: list[str]
    addresses: dict[str, list[str]] = field(default_factory=dict)
    holder: asyncio.subprocess.Process | None = None
    _starting: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def entered(self) -> list[str]:
        """The command prefix that enters the namespaces, made on first use: a pod nobody logs into costs
        nothing, so pods still start at once."""
        async with self._starting:
            if self.holder is None:
                await self.start()
        return self.enter

    @property
    def enter(self) -> list[str]:
        assert self.holder is not None
        return ["nsenter", "-t", str(self.holder.pid), "-u", "-n", "--"]

    async def start(self) -> None:
        self.holder = await asyncio.create_subprocess_exec(
            "unshare", "--uts", "--net", "sleep", "infinity", preexec_fn=die_with_parent
        )
        setup = [f"hostname {self.hostname}", "ip link set lo up"]
        for index, name in enumerate(self.interfaces):
            setup += [f"ip link add {name} type veth peer name peer{index}", f"ip link set {name} up"]
            setup += [f"ip addr add {address} dev {name}" for address in self.addresses.get(name, [])]
        for _ in range(50):  # until unshare has made the namespaces and exec'd sleep
            if os.readlink(f"/proc/{self.holder.pid}/ns/net") != os.readlink("/proc/self/ns/net"):
                break
            await asyncio.sleep(0.01)
        done = await asyncio.create_subprocess_exec(*self.enter, SHELL, "-ec", "; ".join(setup))
        if await done.wait() != 0:
            raise OSError(f"setting up the pod's namespaces failed: {setup}")

    async def stop(self) -> None:
        if self.holder is not None and self.holder.returncode is None:
            self.holder.kill()
            await self.holder.wait()


@dataclass
class PodServers:
    """Everything one pod listens on. Port kinds come from the container port names (ssh-22, http-8080)."""

    address: str
    hostname: str
    ports: list[tuple[str, int]]
    host_key: asyncssh.SSHKey
    credentials: dict[str, str] = field(default_factory=dict)
    store: Datastores = field(default_factory=Datastores)
    netconf_capabilities: list[str] | None = None  # None: base 1.0 and 1.1, candidate
    mute: bool = False  # accept connections and never answer: a hung endpoint
    openssh: bool = False  # serve ssh-* ports with Debian's sshd instead of asyncssh
    namespace: PodNamespace | None = None  # the pod's own hostname and interfaces, for its shells
    _closers: list[Any] = field(default_factory=list)

    async def start(self) -> None:
        if self.namespace is not None:
            self._closers.append(self.namespace.stop)
        for name, port in self.ports:
            kind = "mute" if self.mute else name.split("-", 1)[0]
            if kind == "mute":
                server = await asyncio.start_server(self._silent, self.address, port)
                self._closers.append(self._closer(server))
                continue
            if kind == "ssh" and self.openssh:
                sshd = OpenSSHServer(self.address, port)
                await sshd.start()
                self._closers.append(sshd.stop)
            elif kind == "ssh":
                await self._ssh(port, netconf=False)
            elif kind == "netconf":
                await self._ssh(port, netconf=True)
            elif kind == "http":
                runner = web.AppRunner(_http_app(self.hostname, port), access_log=None)
                await runner.setup()
                await web.TCPSite(runner, self.address, port).start()
                self._closers.append(runner.cleanup)
            else:
                server = await asyncio.start_server(self._tcp, self.address, port)
                self._closers.append(self._closer(server))

    @staticmethod
    def _closer(server: asyncio.AbstractServer | asyncssh.SSHAcceptor) -> Any:
        async def close() -> None:
            server.close()

        return close

    @staticmethod
    async def _silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # say nothing until the client gives up
        writer.close()

    async def _tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(json.dumps({"host": self.hostname}).encode() + b"\n")
        await writer.drain()
        writer.close()

    async def _ssh(self, port: int, netconf: bool) -> None:
        store, hostname, namespace = self.store, self.hostname, self.namespace

        async def handle(process: asyncssh.SSHServerProcess[Any]) -> None:
            if process.subsystem == "netconf":
                await NetconfSession(process, store, capabilities=self.netconf_capabilities).run()
            elif netconf:
                process.stderr.write("this port serves the netconf subsystem only\n")
                process.exit(1)
            else:
                await _shell(process, hostname, await namespace.entered() if namespace is not None else [])

        server = await asyncssh.listen(
            self.address,
            port,
            server_host_keys=[self.host_key],
            server_factory=lambda: _Auth(self.credentials),
            process_factory=handle,
            encoding=None,
            line_editor=False,
        )
        self._closers.append(self._closer(server))

    async def stop(self) -> None:
        for close in self._closers:
            with contextlib.suppress(Exception):  # best effort at teardown
                await close()
        self._closers.clear()
