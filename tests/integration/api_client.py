"""Talking to the Syringe API in tests: over httpx (in-process or to uvicorn), and following its SSE."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from starlette.types import ASGIApp

Until = Callable[[dict[str, Any]], bool]


def parse_sse(buffer: str) -> tuple[list[tuple[str, dict[str, Any]]], str]:
    """Complete events in ``buffer`` as (event, data), and what is left over."""
    events = []
    while "\n\n" in buffer:
        block, buffer = buffer.split("\n\n", 1)
        fields: dict[str, str] = {}
        for line in block.splitlines():
            if line.startswith(":"):
                continue
            name, _, value = line.partition(":")
            fields[name] = value.strip()
        if "data" in fields:
            events.append((fields.get("event", "message"), json.loads(fields["data"])))
    return events, buffer


async def follow_over_http(client: httpx.AsyncClient, path: str, headers: dict[str, str], until: Until) -> list[Any]:
    """Read a real SSE stream until an event satisfies ``until``; returns every event seen."""
    seen: list[Any] = []
    buffer = ""
    async with client.stream("GET", path, headers=headers, timeout=90) as response:
        assert response.status_code == 200, await response.aread()
        assert response.headers["content-type"].startswith("text/event-stream")
        async for chunk in response.aiter_text():
            events, buffer = parse_sse(buffer + chunk)
            for event in events:
                seen.append(event)
                if until(event[1]) or event[0] == "deleted":
                    return seen
    return seen


def get_scope(path: str, headers: dict[str, str]) -> dict[str, Any]:
    """The ASGI scope of a GET from 127.0.0.1, for driving an app in process."""
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 1),
        "server": ("test", 80),
    }


async def follow_in_process(app: ASGIApp, path: str, headers: dict[str, str], until: Until) -> list[Any]:
    """The same, driving the ASGI app directly: httpx's ASGI transport waits for a response to end."""
    seen: list[Any] = []
    done = asyncio.Event()
    buffer = ""
    status: list[int] = []

    async def receive() -> dict[str, Any]:
        await done.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal buffer
        if message["type"] == "http.response.start":
            status.append(message["status"])
        elif message["type"] == "http.response.body":
            events, buffer = parse_sse(buffer + message.get("body", b"").decode())
            for event in events:
                seen.append(event)
                if until(event[1]) or event[0] == "deleted":
                    done.set()

    scope = get_scope(path, headers)
    task = asyncio.create_task(app(scope, receive, send))  # type: ignore[arg-type]
    try:
        await asyncio.wait_for(done.wait(), 90)
    finally:
        done.set()
        await asyncio.wait_for(task, 10)
    assert status == [200]
    return seen


Follow = Callable[[str, dict[str, str], Until], Awaitable[list[Any]]]
