"""The apply engine against a scripted in-memory client and a fake clock: every recovery path.

Each test states what the server does (lost answers, late commits, busy threads, another apply
racing this one), then checks the outcome and its message, every request the fake saw (and
that no name ever has two runs), the intent journal afterwards, and every sleep.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from reconciler import identity
from reconciler.apply import Applier, ApplyOptions, ApplyReport, Outcome
from reconciler.changes import Create, Replace
from reconciler.errors import NotFoundError, ThreadBusyError
from reconciler.journal import Intent
from reconciler.model import JSON, DesiredRun
from reconciler.planning import Action, Plan, PlanOptions, Reason, index_thread, plan
from tests.unit.fakes import (
    LOST_ANSWER,
    Answer,
    AttemptIds,
    FakeClient,
    FakeClock,
    RecordingHooks,
    RecordingJournal,
    lost,
    refused,
)

PROJECT = "analytics"
BACKEND = "fake://assistants"
THREAD_A = "thread_a"
THREAD_B = "thread_b"
SPEC: dict[str, JSON] = {"assistant_id": "asst_1", "instructions": "Summarise the KPIs."}
OPTIONS = ApplyOptions(
    timeout=30.0, poll_interval=1.0, max_attempts=3, settle_window=5.0, settle_poll=1.0,
    request_timeout=4.0,
)

LIST = ("list_runs", THREAD_A)
LATEST = ("list_latest_run", THREAD_A)
CREATE = ("create_run", f"{THREAD_A}/report")


def desired(
    name: str = "report", thread: str = THREAD_A, *, tool_outputs: Mapping[str, str] | None = None,
    **spec: JSON,
) -> DesiredRun:
    return DesiredRun(thread, name, {**SPEC, **spec}, tool_outputs=dict(tool_outputs or {}))


def body_for(run: DesiredRun, *, generation: int = 1, attempt: str | None = None) -> dict[str, Any]:
    """The create body reconciler sends for ``run`` (with ``attempt``: as one apply sent it)."""
    reserved = identity.reserved_metadata(
        project=PROJECT, name=run.name, spec=run.spec, revision=run.revision,
        user_metadata=run.metadata, generation=generation,
    )
    if attempt is not None:
        reserved[identity.KEY_SPEC] = identity.with_attempt(reserved[identity.KEY_SPEC], attempt)
    return {**run.spec, "metadata": {**run.metadata, **reserved}}


@dataclasses.dataclass
class Harness:
    clock: FakeClock
    fake: FakeClient
    journal: RecordingJournal
    hooks: RecordingHooks
    attempts: AttemptIds

    def plan(self, *runs: DesiredRun, threads: Sequence[str] = (THREAD_A,)) -> Plan:
        return plan(list(runs), self.fake.live(*threads), PlanOptions(project=PROJECT))

    def apply(self, computed: Plan, *, twins_expected: bool = False,
              **options: Any) -> ApplyReport:
        applier = Applier(
            self.fake.as_client(),
            options=dataclasses.replace(OPTIONS, **options),
            hooks=self.hooks,
            journal=self.journal,
            backend=BACKEND,
            clock=self.clock,
            sleep=self.clock.sleep,
            wall_clock=self.clock,
            attempt_ids=self.attempts,
        )
        report = asyncio.run(applier.apply(computed))
        if not twins_expected:  # only the test of a commit later than its window makes twins
            self.assert_no_duplicates()
        return report

    def assert_no_duplicates(self) -> None:
        """Whatever happened, no (thread, name, generation) holds two runs."""
        for thread_id, runs in self.fake.threads.items():
            keys = [
                (run["metadata"][identity.KEY_NAME],
                 identity.recorded_generation(run["metadata"]))
                for run in runs if identity.is_managed_by(run["metadata"], PROJECT)
            ]
            assert len(keys) == len(set(keys)), f"duplicate runs on {thread_id}: {keys}"

    def pending(self) -> list[Intent]:
        return self.journal.pending(PROJECT, BACKEND)

    def runs_named(self, name: str = "report", thread: str = THREAD_A) -> list[dict[str, Any]]:
        return self.fake.managed_runs(thread, name, PROJECT)


def harness(intents: Sequence[Intent] = ()) -> Harness:
    clock = FakeClock()
    return Harness(clock, FakeClient(clock), RecordingJournal(intents), RecordingHooks(),
                   AttemptIds())


@pytest.fixture
def h() -> Harness:
    return harness()


def only(report: ApplyReport) -> tuple[Outcome, str, str | None]:
    (result,) = report.results
    return result.outcome, result.message, result.run_id


# -- 1. plain create ----------------------------------------------------------------------


def test_plain_create_sends_once_with_the_injected_attempt_id(h: Harness) -> None:
    computed = h.plan(desired())
    (change,) = computed.changes
    assert isinstance(change.payload, Create)

    report = h.apply(computed)

    assert only(report) == (Outcome.APPLIED, "created run_01", "run_01")
    assert report.ok
    assert h.fake.requests == [LIST, CREATE]
    (sent,) = h.fake.create_bodies
    planned_spec = change.payload.create_request["metadata"][identity.KEY_SPEC]
    assert identity.attempt_of({identity.KEY_SPEC: planned_spec}) is None  # the plan has none
    assert sent["metadata"][identity.KEY_SPEC] == identity.with_attempt(planned_spec, "att01")
    assert identity.attempt_of(sent["metadata"]) == "att01" == h.attempts.issued[0]
    assert {k: v for k, v in sent.items() if k != "metadata"} == SPEC
    (run,) = h.runs_named()
    assert identity.attempt_of(run["metadata"]) == "att01"
    assert h.journal.log == [("record", "att01"), ("resolve", "att01")]
    assert h.pending() == []
    assert h.clock.sleeps == []


# -- 2-5. ambiguous creates ---------------------------------------------------------------


def test_ambiguous_create_that_committed_is_found_by_its_attempt_id(h: Harness) -> None:
    h.fake.script(*CREATE, lost(commits=True))

    report = h.apply(h.plan(desired()))

    assert only(report) == (
        Outcome.APPLIED, "found (attempt att01, after a lost answer) run_01", "run_01"
    )
    assert "after a lost answer" in report.results[0].message
    assert h.fake.requests == [LIST, CREATE, LIST]
    assert len(h.runs_named()) == 1
    assert h.journal.log == [("record", "att01"), ("resolve", "att01")]
    assert h.pending() == []
    assert h.clock.sleeps == []
    assert (f"{THREAD_A}/report", f"{LOST_ANSWER}; looking for attempt att01") in (
        h.hooks.progress_messages
    )


@pytest.mark.parametrize("k", [1, 3, 4])
def test_ambiguous_create_that_commits_late_is_found_within_the_window(
    h: Harness, k: int
) -> None:
    h.fake.script(*CREATE, lost(commits=True, after_sleeps=k))

    report = h.apply(h.plan(desired()))

    assert only(report) == (
        Outcome.APPLIED, "found (attempt att01, after a lost answer) run_01", "run_01"
    )
    assert h.clock.sleeps == [OPTIONS.settle_poll] * k
    assert h.fake.requests == [LIST, CREATE] + [LIST] * (k + 1)
    assert h.fake.count("create_run") == 1
    assert len(h.runs_named()) == 1
    assert h.pending() == []


def test_ambiguous_create_that_never_commits_is_sent_again_after_the_window(h: Harness) -> None:
    h.fake.script(*CREATE, lost(commits=False))

    report = h.apply(h.plan(desired()))

    assert only(report) == (Outcome.APPLIED, "created run_01", "run_01")
    polls = int(OPTIONS.settle_window / OPTIONS.settle_poll)
    assert h.clock.sleeps == [OPTIONS.settle_poll] * polls
    # every look during the window, one after it, then the second send
    assert h.fake.requests == [LIST, CREATE] + [LIST] * (polls + 1) + [CREATE]
    assert [identity.attempt_of(b["metadata"]) for b in h.fake.create_bodies] == ["att01", "att02"]
    (run,) = h.runs_named()
    assert identity.attempt_of(run["metadata"]) == "att02"
    # the first intent stays recorded until the name is done: had its run landed after its
    # window, it would still have been recognised as ours
    assert h.journal.log == [
        ("record", "att01"), ("record", "att02"), ("resolve", "att02"), ("resolve", "att01"),
    ]
    assert h.pending() == []


def test_every_send_ambiguous_and_nothing_commits_is_an_unknown_outcome(h: Harness) -> None:
    h.fake.script(*CREATE, *[lost(commits=False)] * OPTIONS.max_attempts)
    h.fake.script("create_run", f"{THREAD_A}/later", Answer())  # never reached

    report = h.apply(h.plan(desired(), desired("later")))

    unknown, not_attempted = report.results
    assert unknown.outcome is Outcome.UNKNOWN and unknown.run_id is None
    assert unknown.message == (
        f"{THREAD_A}/report: the create may or may not have made a run ({LOST_ANSWER}); no run "
        "with its attempt id appeared within the 5s settle window after 3 tries: run "
        "`reconciler plan` later to see whether it did"
    )
    assert not_attempted.outcome is Outcome.NOT_ATTEMPTED
    assert not report.ok
    assert report.summary() == (
        "Apply complete: 0 applied, 0 failed, 1 with an unknown outcome, 1 not attempted."
    )
    assert "with an unknown outcome" in report.summary()
    polls = int(OPTIONS.settle_window / OPTIONS.settle_poll)
    window = [LIST] * (polls + 1)
    assert h.fake.requests == [LIST, *([CREATE, *window] * OPTIONS.max_attempts)]
    assert h.fake.create_bodies and all(b["metadata"][identity.KEY_NAME] == "report"
                                        for b in h.fake.create_bodies)
    assert h.runs_named() == [] and h.runs_named("later") == []
    assert h.clock.sleeps == [OPTIONS.settle_poll] * (polls * OPTIONS.max_attempts)
    # every send's intent stays for the next apply to recognise (a late landing of any)
    assert [(i.attempt_id, i.thread_id, i.name, i.started_at) for i in h.pending()] == [
        (f"att0{n + 1}", THREAD_A, "report", h.clock.start + n * OPTIONS.settle_window)
        for n in range(3)
    ]
    assert h.attempts.issued == ["att01", "att02", "att03"]


# -- 6. created meanwhile by another apply ------------------------------------------------


def test_created_meanwhile_with_the_same_spec_is_skipped(h: Harness) -> None:
    computed = h.plan(desired())
    theirs = h.fake.add_run(THREAD_A, body_for(desired(), attempt="theirs"))

    report = h.apply(computed)

    assert only(report) == (
        Outcome.SKIPPED, f"created meanwhile by another apply ({theirs['id']}); nothing to do",
        theirs["id"],
    )
    assert report.ok
    assert report.summary() == (
        "Apply complete: 0 applied, 1 created meanwhile by another apply, 0 failed, "
        "0 not attempted."
    )
    assert h.fake.requests == [LIST]
    assert h.runs_named() == [theirs]
    assert h.journal.log == [] and h.pending() == []


def test_created_meanwhile_with_another_spec_fails_naming_the_run(h: Harness) -> None:
    computed = h.plan(desired())
    theirs = h.fake.add_run(
        THREAD_A, body_for(desired(instructions="Something else."), attempt="theirs")
    )

    report = h.apply(computed)

    assert only(report) == (
        Outcome.FAILED,
        f"{THREAD_A}/report: run {theirs['id']} was created meanwhile by another apply, with "
        "another spec; nothing was created: run `reconciler plan` again",
        None,
    )
    assert not report.ok
    assert h.fake.requests == [LIST]
    assert h.fake.count("create_run") == 0
    assert h.runs_named() == [theirs]
    assert h.pending() == []


def test_another_apply_creating_just_before_ours_makes_ours_refused_then_skipped(
    h: Harness,
) -> None:
    """Their run lands between our read and our send: the API refuses ours (busy thread)."""
    computed = h.plan(desired())
    theirs: list[dict[str, Any]] = []
    h.fake.script(*CREATE, Answer(before=lambda: theirs.append(
        h.fake.add_run(THREAD_A, body_for(desired(), attempt="theirs"))
    )))

    report = h.apply(computed)

    assert only(report) == (
        Outcome.SKIPPED, f"created meanwhile by another apply ({theirs[0]['id']}); nothing to do",
        theirs[0]["id"],
    )
    assert h.fake.requests == [LIST, CREATE, LIST]
    assert h.runs_named() == theirs  # ours was refused: one run only
    assert h.journal.log == [("record", "att01"), ("resolve", "att01")]
    assert h.pending() == []
    assert h.clock.sleeps == []


# -- 7. busy thread -----------------------------------------------------------------------


def _start_blocker(h: Harness, ends_after: int | None) -> None:
    """Someone else starts a run on the thread; it ends after ``ends_after`` sleeps (or never)."""
    run = h.fake.add_run(THREAD_A, {"assistant_id": "asst_x"}, status="in_progress")
    if ends_after is not None:
        h.clock.after_sleeps(ends_after, lambda: h.fake.set_status(run["id"], "completed"))


def _blocker(h: Harness, ends_after: int | None) -> Answer:
    """A create answered after someone started a run on the thread just before it arrived."""
    return Answer(before=lambda: _start_blocker(h, ends_after))


def test_thread_busy_on_create_waits_for_the_blocker_then_creates_once(h: Harness) -> None:
    h.fake.script(*CREATE, _blocker(h, ends_after=2))

    report = h.apply(h.plan(desired()))

    assert only(report) == (Outcome.APPLIED, "created run_02", "run_02")
    assert h.fake.requests == [LIST, CREATE, LIST, LATEST, LATEST, LATEST, LIST, CREATE]
    assert h.clock.sleeps == [OPTIONS.poll_interval] * 2
    assert len(h.runs_named()) == 1
    assert h.journal.log == [
        ("record", "att01"), ("resolve", "att01"), ("record", "att02"), ("resolve", "att02"),
    ]
    assert h.pending() == []
    assert h.hooks.progress_messages == [
        (f"{THREAD_A}/report", "thread became busy; reading it again"),
        (f"{THREAD_A}/report", "waiting for run_01 (in_progress) to finish"),
    ]


def test_thread_busy_forever_fails_at_the_apply_timeout(h: Harness) -> None:
    h.fake.script(*CREATE, _blocker(h, ends_after=None))

    report = h.apply(h.plan(desired()), timeout=3.0)

    assert only(report) == (
        Outcome.FAILED,
        f"timed out after 3s: {THREAD_A}/report: run run_01 still in_progress on the thread",
        None,
    )
    assert h.fake.requests == [LIST, CREATE, LIST, LATEST, LATEST, LATEST, LATEST]
    assert h.clock.sleeps == [OPTIONS.poll_interval] * 3
    assert h.runs_named() == []
    assert h.pending() == []


def test_a_run_active_at_the_reread_is_waited_on_before_any_send(h: Harness) -> None:
    computed = h.plan(desired())
    _start_blocker(h, ends_after=1)

    report = h.apply(computed)

    assert only(report) == (Outcome.APPLIED, "created run_02", "run_02")
    assert h.fake.requests == [LIST, LATEST, LATEST, LIST, CREATE]
    assert h.clock.sleeps == [OPTIONS.poll_interval]
    assert h.journal.log == [("record", "att01"), ("resolve", "att01")]


# -- 8. a restarted apply and the journal -------------------------------------------------


def _earlier(attempt: str, started_at: float, *, backend: str = BACKEND) -> Intent:
    return Intent(attempt, PROJECT, backend, THREAD_A, "report", started_at)


def test_restarted_apply_finds_the_run_an_earlier_intent_created() -> None:
    h = harness([_earlier("old01", 990.0)])
    computed = h.plan(desired())  # planned before the earlier create landed
    h.fake.add_run(THREAD_A, body_for(desired(), attempt="old01"))

    report = h.apply(computed)

    assert only(report) == (
        Outcome.APPLIED, "found (attempt old01, after a lost answer) run_01", "run_01"
    )
    assert h.fake.requests == [LIST]
    assert len(h.runs_named()) == 1
    assert h.journal.log == [("resolve", "old01")]
    assert h.pending() == []
    assert h.clock.sleeps == []
    assert h.hooks.progress_messages == [
        (f"{THREAD_A}/report", "an earlier apply may have created this run; looking for it"),
    ]


def test_restarted_apply_finds_an_earlier_create_landing_during_its_wait() -> None:
    h = harness([_earlier("old01", 998.0)])
    computed = h.plan(desired())

    def landed() -> None:
        h.fake.add_run(THREAD_A, body_for(desired(), attempt="old01"))

    h.clock.after_sleeps(2, landed)

    report = h.apply(computed)

    assert only(report)[:2] == (
        Outcome.APPLIED, "found (attempt old01, after a lost answer) run_01"
    )
    assert h.fake.count("create_run") == 0
    assert h.clock.sleeps == [OPTIONS.settle_poll] * 2
    assert h.pending() == []


def test_restarted_apply_waits_out_an_earlier_intent_then_creates_once() -> None:
    started_at = 998.0
    h = harness([_earlier("old01", started_at)])
    deadline = started_at + OPTIONS.request_timeout + OPTIONS.settle_window  # 1007

    report = h.apply(h.plan(desired()))

    assert only(report) == (Outcome.APPLIED, "created run_01", "run_01")
    polls = int((deadline - h.clock.start) / OPTIONS.settle_poll)
    assert polls == 7
    assert h.clock.sleeps == [OPTIONS.settle_poll] * polls
    assert h.clock.now == deadline
    assert h.fake.requests == [LIST] * (polls + 1) + [CREATE]
    assert len(h.runs_named()) == 1
    assert h.journal.log == [("record", "att01"), ("resolve", "att01"), ("resolve", "old01")]
    assert h.pending() == []


@pytest.mark.parametrize(
    "intent",
    [
        pytest.param(_earlier("old01", 900.0), id="deadline-passed"),
        pytest.param(_earlier("old01", 999.0, backend="elsewhere"), id="other-backend"),
        pytest.param(
            Intent("old01", PROJECT, BACKEND, THREAD_A, "another", 999.0), id="other-name"
        ),
    ],
)
def test_earlier_intents_that_cannot_matter_cause_no_wait(intent: Intent) -> None:
    h = harness([intent])

    report = h.apply(h.plan(desired()))

    assert only(report) == (Outcome.APPLIED, "created run_01", "run_01")
    assert h.fake.requests == [LIST, CREATE]
    assert h.clock.sleeps == []


# -- 9. replace ---------------------------------------------------------------------------


def _replace_plan(h: Harness, status: str = "in_progress") -> Plan:
    h.fake.add_run(THREAD_A, body_for(desired(instructions="Old.")), status=status)
    computed = h.plan(desired())
    (change,) = computed.changes
    assert (change.action, change.run_id) == (Action.REPLACE, "run_01")
    return computed


def test_replace_of_a_run_that_completed_meanwhile_counts_it_done_then_creates_once(
    h: Harness,
) -> None:
    computed = _replace_plan(h)
    h.fake.set_status("run_01", "completed")  # ended between the plan and the cancel

    report = h.apply(computed)

    assert only(report) == (
        Outcome.APPLIED, "created run_02; old run run_01: already completed", "run_02"
    )
    assert h.fake.requests == [("cancel_run", "run_01"), ("get_run", "run_01"), LIST, CREATE]
    (sent,) = h.fake.create_bodies
    assert identity.recorded_generation(sent["metadata"]) == 2
    assert [r["id"] for r in h.runs_named()] == ["run_01", "run_02"]
    assert h.pending() == [] and h.clock.sleeps == []


def test_replace_waits_for_the_cancelled_run_to_free_the_thread(h: Harness) -> None:
    computed = _replace_plan(h)
    h.fake.cancel_takes = 2

    report = h.apply(computed)

    assert only(report) == (
        Outcome.APPLIED,
        "created run_02; old run run_01: cancel requested (status cancelling)",
        "run_02",
    )
    assert h.fake.requests == [
        ("cancel_run", "run_01"), LIST, LATEST, LATEST, LATEST, LIST, CREATE,
    ]
    assert h.fake.run("run_01")["status"] == "cancelled"
    assert h.clock.sleeps == [OPTIONS.poll_interval] * 2
    assert h.pending() == []


def test_cancel_that_keeps_answering_ambiguously_fails_naming_the_last_answer(
    h: Harness,
) -> None:
    computed = _replace_plan(h)
    h.fake.script("cancel_run", "run_01", *[
        lost(commits=False, message=f"connection reset #{i}")
        for i in range(1, OPTIONS.max_attempts + 1)
    ])

    report = h.apply(computed)

    assert only(report) == (
        Outcome.FAILED,
        "could not cancel run run_01 after 3 tries (last answer: connection reset #3)",
        "run_01",
    )
    assert h.fake.requests == [("cancel_run", "run_01"), ("get_run", "run_01")] * 3
    assert h.fake.count("create_run") == 0
    assert h.fake.run("run_01")["status"] == "in_progress"
    assert h.journal.log == [] and h.clock.sleeps == []


def test_ambiguous_cancel_that_took_effect_counts_as_cancelling(h: Harness) -> None:
    computed = _replace_plan(h)
    h.fake.script("cancel_run", "run_01", lost(commits=True))
    h.fake.cancel_takes = 1

    report = h.apply(computed)

    assert only(report)[:2] == (
        Outcome.APPLIED, "created run_02; old run run_01: already cancelling"
    )
    assert h.fake.count("cancel_run") == 1 and h.fake.count("create_run") == 1


# -- 10. submit tool outputs --------------------------------------------------------------

CALLS = {
    "type": "submit_tool_outputs",
    "submit_tool_outputs": {"tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": "{}"}},
    ]},
}
OUTPUTS = [{"tool_call_id": "call_1", "output": "42"}]


def _submit_plan(h: Harness) -> Plan:
    run = desired(tool_outputs={"lookup": "42"})
    h.fake.add_run(THREAD_A, body_for(run), status="requires_action", required_action=CALLS)
    computed = h.plan(run)
    (change,) = computed.changes
    assert (change.action, change.run_id) == (Action.SUBMIT_TOOL_OUTPUTS, "run_01")
    return computed


def test_tool_outputs_not_accepted_because_the_run_moved_on(h: Harness) -> None:
    computed = _submit_plan(h)
    h.fake.set_status("run_01", "expired")

    report = h.apply(computed)

    assert only(report) == (
        Outcome.APPLIED, "no longer waiting for these outputs (status expired)", "run_01"
    )
    assert h.fake.requests == [("submit_tool_outputs", "run_01"), ("get_run", "run_01")]
    assert h.fake.accepted_outputs == []
    assert h.journal.log == [] and h.clock.sleeps == []


def test_tool_outputs_with_a_lost_answer_confirmed_by_the_run_moving_on(h: Harness) -> None:
    computed = _submit_plan(h)
    h.fake.script("submit_tool_outputs", "run_01", lost(commits=True))

    report = h.apply(computed)

    assert only(report) == (
        Outcome.APPLIED, "tool outputs accepted (confirmed after a lost answer)", "run_01"
    )
    assert h.fake.requests == [("submit_tool_outputs", "run_01"), ("get_run", "run_01")]
    assert h.fake.accepted_outputs == [("run_01", OUTPUTS)]


def test_tool_outputs_lost_before_arriving_are_sent_again(h: Harness) -> None:
    computed = _submit_plan(h)
    h.fake.script("submit_tool_outputs", "run_01", lost(commits=False))

    report = h.apply(computed)

    assert only(report) == (Outcome.APPLIED, "answered 1 tool call", "run_01")
    assert h.fake.requests == [
        ("submit_tool_outputs", "run_01"), ("get_run", "run_01"),
        ("submit_tool_outputs", "run_01"),
    ]
    assert h.fake.accepted_outputs == [("run_01", OUTPUTS)]


# -- 11. a failure stops its thread only --------------------------------------------------


def test_a_failure_stops_the_rest_of_its_thread_but_not_other_threads(h: Harness) -> None:
    computed = h.plan(desired("first"), desired("second"), desired("third", THREAD_B),
                      threads=(THREAD_A, THREAD_B))
    assert [(c.address, c.action) for c in computed.changes] == [
        (f"{THREAD_A}/first", Action.CREATE),
        (f"{THREAD_A}/second", Action.CREATE),
        (f"{THREAD_B}/third", Action.CREATE),
    ]
    h.fake.script("create_run", f"{THREAD_A}/first",
                  refused(NotFoundError, "No assistant found with id 'asst_1'."))

    report = h.apply(computed)

    assert [(r.change.address, r.outcome, r.message) for r in report.results] == [
        (f"{THREAD_A}/first", Outcome.FAILED,
         f"create run on {THREAD_A}: No assistant found with id 'asst_1'. (HTTP 404)"),
        (f"{THREAD_A}/second", Outcome.NOT_ATTEMPTED,
         f"not attempted: an earlier action on {THREAD_A} failed ({THREAD_A}/first)"),
        (f"{THREAD_B}/third", Outcome.APPLIED, "created run_01"),
    ]
    assert not report.ok
    assert report.summary() == "Apply complete: 1 applied, 1 failed, 1 not attempted."
    assert sorted(h.fake.requests) == sorted([
        ("list_runs", THREAD_A), ("create_run", f"{THREAD_A}/first"),
        ("list_runs", THREAD_B), ("create_run", f"{THREAD_B}/third"),
    ])
    assert h.runs_named("second") == [] and len(h.runs_named("third", THREAD_B)) == 1
    assert sorted(h.hooks.started) == [f"{THREAD_A}/first", f"{THREAD_B}/third"]
    assert sorted(r.change.address for r in h.hooks.finished) == [
        f"{THREAD_A}/first", f"{THREAD_B}/third",
    ]
    assert h.pending() == []  # a definite refusal resolves its intent


# -- 12. the current run is chosen by generation ------------------------------------------


def _two_generations(h: Harness) -> None:
    """g=1 (older spec) has the later created_at and the larger id; g=2 is current."""
    h.fake.add_run(THREAD_A, body_for(desired(instructions="Old."), generation=1),
                   status="completed", run_id="run_9", created_at=300)
    h.fake.add_run(THREAD_A, body_for(desired(), generation=2),
                   status="completed", run_id="run_1", created_at=100)


def test_plan_takes_the_highest_generation_as_current(h: Harness) -> None:
    _two_generations(h)
    live = h.fake.live(THREAD_A)
    assert [r.id for r in live.threads[THREAD_A].runs] == ["run_9", "run_1"]  # newest first

    assert index_thread(live.threads[THREAD_A], PROJECT)[0]["report"].id == "run_1"
    (noop,) = h.plan(desired()).changes
    assert (noop.action, noop.reasons, noop.run_id) == (Action.NOOP, (Reason.UP_TO_DATE,), "run_1")
    (replace,) = h.plan(desired(instructions="Newer.")).changes
    assert (replace.action, replace.run_id) == (Action.REPLACE, "run_1")
    assert isinstance(replace.payload, Replace)
    assert identity.recorded_generation(replace.payload.create_request["metadata"]) == 3


def test_apply_rereads_the_current_run_by_generation_too(h: Harness) -> None:
    _two_generations(h)
    computed = h.plan(desired(instructions="Newer."))

    report = h.apply(computed)

    # had the re-read taken run_9 (newest by clock and id) as current, it would look like a
    # run created meanwhile by another apply and nothing would be created
    assert only(report) == (
        Outcome.APPLIED, "created run_01; old run run_1: already completed", "run_01"
    )
    assert h.fake.requests == [("cancel_run", "run_1"), ("get_run", "run_1"), LIST, CREATE]
    assert identity.recorded_generation(h.fake.create_bodies[0]["metadata"]) == 3


def test_lost_answer_of_a_replacement_is_found_as_the_new_generation(h: Harness) -> None:
    computed = _replace_plan(h, status="completed")
    h.fake.script(*CREATE, lost(commits=True, after_sleeps=1))

    report = h.apply(computed)

    assert only(report) == (
        Outcome.APPLIED,
        "found (attempt att01, after a lost answer) run_02; old run run_01: already completed",
        "run_02",
    )
    assert h.fake.count("create_run") == 1
    assert h.clock.sleeps == [OPTIONS.settle_poll]
    assert h.pending() == []


# -- refusals, and following a created run ------------------------------------------------


def test_a_busy_refusal_is_not_counted_as_a_send(h: Harness) -> None:
    """Refused outright, nothing was created: max_attempts ambiguous sends still follow."""
    h.fake.script(*CREATE, _blocker(h, ends_after=1),
                  *[lost(commits=False)] * OPTIONS.max_attempts)

    report = h.apply(h.plan(desired()))

    assert only(report)[0] is Outcome.UNKNOWN
    assert "after 3 tries" in report.results[0].message
    assert h.fake.count("create_run") == 1 + OPTIONS.max_attempts
    assert h.runs_named() == []
    assert [i.attempt_id for i in h.pending()] == ["att02", "att03", "att04"]  # att01: refused


def test_a_thread_that_keeps_refusing_while_it_looks_free_fails_after_max_attempts(
    h: Harness,
) -> None:
    """The create is refused as busy although no active run is listed (a lagging read)."""
    busy = f"Thread {THREAD_A} already has an active run run_x."
    h.fake.script(*CREATE, *[refused(ThreadBusyError, busy)] * (OPTIONS.max_attempts + 1))

    report = h.apply(h.plan(desired()))

    assert only(report) == (
        Outcome.FAILED, f"create run on {THREAD_A}: {busy} (HTTP 400)", None
    )
    assert h.fake.requests == [LIST, CREATE] * (OPTIONS.max_attempts + 1)
    assert h.runs_named() == []
    assert h.pending() == []
    assert h.clock.sleeps == []  # read again at once each time: nothing looks active


def test_wait_follows_the_created_run_and_answers_its_tool_calls(h: Harness) -> None:
    def needs_answer() -> None:
        run = h.fake.run("run_01")
        run["status"], run["required_action"] = "requires_action", CALLS

    h.clock.after_sleeps(1, needs_answer)
    h.clock.after_sleeps(3, lambda: h.fake.set_status("run_01", "completed"))

    report = h.apply(h.plan(desired(tool_outputs={"lookup": "42"})), wait=True)

    assert only(report) == (Outcome.APPLIED, "created run_01", "run_01")
    (waited,) = report.waited
    assert (waited.address, waited.run_id, waited.status) == (
        f"{THREAD_A}/report", "run_01", "completed"
    )
    assert report.ok
    assert report.summary().endswith("Runs followed: 1 of 1 completed.")
    assert h.fake.accepted_outputs == [("run_01", OUTPUTS)]
    assert h.fake.requests == [
        LIST, CREATE, ("get_run", "run_01"), ("get_run", "run_01"),
        ("submit_tool_outputs", "run_01"), ("get_run", "run_01"), ("get_run", "run_01"),
    ]
    assert h.clock.sleeps == [OPTIONS.poll_interval] * 3
    assert h.hooks.runs == [waited]


def test_a_create_waiting_on_this_applys_run_answers_its_tool_calls(h: Harness) -> None:
    computed = h.plan(desired("first", tool_outputs={"lookup": "42"}), desired("second"))
    first, second = computed.changes
    assert second.wait_for == (first.address,)

    def needs_answer() -> None:
        run = h.fake.run("run_01")
        run["status"], run["required_action"] = "requires_action", CALLS

    h.clock.after_sleeps(1, needs_answer)
    h.clock.after_sleeps(3, lambda: h.fake.set_status("run_01", "completed"))

    report = h.apply(computed)

    assert [(r.outcome, r.message) for r in report.results] == [
        (Outcome.APPLIED, "created run_01"), (Outcome.APPLIED, "created run_02"),
    ]
    assert h.fake.accepted_outputs == [("run_01", OUTPUTS)]
    assert h.fake.requests == [
        LIST, ("create_run", f"{THREAD_A}/first"), LIST,
        LATEST, LATEST, ("submit_tool_outputs", "run_01"), LATEST, LATEST,
        LIST, ("create_run", f"{THREAD_A}/second"),
    ]
    assert h.clock.sleeps == [OPTIONS.poll_interval] * 3
    assert len(h.runs_named("first")) == 1 and len(h.runs_named("second")) == 1


# -- a commit later than the settle window ---------------------------------------------------


def test_a_commit_after_its_window_is_still_ours_and_its_twin_is_reported(h: Harness) -> None:
    """The first send lands after its window, while the second send settles and lands too: the
    name has two runs, and apply says so (exit 1) instead of calling one "created meanwhile"."""
    late = int(OPTIONS.settle_window / OPTIONS.settle_poll) + 2  # past the first window
    # the second lands within its own window, so apply sees both before it judges
    h.fake.script(*CREATE, lost(commits=True, after_sleeps=late), lost(commits=True,
                                                                       after_sleeps=3))

    report = h.apply(h.plan(desired()), twins_expected=True)

    (result,) = report.results
    assert result.outcome is Outcome.FAILED and not report.ok
    assert result.message.startswith(f"{THREAD_A}/report: 2 runs were created for this name (")
    assert "raise settle_window above the host's commit delay" in result.message
    assert "created meanwhile" not in result.message
    assert h.fake.count("create_run") == 2  # never a third send
    assert len(h.runs_named()) == 2
    assert h.pending() == []  # both seen: nothing is left to look for


def test_a_commit_after_its_window_alone_is_found_as_ours(h: Harness) -> None:
    """The first send lands late, the second never does: one run, found as ours."""
    late = int(OPTIONS.settle_window / OPTIONS.settle_poll) + 2
    h.fake.script(*CREATE, lost(commits=True, after_sleeps=late), lost(commits=False))

    report = h.apply(h.plan(desired()))

    outcome, message, _ = only(report)
    assert outcome is Outcome.APPLIED
    assert message.startswith("found (attempt att01, after a lost answer)")
    assert h.fake.count("create_run") == 2 and len(h.runs_named()) == 1
    assert h.pending() == []


def test_journal_records_past_the_horizon_are_dropped_at_the_start() -> None:
    from reconciler.apply import JOURNAL_HORIZON

    h = harness([_earlier("ancient", 1000.0 - JOURNAL_HORIZON - 1)])
    report = h.apply(h.plan(desired()))
    assert only(report)[:2] == (Outcome.APPLIED, "created run_01")
    assert h.journal.log[0] == ("resolve", "ancient")
    assert h.hooks.progress_messages == []  # it was not looked for
    assert h.pending() == []


# -- 13. metadata modifies of one thread do not wait for each other -----------------------


def _modify_plan(h: Harness, names: Sequence[str], *, then_create: str = "") -> Plan:
    """Completed runs ``names`` on thread A whose manifests now carry new user metadata."""
    wanted = []
    for name in names:
        h.fake.add_run(THREAD_A, body_for(desired(name)), status="completed")
        wanted.append(dataclasses.replace(desired(name), metadata={"team": "data"}))
    if then_create:
        wanted.append(desired(then_create))
    return h.plan(*wanted)


def _in_flight_recorder(h: Harness) -> list[int]:
    """Wrap the fake's modify so that it records how many modifies were in flight at once."""
    peaks: list[int] = []
    in_flight = 0
    modify = h.fake.modify_run

    async def counting(thread_id: str, run_id: str, metadata: Mapping[str, str]) -> Any:
        nonlocal in_flight
        in_flight += 1
        peaks.append(in_flight)
        try:
            await asyncio.sleep(0)
            return await modify(thread_id, run_id, metadata)
        finally:
            in_flight -= 1

    h.fake.modify_run = counting  # type: ignore[method-assign]
    return peaks


