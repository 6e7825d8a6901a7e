"""The browser terminal's pump: frames from a WebSocket-like browser to an SSH session and output back.

The browser side is anything with the three methods of ``Browser``; the exceptions by which it says that the
browser has gone are given with it (``gone``), and end a terminal quietly: that is a normal end, not an error.
Binary frames are keystrokes; a text frame ``{"type": "resize", "cols": C, "rows": R}`` resizes,
``{"type": "input", "data": "..."}`` types, and text that is not JSON is typed as it is."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Mapping
from typing import Any, Protocol

from syringe.access.probes import Target
from syringe.access.terminal import TerminalSession
from syringe.errors import TerminalError

# Close codes of the terminal's own ends (4000 + the HTTP status that would have been answered).
CLOSE_NORMAL = 1000
CLOSE_IDLE = 4408
CLOSE_UNREACHABLE = 4502


class Browser(Protocol):
    """What the bridge needs of a WebSocket; Starlette's fits as it is. ``receive`` returns the next ASGI
    WebSocket event as plain data: ``{"type": "websocket.receive", "bytes": b"..."}`` (or ``"text"``), or
    ``{"type": "websocket.disconnect"}``. Methods may raise the ``gone`` exceptions given to the bridge."""

    async def receive(self) -> Mapping[str, Any]: ...

    async def send_bytes(self, data: bytes) -> None: ...

    async def close(self, code: int, reason: str) -> None: ...


async def serve_terminal(
    browser: Browser,
    target: Target,
    columns: int,
    rows: int,
    idle_timeout: float,
    gone: tuple[type[BaseException], ...],
) -> None:
    """Open a shell on ``target`` and bridge it to ``browser`` until either side ends (a shell that cannot
    be opened closes the browser with 4502 and the reason)."""
    try:
        shell = await TerminalSession.open(target.host, target.port, target.username, target.password, columns, rows)
    except TerminalError as exc:
        with contextlib.suppress(*gone):
            await browser.close(CLOSE_UNREACHABLE, str(exc)[:120])
        return
    await bridge(browser, shell, idle_timeout, gone)


async def bridge(
    browser: Browser, shell: TerminalSession, idle_timeout: float, gone: tuple[type[BaseException], ...]
) -> None:
    """Two tasks copy each way; whichever side ends first ends the other. The browser is closed with 1000
    and the shell's exit status when the shell ends, with 4408 after ``idle_timeout`` s without input."""

    async def to_shell() -> str:
        while True:
            try:
                message = await asyncio.wait_for(browser.receive(), idle_timeout)
            except TimeoutError:
                return "idle"
            except gone:
                return "browser closed"
            if message["type"] == "websocket.disconnect":
                return "browser closed"
            if message.get("bytes") is not None:
                shell.write(message["bytes"])
            elif message.get("text") is not None:
                control(shell, message["text"])

    async def to_browser() -> str:
        while data := await shell.read():
            try:
                await browser.send_bytes(data)
            except gone:
                # The browser went away mid-frame; that is a normal end, not an error.
                return "browser closed"
        return "ended"

    tasks = {asyncio.create_task(to_shell()), asyncio.create_task(to_browser())}
    done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    outcome = next(iter(done)).result() if not next(iter(done)).cancelled() else "ended"
    status = await shell.exit_status() if outcome == "ended" else None
    await shell.close()
    with contextlib.suppress(*gone):
        if outcome == "idle":
            await browser.close(CLOSE_IDLE, "closed after inactivity")
        elif outcome == "ended":
            await browser.close(CLOSE_NORMAL, f"session ended (exit status {status})")


def control(shell: TerminalSession, text: str) -> None:
    """A text frame: a resize or input message in JSON, else text to type."""
    try:
        message = json.loads(text)
    except ValueError:
        shell.write(text.encode())
        return
    if isinstance(message, dict) and message.get("type") == "resize":
        columns, rows = message.get("cols"), message.get("rows")
        if isinstance(columns, int) and isinstance(rows, int) and 0 < columns <= 1000 and 0 < rows <= 500:
            shell.resize(columns, rows)
    elif isinstance(message, dict) and message.get("type") == "input" and isinstance(message.get("data"), str):
        shell.write(message["data"].encode())
