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
from dataclasses import dataclass
from typing import Any, Protocol

from syringe.access.probes import Target
from syringe.access.terminal import TerminalSession
from syringe.errors import TerminalError

# Close codes of the terminal's own ends (4000 + the HTTP status that would have been answered).
CLOSE_NORMAL = 1000
CLOSE_TOO_BIG = 1009  # RFC 6455: a message too big to process
CLOSE_IDLE = 4408
CLOSE_INPUT_FULL = 4413
CLOSE_UNREACHABLE = 4502


class Browser(Protocol):
    """What the bridge needs of a WebSocket; Starlette's fits as it is. ``receive`` returns the next ASGI
    WebSocket event as plain data: ``{"type": "websocket.receive", "bytes": b"..."}`` (or ``"text"``), or
    ``{"type": "websocket.disconnect"}``. Methods may raise the ``gone`` exceptions given to the bridge."""

    async def receive(self) -> Mapping[str, Any]: ...

    async def send_bytes(self, data: bytes) -> None: ...

    async def close(self, code: int, reason: str) -> None: ...


@dataclass(frozen=True)
class TerminalLimits:
    idle_timeout: float  # seconds without input before the terminal closes (4408)
    max_frame: int  # bytes in one WebSocket message (1009 beyond)
    max_input: int  # input bytes held for an endpoint that is not taking them (4413 beyond)


async def serve_terminal(
    browser: Browser,
    target: Target,
    columns: int,
    rows: int,
    limits: TerminalLimits,
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
    await bridge(browser, shell, limits, gone)


async def bridge(
    browser: Browser, shell: TerminalSession, limits: TerminalLimits, gone: tuple[type[BaseException], ...]
) -> None:
    """Three tasks: the browser's messages into a queue, the queue into the shell (at the pace the endpoint's
    SSH window allows), the shell's output to the browser. Whichever ends first ends the others.

    The browser is always listened to, so a close or a resize is seen at once even while the endpoint takes
    no input; the input that waits meanwhile is capped. The browser is closed with 1000 and the shell's exit
    status when the shell ends, 4408 after ``idle_timeout`` s without input, 1009 for a message over
    ``max_frame`` bytes, and 4413 once more than ``max_input`` bytes wait for an endpoint that does not read."""
    waiting: asyncio.Queue[bytes] = asyncio.Queue()
    queued = 0  # bytes in ``waiting``; with the channel's own backlog, the input Syringe holds

    async def from_browser() -> str:
        nonlocal queued
        while True:
            try:
                message = await asyncio.wait_for(browser.receive(), limits.idle_timeout)
            except TimeoutError:
                return "idle"
            except gone:
                return "browser closed"
            if message["type"] == "websocket.disconnect":
                return "browser closed"
            frame, text = message.get("bytes"), message.get("text")
            size = len(frame) if frame is not None else len(text.encode()) if text is not None else 0
            if size > limits.max_frame:
                return "too big"
            data = frame if frame is not None else control(shell, text) if text is not None else b""
            if not data:
                continue
            if queued + shell.backlog + len(data) > limits.max_input:
                return "input full"
            queued += len(data)
            waiting.put_nowait(data)

    async def to_shell() -> str:
        nonlocal queued
        while True:
            data = await waiting.get()
            queued -= len(data)
            try:
                await shell.send(data)
            except TerminalError:
                return "ended"

    async def to_browser() -> str:
        while data := await shell.read():
            try:
                await browser.send_bytes(data)
            except gone:
                # The browser went away mid-frame; that is a normal end, not an error.
                return "browser closed"
        return "ended"

    tasks = {asyncio.create_task(from_browser()), asyncio.create_task(to_shell()), asyncio.create_task(to_browser())}
    try:
        done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        first = next(iter(done))
        outcome = first.result() if not first.cancelled() else "ended"
        status = await shell.exit_status() if outcome == "ended" else None
    finally:
        # However the bridge ends (an error in a pump, or the handler cancelled), no pump outlives it and
        # the SSH session to the endpoint is closed.
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await shell.close()
    closes = {
        "idle": (CLOSE_IDLE, "closed after inactivity"),
        "ended": (CLOSE_NORMAL, f"session ended (exit status {status})"),
        "too big": (CLOSE_TOO_BIG, f"a message is larger than {limits.max_frame} bytes"),
        "input full": (CLOSE_INPUT_FULL, f"the endpoint is not reading its input: over {limits.max_input} bytes wait"),
    }
    if outcome in closes:
        with contextlib.suppress(*gone):
            await browser.close(*closes[outcome])


def control(shell: TerminalSession, text: str) -> bytes:
    """A text frame: a resize (done at once) or input message in JSON, else text to type. Returns the bytes to
    type (none for a resize)."""
    try:
        message = json.loads(text)
    except ValueError:
        return text.encode()
    if isinstance(message, dict) and message.get("type") == "resize":
        columns, rows = message.get("cols"), message.get("rows")
        if isinstance(columns, int) and isinstance(rows, int) and 0 < columns <= 1000 and 0 < rows <= 500:
            shell.resize(columns, rows)
    elif isinstance(message, dict) and message.get("type") == "input" and isinstance(message.get("data"), str):
        return str(message["data"]).encode()
    return b""