def test_modifies_of_one_thread_are_in_flight_together(h: Harness) -> None:
    names = [f"run-{i}" for i in range(5)]
    computed = _modify_plan(h, names)
    assert [c.action for c in computed.changes] == [Action.MODIFY] * 5
    peaks = _in_flight_recorder(h)

    report = h.apply(computed)

    assert max(peaks) == 5
    assert [(r.change.address, r.outcome) for r in report.results] == [
        (f"{THREAD_A}/{name}", Outcome.APPLIED) for name in names]
    assert all(run["metadata"]["team"] == "data" for run in h.fake.threads[THREAD_A])


def test_a_failed_modify_stops_what_follows_but_not_the_modifies_beside_it(h: Harness) -> None:
    computed = _modify_plan(h, ["one", "two", "three"], then_create="fresh")
    assert [c.action for c in computed.changes] == [Action.MODIFY] * 3 + [Action.CREATE]
    two = computed.changes[1].run_id
    assert two is not None
    h.fake.script("modify_run", two, refused(NotFoundError, f"No run found with id '{two}'."))

    report = h.apply(computed)

    assert [(r.change.address, r.outcome) for r in report.results] == [
        (f"{THREAD_A}/one", Outcome.APPLIED),
        (f"{THREAD_A}/two", Outcome.FAILED),
        (f"{THREAD_A}/three", Outcome.APPLIED),
        (f"{THREAD_A}/fresh", Outcome.NOT_ATTEMPTED),
    ]
    assert report.results[3].message == (
        f"not attempted: an earlier action on {THREAD_A} failed ({THREAD_A}/two)")
    assert ("create_run", f"{THREAD_A}/fresh") not in h.fake.requests
    assert sorted(h.hooks.started) == [f"{THREAD_A}/one", f"{THREAD_A}/three", f"{THREAD_A}/two"]
