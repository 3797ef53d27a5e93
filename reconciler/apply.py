"""Executing a plan: the imperative shell around the plan value.

Threads proceed concurrently (the client bounds requests in flight); one thread's changes run
in the plan's order, and a failure stops the rest of that thread (they are reported as not
attempted, so a second ``apply`` converges). Creates never duplicate a run: each carries an
attempt id in its reserved metadata and is recorded in the intent journal before it is sent;
an ambiguous failure (a timeout, a lost answer, a 5xx) is looked for by that id through a
settle window before anything is sent again, and the thread is read again before every create.
Decisions come from typed errors, never from message text. Progress reaches the terminal
through :class:`ApplyHooks`, never by printing.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from reconciler import identity
from reconciler.client import AssistantsClient, JSONObject
from reconciler.errors import (
    AmbiguousResultError,
    ApiError,
    ReconcilerError,
    RunNotCancellableError,
    ThreadBusyError,
    ToolOutputsNotAcceptedError,
    UnknownOutcomeError,
    WaitTimeoutError,
)
from reconciler.journal import Intent, IntentJournal, MemoryJournal
from reconciler.live import read_thread
from reconciler.model import ACTIVE_STATUSES, TERMINAL_STATUSES, LiveRun, RunStatus
from reconciler.plan import Action, Change, Plan, index_thread
from reconciler.runs import pending_tool_calls


class Outcome(enum.Enum):
    APPLIED = "applied"
    SKIPPED = "created meanwhile"  # another apply made the same run first: nothing left to do
    FAILED = "failed"
    UNKNOWN = "unknown"  # a create may or may not have made its run (never counted as success)
    NOT_ATTEMPTED = "not attempted"


#: Outcomes after which the thread's desired state holds for that change.
_DONE = frozenset({Outcome.APPLIED, Outcome.SKIPPED})


@dataclass(frozen=True)
class ActionResult:
    """What happened to one planned change."""

    change: Change
    outcome: Outcome
    run_id: str | None = None
    message: str = ""


@dataclass(frozen=True)
class WaitResult:
    """Where a followed run ended (``--wait``)."""

    address: str
    run_id: str
    status: str
    message: str = ""

    @property
    def succeeded(self) -> bool:
        return self.status == "completed"


@dataclass(frozen=True)
class ApplyReport:
    """The result of an apply: black's ``Report`` idea, it owns the exit status."""

    results: tuple[ActionResult, ...]
    waited: tuple[WaitResult, ...] = ()

    def count(self, outcome: Outcome) -> int:
        return sum(1 for r in self.results if r.outcome is outcome)

    @property
    def ok(self) -> bool:
        return all(r.outcome in _DONE for r in self.results) and all(
            w.succeeded for w in self.waited
        )

    def summary(self) -> str:
        skipped, unknown = self.count(Outcome.SKIPPED), self.count(Outcome.UNKNOWN)
        text = (
            f"Apply complete: {self.count(Outcome.APPLIED)} applied, "
            + (f"{skipped} created meanwhile by another apply, " if skipped else "")
            + f"{self.count(Outcome.FAILED)} failed, "
            + (f"{unknown} with an unknown outcome, " if unknown else "")
            + f"{self.count(Outcome.NOT_ATTEMPTED)} not attempted."
        )
        if self.waited:
            done = sum(1 for w in self.waited if w.succeeded)
            text += f" Runs followed: {done} of {len(self.waited)} completed."
        return text


class ApplyHooks(Protocol):
    """Progress callbacks (Terraform's PreApply/PostApply); the CLI renders them."""

    def action_started(self, change: Change) -> None: ...

    def action_finished(self, result: ActionResult) -> None: ...

    def progress(self, address: str, message: str) -> None: ...

    def run_finished(self, result: WaitResult) -> None: ...


class SilentHooks:
    """Hooks that report nothing (library use, tests)."""

    def action_started(self, change: Change) -> None:
        return None

    def action_finished(self, result: ActionResult) -> None:
        return None

    def progress(self, address: str, message: str) -> None:
        return None

    def run_finished(self, result: WaitResult) -> None:
        return None


