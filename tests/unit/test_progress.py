"""The two views of apply's progress: plain lines and the live table."""

from __future__ import annotations

import io

from rich.console import Console

from reconciler.apply import ActionResult, Outcome, WaitResult
from reconciler.changes import Cancel, Change, Create
from reconciler.progress import LiveProgress, PlainProgress, QuietProgress, ThreadCounter

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


def test_quiet_view_shows_only_what_failed() -> None:
    lines: list[str] = []
    events(QuietProgress(lines.append))
    assert lines == ["thread_b/old: cancel failed: HTTP 500"]
    failed_run: list[str] = []
    with QuietProgress(failed_run.append) as view:
        view.run_finished(WaitResult("thread_a/report", "run_1", "failed", "boom"))
    assert failed_run == ["thread_a/report: run run_1 failed (boom)"]


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_thread_counter_redraws_at_most_every_interval_and_always_the_last() -> None:
    out = io.StringIO()
    clock = Clock()
    with ThreadCounter(out, interval=0.1, clock=clock) as count:
        count(0, 5_000)
        clock.now = 0.05
        count(1_234, 5_000)  # too soon: not drawn
        clock.now = 0.2
        count(1_235, 5_000)
        count(5_000, 5_000)  # the last is drawn however soon
    assert out.getvalue() == (
        "\r\x1b[2Kread 0 of 5,000 threads"
        "\r\x1b[2Kread 1,235 of 5,000 threads"
        "\r\x1b[2Kread 5,000 of 5,000 threads"
        "\r\x1b[2K"  # wiped: what follows starts on a clean line
    )


def test_thread_counter_draws_nothing_for_nothing_to_read() -> None:
    out = io.StringIO()
    with ThreadCounter(out) as count:
        count(0, 0)
    assert out.getvalue() == ""
