"""A configurator's wait for its endpoint: overlapping attempts, the first answer wins."""

from __future__ import annotations

import asyncio

import pytest

from syringe.configure import target
from syringe.configure.target import first_answer
from syringe.errors import ProbeFailed


async def test_a_stuck_attempt_does_not_hold_the_answer_back(monkeypatch: pytest.MonkeyPatch) -> None:
    """The first attempt hangs (a SYN held by QEMU's user networking); the server answers the third."""
    monkeypatch.setattr(target, "ATTEMPT_INTERVAL", 0.01)
    started: list[float] = []
    cancelled: list[int] = []

    async def attempt(timeout: float) -> None:
        started.append(timeout)
        number = len(started)
        if number == 1:
            try:
                await asyncio.sleep(timeout)
            except asyncio.CancelledError:
                cancelled.append(number)
                raise
            raise ProbeFailed("timed out")
        if number == 2:
            raise ProbeFailed("closed before the server's version string", refused=True)

    await asyncio.wait_for(first_answer(attempt, 30), 5)
    assert len(started) == 3 and started[0] == target.ATTEMPT_TIMEOUT
    assert cancelled == [1]


async def test_every_attempt_failing_raises_the_last_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(target, "ATTEMPT_INTERVAL", 0.01)
    count = 0

    async def attempt(timeout: float) -> None:
        nonlocal count
        count += 1
        raise ProbeFailed(f"refused {count}", refused=True)

    with pytest.raises(ProbeFailed, match="refused"):
        await first_answer(attempt, 0.2)
    assert count > 3


async def test_at_most_max_pending_attempts_wait_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(target, "ATTEMPT_INTERVAL", 0.001)
    waiting = 0
    most = 0

    async def attempt(timeout: float) -> None:
        nonlocal waiting, most
        waiting += 1
        most = max(most, waiting)
        try:
            await asyncio.sleep(timeout)
        finally:
            waiting -= 1
        raise ProbeFailed("timed out")

    with pytest.raises(ProbeFailed):
        await first_answer(attempt, 0.3)
    assert most == target.MAX_PENDING and waiting == 0