@dataclass(frozen=True)
class ApplyOptions:
    wait: bool = False
    timeout: float = 600.0  # for waiting on a busy thread and for --wait
    poll_interval: float = 0.5
    max_attempts: int = 5  # sends of one action after ambiguous failures
    #: How long after an ambiguous create (timeout, lost answer, 5xx) its run may still appear:
    #: a gateway can answer 504 and its backend commit later. Nothing is sent again for that
    #: name until the window has passed without the run showing up.
    settle_window: float = 60.0
    settle_poll: float = 1.0  # seconds between looks while a create settles
    #: The client's own timeout: a create recorded by an apply that died may still be on the
    #: wire this long after it was sent, and then settle.
    request_timeout: float = 60.0


class _CreatedMeanwhile(ReconcilerError):
    """The name got its run from someone else between the plan and this create."""

    def __init__(self, run_id: str) -> None:
        super().__init__(f"created meanwhile by another apply ({run_id}); nothing to do")
        self.run_id = run_id


@dataclass
class _Followed:
    """A run this apply created or answered: followed with --wait, answered while waiting."""

    address: str
    run_id: str
    answers: Mapping[str, str]


@dataclass
class _ThreadWork:
    thread_id: str
    changes: list[Change]
    followed: dict[str, _Followed] = field(default_factory=dict)  # by run id


@dataclass
class _Settling:
    """Every create attempt of one address (this apply's and the journal's), each with the
    wall-clock time until which its run may still appear. Attempts are never forgotten while
    the address is worked on: a run landing after its window is still recognised as ours."""

    deadlines: dict[str, float] = field(default_factory=dict)
    sent_at: dict[str, float] = field(default_factory=dict)  # wall-clock time of each send
    last_error: str = ""

    def landed(self, attempt: str, now: float, window: float) -> None:
        """``attempt``'s run was seen. If it took longer than its window, the host commits that
        late: every other attempt gets as long again (from its own send) to show its twin."""
        if self.deadlines.get(attempt) == 0.0:
            return  # seen before: its delay was taken into account then
        taken = now - self.sent_at.get(attempt, now)
        self.deadlines[attempt] = 0.0  # seen: nothing to wait for
        for other, deadline in self.deadlines.items():
            if deadline > 0.0:
                self.deadlines[other] = max(deadline, self.sent_at.get(other, now) + taken + window)


Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


#: Unresolved journal records older than this are dropped: whatever they did has long shown.
JOURNAL_HORIZON = 7 * 86_400.0


def new_attempt_id() -> str:
    """A create attempt id: 16 random hex digits, unique enough across every apply."""
    return uuid.uuid4().hex[:16]


