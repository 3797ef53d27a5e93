"""How progress reaches a person: the views behind :class:`~reconciler.apply.ApplyHooks`,
and the counter of threads a plan has read.

Three views of apply's events: plain lines (CI logs, pipes: every event is one line that
stays readable in a log), at a terminal a live table with one row per address that rich
redraws in place as runs move through their statuses, and with ``--quiet`` only what failed.
:class:`ThreadCounter` redraws ``read 1,234 of 5,000 threads`` in place while a plan reads.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, TextIO

from reconciler.apply import ActionResult, Outcome, WaitResult
from reconciler.changes import Action, Change

if TYPE_CHECKING:  # rich is imported by the live table, the one view that draws with it
    from rich.console import Console, RenderableType
    from rich.text import Text

_VERBS = {
    Action.CREATE: "creating",
    Action.MODIFY: "modifying",
    Action.REPLACE: "replacing",
    Action.CANCEL: "cancelling",
    Action.SUBMIT_TOOL_OUTPUTS: "answering tool calls",
}


def _started(change: Change) -> str:
    return f"{_VERBS.get(change.action, change.action.value)}…"


def _finished(result: ActionResult) -> str:
    word = "done" if result.outcome is Outcome.APPLIED else result.outcome.value
    return f"{result.change.action.value} {word}: {result.message}"


def _run_end(result: WaitResult) -> str:
    detail = f" ({result.message})" if result.message else ""
    return f"run {result.run_id} {result.status}{detail}"


class PlainProgress:
    """One line per event, ``address: what happened``."""

    def __init__(self, echo: Callable[[str], None], *, color: bool = False) -> None:
        self._echo = echo
        self._color = color

    def _paint(self, text: str, code: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if self._color else text

    def __enter__(self) -> PlainProgress:
        return self

    def __exit__(self, *exc_info: object) -> None:
        return None

    def action_started(self, change: Change) -> None:
        self._echo(f"{change.address}: {_started(change)}")

    def action_finished(self, result: ActionResult) -> None:
        code = "32" if result.outcome is Outcome.APPLIED else "31"
        self._echo(f"{result.change.address}: {self._paint(_finished(result), code)}")

    def progress(self, address: str, message: str) -> None:
        self._echo(f"{address}: {message}")

    def run_finished(self, result: WaitResult) -> None:
        code = "32" if result.succeeded else "31"
        self._echo(f"{result.address}: {self._paint(_run_end(result), code)}")


class QuietProgress(PlainProgress):
    """``--quiet``: only the errors, the actions that failed or whose outcome is unknown and the
    followed runs that did not succeed; the report's last line says the rest."""

    def action_started(self, change: Change) -> None:
        return None

    def action_finished(self, result: ActionResult) -> None:
        if result.outcome in (Outcome.FAILED, Outcome.UNKNOWN):
            super().action_finished(result)

    def progress(self, address: str, message: str) -> None:
        return None

    def run_finished(self, result: WaitResult) -> None:
        if not result.succeeded:
            super().run_finished(result)


class ThreadCounter:
    """``read 1,234 of 5,000 threads``, redrawn in place on a terminal (at most every
    ``interval`` seconds, and at the last thread), then wiped so what follows starts clean.

    Call it with ``(read, total)``; it is a context manager so the line is wiped however the
    reading ends. Only for a stream that is a terminal: the caller decides (a log must not
    fill with carriage returns).
    """

    def __init__(self, stream: TextIO, *, interval: float = 0.1,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._stream = stream
        self._interval = interval
        self._clock = clock
        self._drawn_at: float | None = None

    def __enter__(self) -> ThreadCounter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._drawn_at is not None:
            self._stream.write("\r\x1b[2K")
            self._stream.flush()

    def __call__(self, read: int, total: int) -> None:
        now = self._clock()
        recent = self._drawn_at is not None and now - self._drawn_at < self._interval
        if total == 0 or (recent and read < total):
            return
        self._drawn_at = now
        noun = "thread" if total == 1 else "threads"
        self._stream.write(f"\r\x1b[2Kread {read:,} of {total:,} {noun}")
        self._stream.flush()


class LiveProgress:
    """At a terminal: a row per address, redrawn in place; what it last said stays on screen."""

    def __init__(self, console: Console) -> None:
        from rich.live import Live

        self._rows: dict[str, Text] = {}
        self._live = Live(console=console, refresh_per_second=8, get_renderable=self._render)

    def __enter__(self) -> LiveProgress:
        self._live.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._live.stop()

    def _render(self) -> RenderableType:
        from rich.table import Table

        table = Table.grid(padding=(0, 2))
        table.add_column(no_wrap=True)
        table.add_column()
        for address, state in self._rows.items():
            table.add_row(address, state)
        return table

    def _set(self, address: str, text: str, style: str) -> None:
        from rich.text import Text

        self._rows[address] = Text(text, style=style)
        self._live.refresh()

    def action_started(self, change: Change) -> None:
        self._set(change.address, _started(change), "yellow")

    def action_finished(self, result: ActionResult) -> None:
        style = "green" if result.outcome is Outcome.APPLIED else "bold red"
        self._set(result.change.address, _finished(result), style)

    def progress(self, address: str, message: str) -> None:
        self._set(address, message, "yellow")

    def run_finished(self, result: WaitResult) -> None:
        self._set(result.address, _run_end(result), "green" if result.succeeded else "bold red")
