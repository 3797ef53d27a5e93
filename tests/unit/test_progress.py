"""The two views of apply's progress: plain lines and the live table."""

from __future__ import annotations

import io

from rich.console import Console

from reconciler.apply import ActionResult, Outcome, WaitResult
from reconciler.changes import Cancel, Change, Create
from reconciler.progress import LiveProgress, PlainProgress

CREATE = Change("thread_a", "report", (), Create({}))
CANCEL = Change("thread_b", "old", (), Cancel(), run_id="run_9")


def events(view: PlainProgress | LiveProgress) -> None:
    with view:
        view.action_started(CREATE)
        view.action_started(CANCEL)
        view.action_finished(ActionResult(CREATE, Outcome.APPLIED, "run_1", "created run_1"))
        view.action_finished(ActionResult(CANCEL, Outcome.FAILED, "run_9", "HTTP 500"))
        view.progress("thread_a/report", "run_1 in_progress")
        view.run_finished(WaitResult("thread_a/report", "run_1", "completed"))


def test_plain_lines_say_every_event_in_order() -> None:
    lines: list[str] = []
    events(PlainProgress(lines.append))
    assert lines == [
        "thread_a/report: creating…",
        "thread_b/old: cancelling…",
        "thread_a/report: create done: created run_1",
        "thread_b/old: cancel failed: HTTP 500",
        "thread_a/report: run_1 in_progress",
        "thread_a/report: run run_1 completed",
    ]


def test_plain_lines_colour_only_when_asked() -> None:
    plain: list[str] = []
    coloured: list[str] = []
    events(PlainProgress(plain.append))
    events(PlainProgress(coloured.append, color=True))
    assert not any("\x1b[" in line for line in plain)
    assert any("\x1b[31m" in line for line in coloured)


def test_live_table_ends_with_each_address_last_state() -> None:
    out = io.StringIO()
    events(LiveProgress(Console(file=out, force_terminal=True, width=120)))
    text = out.getvalue()
    assert "thread_a/report" in text and "thread_b/old" in text
    # each row is redrawn in place: the last frame shows each address's last state
    assert text.rfind("run run_1 completed") > text.rfind("creating…")
    assert text.rfind("cancel failed: HTTP 500") > text.rfind("cancelling…")
