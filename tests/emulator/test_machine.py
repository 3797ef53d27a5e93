"""The run status machine as a pure function of (run clock, outcome, timing, now)."""

from __future__ import annotations

import pytest

from reconciler.emulator.config import RunTiming
from reconciler.emulator.machine import Outcome, RunClock, derive, outcome_from_markers

TIMING = RunTiming(queued=1.0, in_progress=2.0, cancelling=0.5, expires_after=600.0)
T0 = 1000.0


def clock(**changes: object) -> RunClock:
    values: dict[str, object] = {"created": T0, "expires_at": T0 + 600, "calls_functions": False}
    values.update(changes)
    return RunClock(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(("at", "status"), [
    (0.0, "queued"), (0.99, "queued"), (1.0, "in_progress"), (2.9, "in_progress"),
    (3.0, "completed"), (500.0, "completed"), (5000.0, "completed"),
])
def test_plain_run_goes_queued_in_progress_completed(at: float, status: str) -> None:
    assert derive(clock(), Outcome(), TIMING, T0 + at).status == status


def test_completed_run_carries_its_timestamps() -> None:
    phase = derive(clock(), Outcome(), TIMING, T0 + 10)
    assert (phase.started_at, phase.completed_at, phase.finished_at) == (T0 + 1, T0 + 3, T0 + 3)
    assert phase.failed_at is None and phase.cancelled_at is None


def test_function_run_waits_for_outputs_then_resumes() -> None:
    waiting = clock(calls_functions=True)
    assert derive(waiting, Outcome(), TIMING, T0 + 3).status == "requires_action"
    assert derive(waiting, Outcome(), TIMING, T0 + 300).status == "requires_action"
    answered = clock(calls_functions=True, outputs_submitted=T0 + 10)
    assert derive(answered, Outcome(), TIMING, T0 + 10).status == "queued"
    assert derive(answered, Outcome(), TIMING, T0 + 11.5).status == "in_progress"
    done = derive(answered, Outcome(), TIMING, T0 + 13)
    assert done.status == "completed" and done.completed_at == T0 + 13
    assert done.requires_action_at == T0 + 3


def test_unanswered_run_expires_at_expires_at() -> None:
    phase = derive(clock(calls_functions=True), Outcome(), TIMING, T0 + 600)
    assert phase.status == "expired" and phase.expired_at == T0 + 600
    assert derive(clock(calls_functions=True), Outcome(), TIMING, T0 + 599).status == (
        "requires_action")


def test_a_run_still_working_past_expiry_expires() -> None:
    slow = RunTiming(queued=0, in_progress=1000, cancelling=0)
    assert derive(clock(), Outcome(), slow, T0 + 700).status == "expired"


def test_cancel_goes_through_cancelling() -> None:
    asked = clock(calls_functions=True, cancel_requested=T0 + 5)
    assert derive(asked, Outcome(), TIMING, T0 + 5.2).status == "cancelling"
    phase = derive(asked, Outcome(), TIMING, T0 + 6)
    assert phase.status == "cancelled" and phase.cancelled_at == T0 + 5.5
    # a cancel wins over expiry once asked for
    assert derive(asked, Outcome(), TIMING, T0 + 10_000).status == "cancelled"


def test_outcomes_from_markers() -> None:
    failed = derive(clock(), outcome_from_markers("x [emulator:fail] y"), TIMING, T0 + 3)
    assert failed.status == "failed" and failed.failed_at == T0 + 3
    assert outcome_from_markers("[emulator:fail:invalid_prompt]").error_code == "invalid_prompt"
    assert outcome_from_markers(None, "[emulator:incomplete:max_prompt_tokens]") == Outcome(
        "incomplete", incomplete_reason="max_prompt_tokens")
    assert outcome_from_markers("nothing to see", None) == Outcome()
    incomplete = derive(clock(), outcome_from_markers("[emulator:incomplete]"), TIMING, T0 + 3)
    assert incomplete.status == "incomplete"


def test_instant_timing_finishes_at_creation() -> None:
    assert derive(clock(), Outcome(), RunTiming.instant(), T0).status == "completed"
    assert derive(clock(calls_functions=True), Outcome(), RunTiming.instant(), T0).status == (
        "requires_action")
