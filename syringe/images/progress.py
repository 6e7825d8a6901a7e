"""Progress of long image work (prepare, wrap): a list of named steps, shown as it goes by rich on a
terminal, or as JSON lines for CI (`--json`)."""

from __future__ import annotations

import json
import re
import sys
import time
from typing import IO, Any, Protocol

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\r")
TAIL_LINES = 15  # of a console's or a tool's output, in an error


def tail(text: str) -> str:
    """The last lines of what a console or tool printed, without terminal escapes or blank lines."""
    lines = [ANSI.sub("", line) for line in text.splitlines() if line.strip()]
    return "\n".join(lines[-TAIL_LINES:])


class Reporter(Protocol):
    def start(self, step: str) -> None: ...

    def finish(self, step: str, seconds: float, detail: str = "") -> None: ...


class Quiet:
    def start(self, step: str) -> None:
        pass

    def finish(self, step: str, seconds: float, detail: str = "") -> None:
        pass


class JsonLines:
    """One JSON object per event on ``out``: {"event": "start"|"finish", "step", "seconds", "detail", "time"}."""

    def __init__(self, out: IO[str] | None = None) -> None:
        self.out = out or sys.stdout

    def emit(self, **fields: Any) -> None:
        print(json.dumps({**fields, "time": round(time.time(), 3)}), file=self.out, flush=True)

    def start(self, step: str) -> None:
        self.emit(event="start", step=step)

    def finish(self, step: str, seconds: float, detail: str = "") -> None:
        self.emit(event="finish", step=step, seconds=round(seconds, 2), detail=detail)


class StepList:
    """rich's status spinner on the running step, and a line with its time for each finished one."""

    def __init__(self) -> None:
        from rich.console import Console

        self.console = Console(stderr=True, highlight=False)
        self.status: Any = None

    def start(self, step: str) -> None:
        self.status = self.console.status(f"{step} ...")
        self.status.start()

    def finish(self, step: str, seconds: float, detail: str = "") -> None:
        if self.status is not None:
            self.status.stop()
            self.status = None
        more = f"  [dim]{detail}[/dim]" if detail else ""
        self.console.print(f"[green]✓[/green] {step} [dim]({seconds:.1f}s)[/dim]{more}")

    def failed(self) -> None:
        if self.status is not None:
            self.status.stop()
            self.status = None
