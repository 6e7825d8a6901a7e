"""The SSH side of a browser terminal: an xterm PTY on the endpoint, bytes in and out, resizes."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

import asyncssh

from syringe.access.slots import Slots
from syringe.access.ssh import login, reason
from syringe.errors import LoginFailed, TerminalError


@dataclass
class TerminalSession:
    connection: asyncssh.SSHClientConnection
    process: asyncssh.SSHClientProcess[bytes]

    @classmethod
    async def open(
        cls,
        host: str,
        port: int,
        username: str,
        password: str,
        columns: int = 80,
        rows: int = 24,
        term: str = "xterm-256color",
        timeout: float = 10.0,
    ) -> TerminalSession:
        try:
            connection = await login(host, port, username, password, timeout)
        except LoginFailed as exc:
            raise TerminalError(f"ssh to {host}:{port}: {exc}") from exc
        try:
            process = await connection.create_process(term_type=term, term_size=(columns, rows), encoding=None)
        except (OSError, asyncssh.Error) as exc:
            connection.close()
            raise TerminalError(f"opening a shell: {reason(exc)}") from exc
        return cls(connection, process)

    async def send(self, data: bytes) -> None:
        """Type ``data``, then wait while the channel holds more input than its high-water mark (asyncssh's,
        64 KiB), that is, until the endpoint's SSH window has taken enough of it. TerminalError once the
        session is gone."""
        try:
            self.process.stdin.write(data)
            await self.process.stdin.drain()
        except (OSError, asyncssh.Error) as exc:
            raise TerminalError(f"the session ended: {reason(exc)}") from exc

    @property
    def backlog(self) -> int:
        """Input written but not yet sent: what the endpoint's SSH window has not let through."""
        return self.process.stdin.channel.get_write_buffer_size()

    def resize(self, columns: int, rows: int) -> None:
        self.process.change_terminal_size(columns, rows)

    async def read(self) -> bytes:
        """The next output (stdout and stderr share the PTY); b"" once the session has ended, also when the
        connection is lost (the endpoint's VM stopped under an open terminal: the live lesson was deleted)."""
        try:
            return await self.process.stdout.read(65536)
        except (OSError, asyncssh.Error):
            return b""

    async def exit_status(self, timeout: float = 2.0) -> int | None:
        """The shell's exit status; it can arrive just after the output ends."""
        with contextlib.suppress(TimeoutError, asyncssh.Error):
            await asyncio.wait_for(self.process.wait_closed(), timeout)
        return self.process.exit_status

    async def close(self) -> None:
        self.process.close()
        self.connection.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.connection.wait_closed(), 2)


class TerminalSlots(Slots):
    """At most ``limit`` terminals open at once per live lesson."""

    def __init__(self, limit: int) -> None:
        super().__init__(limit, "terminals open")
