"""The terminal bridge's limits on what a browser sends (with the HTTP proxy's, the hostile-input caps of endpoint
access): frames over the cap, input an endpoint does not take, and the browser heard all the while."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping
from typing import Any, cast

from syringe.access.terminal import TerminalSession
from syringe.access.terminal_bridge import CLOSE_INPUT_FULL, CLOSE_TOO_BIG, TerminalLimits, bridge

LIMITS = TerminalLimits(idle_timeout=3600, max_frame=64 * 1024, max_input=1024 * 1024)


class Gone(Exception):
    pass


class Browser:
    """Sends its messages, then waits; remembers how it was closed."""

    def __init__(self, messages: list[Mapping[str, Any]]) -> None:
        self.messages = list(messages)
        self.received = 0
        self.closed: tuple[int, str] | None = None
        self.more = asyncio.Event()

    async def receive(self) -> Mapping[str, Any]:
        while not self.messages:
            self.more.clear()
            await self.more.wait()
        self.received += 1
        return self.messages.pop(0)

    async def send_bytes(self, data: bytes) -> None:
        pass

    async def close(self, code: int, reason: str) -> None:
        self.closed = (code, reason)


class StalledShell:
    """An endpoint that takes no input: like asyncssh's channel past its high-water mark, ``send`` keeps
    the bytes and never returns once 64 KiB wait. It prints nothing and never ends."""

    def __init__(self) -> None:
        self.backlog = 0
        self.typed = b""
        self.sizes: list[tuple[int, int]] = []
        self.closed = False
        self.changed = asyncio.Event()

    async def until(self, done: Callable[[], bool]) -> None:
        async with asyncio.timeout(10):  # a regression fails the test instead of hanging it
            while not done():
                self.changed.clear()
                await self.changed.wait()

    async def send(self, data: bytes) -> None:
        self.backlog += len(data)
        self.typed += data
        self.changed.set()
        if self.backlog > 64 * 1024:
            await asyncio.Event().wait()

    def resize(self, columns: int, rows: int) -> None:
        self.sizes.append((columns, rows))
        self.changed.set()

    async def read(self) -> bytes:
        await asyncio.Event().wait()
        return b""

    async def exit_status(self, timeout: float = 2.0) -> int | None:
        return None

    async def close(self) -> None:
        self.closed = True


def _frame(size: int) -> Mapping[str, Any]:
    return {"type": "websocket.receive", "bytes": b"x" * size}


async def _bridge(browser: Browser, shell: StalledShell, limits: TerminalLimits = LIMITS) -> None:
    await asyncio.wait_for(bridge(browser, cast(TerminalSession, shell), limits, (Gone,)), 30)


async def test_a_message_over_the_frame_cap_closes_the_terminal_with_1009() -> None:
    browser, shell = Browser([_frame(10), _frame(8 * 1024 * 1024)]), StalledShell()
    await _bridge(browser, shell)
    assert browser.closed == (CLOSE_TOO_BIG, "a message is larger than 65536 bytes")
    text = {"type": "websocket.receive", "text": json.dumps({"type": "input", "data": "é" * 40000})}
    browser, shell = Browser([text]), StalledShell()  # text counts in UTF-8 bytes: 80000
    await _bridge(browser, shell)
    assert browser.closed is not None and browser.closed[0] == CLOSE_TOO_BIG
    assert shell.closed


async def test_input_an_endpoint_does_not_take_is_capped_and_then_the_terminal_closes() -> None:
    frames = 1000  # 64 MiB offered
    browser, shell = Browser([_frame(64 * 1024) for _ in range(frames)]), StalledShell()
    await _bridge(browser, shell)
    assert browser.closed == (CLOSE_INPUT_FULL, "the endpoint is not reading its input: over 1048576 bytes wait")
    assert browser.received <= LIMITS.max_input // (64 * 1024) + 2  # it stopped reading at the cap
    assert shell.closed


async def test_the_browser_is_heard_while_input_waits() -> None:
    resize = {"type": "websocket.receive", "text": json.dumps({"type": "resize", "cols": 132, "rows": 50})}
    browser, shell = Browser([_frame(64 * 1024), _frame(64 * 1024), resize]), StalledShell()
    running = asyncio.create_task(_bridge(browser, shell))
    await shell.until(lambda: bool(shell.sizes))
    assert shell.sizes == [(132, 50)]  # at once, although the endpoint took none of the input before it
    browser.messages.append({"type": "websocket.disconnect"})
    browser.more.set()
    await running
    assert browser.closed is None and shell.closed  # the browser left: nothing to tell it


async def test_typed_text_and_bytes_reach_the_shell_in_order() -> None:
    messages: list[Mapping[str, Any]] = [
        {"type": "websocket.receive", "bytes": b"ls"},
        {"type": "websocket.receive", "text": json.dumps({"type": "input", "data": " -l"})},
        {"type": "websocket.receive", "text": "\n"},
    ]
    browser, shell = Browser(messages), StalledShell()
    running = asyncio.create_task(_bridge(browser, shell))
    await shell.until(lambda: shell.typed == b"ls -l\n")
    assert shell.typed == b"ls -l\n"
    browser.messages.append({"type": "websocket.disconnect"})
    browser.more.set()
    await running