class Applier:
    """Carries out one plan against one client.

    ``journal`` records every create before it is sent, so that an apply started after a crash
    waits out the creates that may still be on the wire instead of duplicating them;
    ``backend`` names the host in its records. ``clock`` and ``sleep`` pace waiting;
    ``wall_clock`` dates the journal's records, which outlive the process.
    """

    def __init__(
        self,
        client: AssistantsClient,
        *,
        options: ApplyOptions | None = None,
        hooks: ApplyHooks | None = None,
        journal: IntentJournal | None = None,
        backend: str = "",
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        wall_clock: Clock = time.time,
        attempt_ids: Callable[[], str] = new_attempt_id,
    ) -> None:
        self.client = client
        self.options = options or ApplyOptions()
        self.hooks: ApplyHooks = hooks or SilentHooks()
        self.journal: IntentJournal = journal if journal is not None else MemoryJournal()
        self.backend = backend
        self._clock = clock
        self._sleep = sleep
        self._wall = wall_clock
        self._attempt_ids = attempt_ids
        self._deadline = 0.0
        self._project = ""
        self._earlier: dict[tuple[str, str], list[Intent]] = {}

    async def apply(self, plan: Plan) -> ApplyReport:
        self._deadline = self._clock() + self.options.timeout
        self._project = plan.options.project
        self._earlier = {}
        horizon = self._wall() - JOURNAL_HORIZON
        for intent in self.journal.pending(self._project, self.backend):
            if intent.started_at < horizon:  # long settled either way: forget it
                self.journal.resolve(intent.attempt_id)
                continue
            self._earlier.setdefault((intent.thread_id, intent.name), []).append(intent)
        by_thread: dict[str, _ThreadWork] = {}
        for change in plan.actionable:
            by_thread.setdefault(
                change.thread_id, _ThreadWork(change.thread_id, [])
            ).changes.append(change)
        outcomes = await asyncio.gather(*(self._apply_thread(w) for w in by_thread.values()))
        results = tuple(r for thread_results, _ in outcomes for r in thread_results)
        waited = tuple(w for _, thread_waits in outcomes for w in thread_waits)
        return ApplyReport(results=results, waited=waited)

    async def _apply_thread(self, work: _ThreadWork) -> tuple[list[ActionResult], list[WaitResult]]:
        results: list[ActionResult] = []
        stopped: str | None = None
        for change in work.changes:
            if stopped is not None:
                result = ActionResult(
                    change,
                    Outcome.NOT_ATTEMPTED,
                    change.run_id,
                    f"not attempted: an earlier action on {work.thread_id} failed ({stopped})",
                )
            else:
                self.hooks.action_started(change)
                try:
                    run_id, message = await self._execute(change, work)
                    result = ActionResult(change, Outcome.APPLIED, run_id, message)
                except _CreatedMeanwhile as exc:
                    result = ActionResult(change, Outcome.SKIPPED, exc.run_id, str(exc))
                except UnknownOutcomeError as exc:
                    result = ActionResult(change, Outcome.UNKNOWN, None, str(exc))
                    stopped = change.address
                except ReconcilerError as exc:
                    result = ActionResult(change, Outcome.FAILED, change.run_id, str(exc))
                    stopped = change.address
            results.append(result)
            if result.outcome is not Outcome.NOT_ATTEMPTED:
                self.hooks.action_finished(result)
        waits: list[WaitResult] = []
        if self.options.wait:
            for followed in work.followed.values():
                wait_result = await self._follow(work, followed)
                waits.append(wait_result)
                self.hooks.run_finished(wait_result)
        return results, waits

    # -- actions ----------------------------------------------------------------------------

    async def _execute(self, change: Change, work: _ThreadWork) -> tuple[str | None, str]:
        thread = change.thread_id
        if change.action is Action.CANCEL:
            assert change.run_id is not None
            return change.run_id, await self._cancel(thread, change.run_id)
        if change.action is Action.MODIFY:
            assert change.run_id is not None and change.metadata is not None
            await self.client.modify_run(thread, change.run_id, change.metadata)
            return change.run_id, "metadata updated"
        if change.action is Action.SUBMIT_TOOL_OUTPUTS:
            assert change.run_id is not None
            message = await self._submit(thread, change.run_id, change)
            work.followed[change.run_id] = _Followed(change.address, change.run_id, change.answers)
            return change.run_id, message
        if change.action in (Action.CREATE, Action.REPLACE):
            notes: list[str] = []
            if change.action is Action.REPLACE and change.run_id is not None:
                notes.append(
                    f"old run {change.run_id}: " + await self._cancel(thread, change.run_id)
                )
            run_id, how = await self._create(change, work)
            work.followed[run_id] = _Followed(change.address, run_id, change.answers)
            notes.insert(0, f"{how} {run_id}")
            return run_id, "; ".join(notes)
        raise ReconcilerError(f"{change.address}: cannot apply action {change.action.value}")

    async def _cancel(self, thread: str, run_id: str) -> str:
        """Cancel a run; one that already ended or is cancelling counts as done."""
        last = ""
        for _ in range(self.options.max_attempts):
            try:
                run = await self.client.cancel_run(thread, run_id)
                return f"cancel requested (status {run.get('status')})"
            except (AmbiguousResultError, RunNotCancellableError) as exc:
                last = exc.api_message
                run = await self.client.get_run(thread, run_id)
            status = str(run.get("status"))
            if status == RunStatus.CANCELLING or status in TERMINAL_STATUSES:
                return f"already {status}"
        raise ReconcilerError(
            f"could not cancel run {run_id} after {self.options.max_attempts} tries "
            f"(last answer: {last})"
        )

    async def _submit(self, thread: str, run_id: str, change: Change) -> str:
        outputs = [
            {"tool_call_id": o.tool_call_id, "output": o.output} for o in change.tool_outputs
        ]
        wanted = {o.tool_call_id for o in change.tool_outputs}
        for _ in range(self.options.max_attempts):
            try:
                await self.client.submit_tool_outputs(thread, run_id, outputs)
                return f"answered {len(outputs)} tool call{'s' if len(outputs) != 1 else ''}"
            except (AmbiguousResultError, ToolOutputsNotAcceptedError) as exc:
                run = await self.client.get_run(thread, run_id)
                pending = {c.id for c in pending_tool_calls(run)}
                if run.get("status") != RunStatus.REQUIRES_ACTION or not wanted & pending:
                    if isinstance(exc, AmbiguousResultError):
                        return "tool outputs accepted (confirmed after a lost answer)"
                    return f"no longer waiting for these outputs (status {run.get('status')})"
        raise ReconcilerError(
            f"could not submit tool outputs to {run_id} after {self.options.max_attempts} tries"
        )

    async def _create(self, change: Change, work: _ThreadWork) -> tuple[str, str]:
        """Create the run once, whatever the network does: the heart of "no duplicates".

        Before every send the thread is read again: a run that appeared for this name since
        the plan is ours (an earlier attempt's, found by its attempt id) or another apply's
        (skipped). A send whose outcome is ambiguous is looked for through the settle window
        before anything is sent again; a thread found busy is waited on and read again.
        """
        body = change.create_request
        if body is None:
            raise ReconcilerError(f"{change.address}: the plan has no create request")
        settling = _Settling()
        grace = self.options.request_timeout + self.options.settle_window
        for intent in self._earlier.get((change.thread_id, change.name), []):
            settling.deadlines[intent.attempt_id] = intent.started_at + grace
            settling.sent_at[intent.attempt_id] = intent.started_at
        if settling.deadlines:
            self.hooks.progress(
                change.address, "an earlier apply may have created this run; looking for it"
            )
        sends = busy_refusals = 0
        while True:
            thread = await read_thread(self.client, change.thread_id)
            current_runs, by_name = index_thread(thread, self._project)
            current = current_runs.get(change.name)
            if current is not None and current.id != change.run_id:
                attempt = identity.attempt_of(current.metadata) or ""
                if attempt not in settling.deadlines:
                    self._resolve(settling)
                    return self._foreign(change, current)
                settling.landed(attempt, self._wall(), self.options.settle_window)
                if await self._still_settling(settling):
                    continue  # another send of ours may still land: see it before judging
                ours = [r.id for r in by_name[change.name]
                        if identity.attempt_of(r.metadata) in settling.deadlines]
                self._resolve(settling)
                if len(ours) > 1:
                    raise ReconcilerError(
                        f"{change.address}: {len(ours)} runs were created for this name "
                        f"({', '.join(sorted(ours))}): a create committed after its "
                        f"{self.options.settle_window:g}s settle window and was sent again, "
                        "or another apply ran without the lock. "
                        f"{current.id} is the current one; cancel the others, and raise "
                        "settle_window above the host's commit delay"
                    )
                return current.id, f"found (attempt {attempt}, after a lost answer)"
            if await self._still_settling(settling):
                continue
            if sends >= self.options.max_attempts:  # its attempts stay in the journal
                raise UnknownOutcomeError(
                    f"{change.address}: the create may or may not have made a run "
                    f"({settling.last_error}); no run with its attempt id appeared within "
                    f"the {self.options.settle_window:g}s settle window after "
                    f"{sends} tr{'ies' if sends != 1 else 'y'}: run `reconciler plan` later to "
                    "see whether it did"
                )
            if any(run.is_active for run in thread.runs):
                await self._wait_thread_free(change, work)
                continue
            attempt = self._attempt_ids()
            settling.sent_at[attempt] = self._wall()
            self.journal.record(Intent(
                attempt, self._project, self.backend, change.thread_id, change.name,
                settling.sent_at[attempt],
            ))
            sends += 1
            try:
                run = await self.client.create_run(change.thread_id, _with_attempt(body, attempt))
            except ThreadBusyError:
                self.journal.resolve(attempt)
                busy_refusals += 1
                if busy_refusals > self.options.max_attempts:
                    raise
                sends -= 1  # refused outright: nothing was created
                self.hooks.progress(change.address, "thread became busy; reading it again")
                continue
            except AmbiguousResultError as exc:
                settling.deadlines[attempt] = self._wall() + self.options.settle_window
                settling.last_error = exc.api_message
                self.hooks.progress(
                    change.address, f"{exc.api_message}; looking for attempt {attempt}"
                )
                continue
            except ReconcilerError:
                self.journal.resolve(attempt)
                raise
            self.journal.resolve(attempt)
            self._resolve(settling)
            return _run_id(run, change), "created"

    def _foreign(self, change: Change, current: LiveRun) -> tuple[str, str]:
        """A run for this name that the plan did not see and no attempt of ours made."""
        body = change.create_request or {}
        wanted = identity.recorded_spec_hash(body.get("metadata") or {})
        if identity.recorded_spec_hash(current.metadata) == wanted:
            raise _CreatedMeanwhile(current.id)
        raise ReconcilerError(
            f"{change.address}: run {current.id} was created meanwhile by another apply, "
            "with another spec; nothing was created: run `reconciler plan` again"
        )

    def _pending(self, settling: _Settling) -> bool:
        now = self._wall()
        return any(deadline > now for deadline in settling.deadlines.values())

    async def _still_settling(self, settling: _Settling) -> bool:
        """Whether an attempt of this address may still appear; if so, wait a little."""
        if not self._pending(settling):
            return False
        await self._sleep(self.options.settle_poll)
        return True

    def _resolve(self, settling: _Settling) -> None:
        for attempt in settling.deadlines:
            self.journal.resolve(attempt)
        settling.deadlines.clear()

    async def _wait_thread_free(self, change: Change, work: _ThreadWork) -> None:
        """Wait until the thread has no active run, answering tool calls of our own runs.

        The newest run is the only one that can be active (the API refuses a new run while
        one is), so one small request per poll is enough.
        """
        announced = False
        while True:
            latest = await self.client.list_latest_run(change.thread_id)
            if latest is None or latest.get("status") not in ACTIVE_STATUSES:
                return
            run_id = str(latest.get("id"))
            status = str(latest.get("status"))
            if status == RunStatus.REQUIRES_ACTION:
                await self._answer_if_ours(work, latest)
            if not announced:
                self.hooks.progress(change.address, f"waiting for {run_id} ({status}) to finish")
                announced = True
            await self._pause(f"{change.address}: run {run_id} still {status} on the thread")

    async def _answer_if_ours(self, work: _ThreadWork, run: JSONObject) -> bool:
        followed = work.followed.get(str(run.get("id")))
        calls = pending_tool_calls(run)
        if followed is None or not calls:
            return False
        missing = sorted({c.function_name for c in calls} - set(followed.answers))
        if missing:
            raise ReconcilerError(
                f"{followed.address}: run {followed.run_id} calls {', '.join(missing)}, "
                "which tool_outputs does not answer"
            )
        outputs = [
            {"tool_call_id": c.id, "output": followed.answers[c.function_name]} for c in calls
        ]
        with contextlib.suppress(AmbiguousResultError):  # the next poll shows if it was taken
            await self.client.submit_tool_outputs(work.thread_id, followed.run_id, outputs)
        self.hooks.progress(followed.address, f"answered {len(calls)} tool call(s)")
        return True

    async def _follow(self, work: _ThreadWork, followed: _Followed) -> WaitResult:
        """--wait: poll a run to its end, answering its tool calls from ``tool_outputs``."""
        last_status = ""
        try:
            while True:
                run = await self.client.get_run(work.thread_id, followed.run_id)
                status = str(run.get("status"))
                if status not in ACTIVE_STATUSES:
                    return WaitResult(followed.address, followed.run_id, status, _why(run))
                if status != last_status:
                    self.hooks.progress(followed.address, f"{followed.run_id} {status}")
                    last_status = status
                if status == RunStatus.REQUIRES_ACTION:
                    await self._answer_if_ours(work, run)
                await self._pause(f"{followed.address}: run {followed.run_id} still {status}")
        except ReconcilerError as exc:
            return WaitResult(followed.address, followed.run_id, last_status or "unknown", str(exc))

    async def _pause(self, what: str) -> None:
        if self._clock() >= self._deadline:
            raise WaitTimeoutError(f"timed out after {self.options.timeout:g}s: {what}")
        await self._sleep(self.options.poll_interval)


def _with_attempt(body: Mapping[str, Any], attempt: str) -> dict[str, Any]:
    """The create request carrying ``attempt`` in its reserved metadata."""
    metadata = dict(body.get("metadata") or {})
    metadata[identity.KEY_SPEC] = identity.with_attempt(
        metadata.get(identity.KEY_SPEC, ""), attempt
    )
    return {**body, "metadata": metadata}


def _run_id(run: Mapping[str, Any], change: Change) -> str:
    run_id = run.get("id")
    if not isinstance(run_id, str):
        raise ApiError("the server's new run has no id", operation=f"create {change.address}")
    return run_id


def _why(run: Mapping[str, Any]) -> str:
    error = run.get("last_error")
    if isinstance(error, Mapping) and error.get("message"):
        return str(error["message"])
    details = run.get("incomplete_details")
    if isinstance(details, Mapping) and details.get("reason"):
        return f"incomplete: {details['reason']}"
    return ""
