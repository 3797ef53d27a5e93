"""The run status machine, derived from timestamps: a pure function of (run, now, timing).

No background task moves runs along. A run records when it was created, when its tool outputs
were submitted and when a cancel was asked for; its status at any instant follows from those
and the configured ``RunTiming``. So the same code works in-process and over a socket, across
restarts, and instantly when every duration is zero.

    created ─queued─► started ─in_progress─► requires_action (if it calls functions)
                                             │ submit_tool_outputs
                                             ▼
                           queued ─► in_progress ─► completed | failed | incomplete
    any non-terminal ──cancel──► cancelling ──► cancelled
    not terminal by expires_at ──► expired
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Literal

from reconciler.emulator.config import RunTiming

Status = Literal[
    "queued", "in_progress", "requires_action", "cancelling",
    "cancelled", "failed", "completed", "incomplete", "expired",
]
TERMINAL: frozenset[str] = frozenset({"cancelled", "failed", "completed", "incomplete", "expired"})


@dataclass(frozen=True)
class Outcome:
    """How a run ends if nothing interrupts it: chosen at creation from the failure markers."""

    status: Literal["completed", "failed", "incomplete"] = "completed"
    error_code: str | None = None
    error_message: str | None = None
    incomplete_reason: str | None = None


@dataclass(frozen=True)
class RunClock:
    """The instants that determine a run's status (seconds since the epoch, as floats)."""

    created: float
    expires_at: float
    calls_functions: bool
    outputs_submitted: float | None = None
    cancel_requested: float | None = None


@dataclass(frozen=True)
class Phase:
    """A run's status at one instant, with the timestamps the run object shows."""

    status: Status
    started_at: float | None = None
    requires_action_at: float | None = None
    completed_at: float | None = None
    failed_at: float | None = None
    cancelled_at: float | None = None
    expired_at: float | None = None
    finished_at: float | None = None  # when a terminal status was reached

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL

    @property
    def active(self) -> bool:
        return self.status not in TERMINAL


@dataclass(frozen=True)
class Course:
    """The instants of a run's natural course (ignoring cancel and expiry).

    ``requires_action_at`` is set when the run calls functions; ``resumed`` once its outputs
    are in (it is queued again then). ``replying_at`` is when its last ``in_progress`` stretch
    begins — when the reply is being written — and ``end`` when it finishes; both are None
    while the run waits for tool outputs.
    """

    started: float
    requires_action_at: float | None
    resumed: float | None
    replying_at: float | None
    end: float | None


def course_of(clock: RunClock, timing: RunTiming) -> Course:
    """When a run starts, asks for outputs, replies and ends: purely computational."""
    started = clock.created + timing.queued
    first_end = started + timing.in_progress
    if not clock.calls_functions:
        return Course(started, None, None, started, first_end)
    if clock.outputs_submitted is None:
        return Course(started, first_end, None, None, None)
    resumed = max(clock.outputs_submitted, first_end)
    replying = resumed + timing.queued
    return Course(started, first_end, resumed, replying, replying + timing.in_progress)


def derive(clock: RunClock, outcome: Outcome, timing: RunTiming, now: float) -> Phase:
    """The status of a run at ``now``: purely computational, no side effects."""
    times = course_of(clock, timing)
    started = times.started
    # the natural course, ignoring cancel and expiry: (status, since) pairs in order
    course: list[tuple[Status, float]] = [("queued", clock.created), ("in_progress", started)]
    if times.requires_action_at is not None:
        course.append(("requires_action", times.requires_action_at))
    if times.resumed is not None and times.replying_at is not None:
        course += [("queued", times.resumed), ("in_progress", times.replying_at)]
    end = math.inf if times.end is None else times.end
    course.append((outcome.status, end))

    if clock.cancel_requested is not None and clock.cancel_requested < end:
        done = clock.cancel_requested + timing.cancelling
        if now < done:
            at_cancel = _natural(course, clock.cancel_requested, started)
            return Phase("cancelling", started_at=at_cancel.started_at,
                         requires_action_at=at_cancel.requires_action_at)
        return Phase("cancelled", started_at=_started(started, clock.cancel_requested),
                     requires_action_at=_ra(course, clock.cancel_requested),
                     cancelled_at=done, finished_at=done)
    if clock.expires_at < end and now >= clock.expires_at:
        return Phase("expired", started_at=_started(started, clock.expires_at),
                     requires_action_at=_ra(course, clock.expires_at),
                     expired_at=clock.expires_at, finished_at=clock.expires_at)
    phase = _natural(course, now, started)
    if phase.status == "completed" or phase.status == "incomplete":
        return Phase(phase.status, started_at=started, requires_action_at=phase.requires_action_at,
                     completed_at=end, finished_at=end)
    if phase.status == "failed":
        return Phase("failed", started_at=started, requires_action_at=phase.requires_action_at,
                     failed_at=end, finished_at=end)
    return phase


def _natural(course: list[tuple[Status, float]], now: float, started: float) -> Phase:
    status: Status = course[0][0]
    for name, since in course:
        if since <= now:
            status = name
    return Phase(status, started_at=_started(started, now), requires_action_at=_ra(course, now))


def _started(started: float, now: float) -> float | None:
    return started if now >= started else None


def _ra(course: list[tuple[Status, float]], now: float) -> float | None:
    for name, since in course:
        if name == "requires_action" and since <= now:
            return since
    return None


_FAIL = re.compile(r"\[emulator:fail(?::(server_error|rate_limit_exceeded|invalid_prompt))?\]")
_INCOMPLETE = re.compile(r"\[emulator:incomplete(?::(max_completion_tokens|max_prompt_tokens))?\]")
_FAIL_MESSAGES = {
    "server_error": "Sorry, something went wrong.",
    "rate_limit_exceeded": "You exceeded your current quota, please check your plan and billing "
    "details.",
    "invalid_prompt": "Your prompt was flagged as potentially violating our usage policy.",
}


def outcome_from_markers(*texts: str | None) -> Outcome:
    """The deterministic ending a run asks for through markers in its instructions.

    ``[emulator:fail]`` (or ``[emulator:fail:rate_limit_exceeded]``,
    ``[emulator:fail:invalid_prompt]``) ends the run ``failed`` with that ``last_error`` code;
    ``[emulator:incomplete]`` (or ``…:max_prompt_tokens``) ends it ``incomplete``.
    """
    for text in texts:
        if not text:
            continue
        failed = _FAIL.search(text)
        if failed:
            code = failed.group(1) or "server_error"
            return Outcome("failed", error_code=code, error_message=_FAIL_MESSAGES[code])
        incomplete = _INCOMPLETE.search(text)
        if incomplete:
            return Outcome("incomplete",
                           incomplete_reason=incomplete.group(1) or "max_completion_tokens")
    return Outcome()
