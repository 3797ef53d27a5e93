"""Executing a plan: the imperative shell around the plan value.

Threads proceed concurrently (the client bounds requests in flight); one thread's changes run
in the plan's order, and a failure stops the rest of that thread (they are reported as not
attempted, so a second ``apply`` converges). Each action is chosen by its payload's type.
Creates never duplicate a run (:mod:`reconciler.creates`). Decisions come from typed errors,
never from message text; runs are read through :mod:`reconciler.runs`. Progress reaches the
terminal through :class:`ApplyHooks`, never by printing.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from reconciler.changes import (
    Cancel,
    Change,
    Create,
    Modify,
    NoOp,
    Replace,
    SubmitToolOutputs,
    ToolOutput,
)
from reconciler.client import AssistantsClient
from reconciler.creates import (
    Clock,
    CreatedMeanwhile,
    CreateOptions,
    Creator,
    Sleep,
    new_attempt_id,
)
from reconciler.errors import (
    AmbiguousResultError,
    ReconcilerError,
    RunNotCancellableError,
    ToolOutputsNotAcceptedError,
    UnknownOutcomeError,
    WaitTimeoutError,
)
from reconciler.journal import Intent, IntentJournal, MemoryJournal
from reconciler.model import TERMINAL_STATUSES, LiveRun, RunStatus
from reconciler.outcomes import (
    ActionResult,
    ApplyHooks,
    ApplyReport,
    Outcome,
    SilentHooks,
    WaitResult,
)
from reconciler.planning import Plan
from reconciler.runs import run_from_api

__all__ = [
    "JOURNAL_HORIZON",
    "ActionResult",
    "Applier",
    "ApplyHooks",
    "ApplyOptions",
    "ApplyReport",
    "Outcome",
    "SilentHooks",
    "WaitResult",
    "new_attempt_id",
]


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


#: Unresolved journal records older than this are dropped: whatever they did has long shown.
JOURNAL_HORIZON = 7 * 86_400.0


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
        self._creator = self._new_creator("")

    def _new_creator(self, project: str) -> Creator:
        """The create engine for ``project``, knowing the journal's unresolved attempts."""
        earlier: dict[tuple[str, str], list[Intent]] = {}
        horizon = self._wall() - JOURNAL_HORIZON
        for intent in self.journal.pending(project, self.backend) if project else ():
            if intent.started_at < horizon:  # long settled either way: forget it
                self.journal.resolve(intent.attempt_id)
                continue
            earlier.setdefault((intent.thread_id, intent.name), []).append(intent)
        options = self.options
        return Creator(
            self.client, hooks=self.hooks, journal=self.journal, backend=self.backend,
            options=CreateOptions(options.max_attempts, options.settle_window,
                                  options.settle_poll),
            project=project, earlier=earlier, request_timeout=options.request_timeout,
            wall_clock=self._wall, sleep=self._sleep, attempt_ids=self._attempt_ids,
        )

    async def apply(self, plan: Plan) -> ApplyReport:
        self._deadline = self._clock() + self.options.timeout
        self._creator = self._new_creator(plan.options.project)
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
        """The thread's changes in plan order; a failure stops the rest of the thread.

        Consecutive metadata modifies are sent together: each touches its own run and none
        waits on the thread being free, so they need not wait for each other either (a
        thread of 20 modifies takes one round trip, not 20)."""
        results: list[ActionResult] = []
        stopped: str | None = None
        for batch in _batches(work.changes):
            if stopped is not None:
                results.extend(
                    ActionResult(change, Outcome.NOT_ATTEMPTED, change.run_id,
                                 f"not attempted: an earlier action on {work.thread_id} "
                                 f"failed ({stopped})")
                    for change in batch
                )
                continue
            done = await asyncio.gather(*(self._attempt(change, work) for change in batch))
            results.extend(done)
            failed = [r for r in done if r.outcome in (Outcome.FAILED, Outcome.UNKNOWN)]
            if failed:
                stopped = failed[0].change.address
        waits: list[WaitResult] = []
        if self.options.wait:
            for followed in work.followed.values():
                wait_result = await self._follow(work, followed)
                waits.append(wait_result)
                self.hooks.run_finished(wait_result)
        return results, waits

    async def _attempt(self, change: Change, work: _ThreadWork) -> ActionResult:
        """One change carried out, its outcome told to the hooks."""
        self.hooks.action_started(change)
        try:
            run_id, message = await self._execute(change, work)
            result = ActionResult(change, Outcome.APPLIED, run_id, message)
        except CreatedMeanwhile as exc:
            result = ActionResult(change, Outcome.SKIPPED, exc.run_id, str(exc))
        except UnknownOutcomeError as exc:
            result = ActionResult(change, Outcome.UNKNOWN, None, str(exc))
        except ReconcilerError as exc:
            result = ActionResult(change, Outcome.FAILED, change.run_id, str(exc))
        self.hooks.action_finished(result)
        return result

    # -- actions ----------------------------------------------------------------------------

    async def _execute(self, change: Change, work: _ThreadWork) -> tuple[str | None, str]:
        thread, payload, run_id = change.thread_id, change.payload, change.run_id
        if isinstance(payload, Cancel) and run_id is not None:
            return run_id, await self._cancel(thread, run_id)
        if isinstance(payload, Modify) and run_id is not None:
            await self.client.modify_run(thread, run_id, payload.metadata)
            return run_id, "metadata updated"
        if isinstance(payload, SubmitToolOutputs) and run_id is not None:
            message = await self._submit(thread, run_id, payload.tool_outputs)
            work.followed[run_id] = _Followed(change.address, run_id, {})
            return run_id, message
        if isinstance(payload, Create | Replace):
            notes: list[str] = []
            if isinstance(payload, Replace) and run_id is not None:
                notes.append(f"old run {run_id}: " + await self._cancel(thread, run_id))
            new_id, how = await self._creator.create(
                change, payload, lambda: self._wait_thread_free(change, work)
            )
            work.followed[new_id] = _Followed(change.address, new_id, payload.answers)
            notes.insert(0, f"{how} {new_id}")
            return new_id, "; ".join(notes)
        what = "nothing to do" if isinstance(payload, NoOp) else "no run to act on"
        raise ReconcilerError(f"{change.address}: cannot apply {change.action.value} ({what})")

    async def _cancel(self, thread: str, run_id: str) -> str:
        """Cancel a run; one that already ended or is cancelling counts as done."""
        last = ""
        for _ in range(self.options.max_attempts):
            try:
                run = run_from_api(await self.client.cancel_run(thread, run_id), thread)
                return f"cancel requested (status {run.status})"
            except (AmbiguousResultError, RunNotCancellableError) as exc:
                last = exc.api_message
                run = run_from_api(await self.client.get_run(thread, run_id), thread)
            if run.status == RunStatus.CANCELLING or run.status in TERMINAL_STATUSES:
                return f"already {run.status}"
        raise ReconcilerError(
            f"could not cancel run {run_id} after {self.options.max_attempts} tries "
            f"(last answer: {last})"
        )

    async def _submit(self, thread: str, run_id: str, tool_outputs: tuple[ToolOutput, ...]) -> str:
        outputs = [{"tool_call_id": o.tool_call_id, "output": o.output} for o in tool_outputs]
        wanted = {o.tool_call_id for o in tool_outputs}
        for _ in range(self.options.max_attempts):
            try:
                await self.client.submit_tool_outputs(thread, run_id, outputs)
                return f"answered {len(outputs)} tool call{'s' if len(outputs) != 1 else ''}"
            except (AmbiguousResultError, ToolOutputsNotAcceptedError) as exc:
                run = run_from_api(await self.client.get_run(thread, run_id), thread)
                pending = {c.id for c in run.pending_tool_calls}
                if run.status != RunStatus.REQUIRES_ACTION or not wanted & pending:
                    if isinstance(exc, AmbiguousResultError):
                        return "tool outputs accepted (confirmed after a lost answer)"
                    return f"no longer waiting for these outputs (status {run.status})"
        raise ReconcilerError(
            f"could not submit tool outputs to {run_id} after {self.options.max_attempts} tries"
        )

    async def _wait_thread_free(self, change: Change, work: _ThreadWork) -> None:
        """Wait until the thread has no active run, answering tool calls of our own runs.

        The newest run is the only one that can be active (the API refuses a new run while
        one is), so one small request per poll is enough.
        """
        announced = False
        while True:
            latest_obj = await self.client.list_latest_run(change.thread_id)
            latest = None if latest_obj is None else run_from_api(latest_obj, change.thread_id)
            if latest is None or not latest.is_active:
                return
            if latest.status == RunStatus.REQUIRES_ACTION:
                await self._answer_if_ours(work, latest)
            if not announced:
                self.hooks.progress(
                    change.address, f"waiting for {latest.id} ({latest.status}) to finish"
                )
                announced = True
            await self._pause(
                f"{change.address}: run {latest.id} still {latest.status} on the thread"
            )

    async def _answer_if_ours(self, work: _ThreadWork, run: LiveRun) -> bool:
        followed = work.followed.get(run.id)
        calls = run.pending_tool_calls
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
                obj = await self.client.get_run(work.thread_id, followed.run_id)
                run = run_from_api(obj, work.thread_id)
                if not run.is_active:
                    return WaitResult(followed.address, followed.run_id, run.status,
                                      run.ended_because)
                if run.status != last_status:
                    self.hooks.progress(followed.address, f"{followed.run_id} {run.status}")
                    last_status = run.status
                if run.status == RunStatus.REQUIRES_ACTION:
                    await self._answer_if_ours(work, run)
                await self._pause(f"{followed.address}: run {followed.run_id} still {run.status}")
        except ReconcilerError as exc:
            return WaitResult(followed.address, followed.run_id, last_status or "unknown", str(exc))

    async def _pause(self, what: str) -> None:
        if self._clock() >= self._deadline:
            raise WaitTimeoutError(f"timed out after {self.options.timeout:g}s: {what}")
        await self._sleep(self.options.poll_interval)


def _batches(changes: list[Change]) -> list[list[Change]]:
    """Changes in order, each consecutive run of metadata modifies as one batch."""
    batches: list[list[Change]] = []
    for change in changes:
        if (batches and isinstance(change.payload, Modify)
                and isinstance(batches[-1][-1].payload, Modify)):
            batches[-1].append(change)
        else:
            batches.append([change])
    return batches
