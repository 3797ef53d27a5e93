"""Executing a plan: the imperative shell around the plan value.

Threads proceed concurrently (the client bounds requests in flight); one thread's changes run
in the plan's order, and a failure stops the rest of that thread (they are reported as not
attempted, so a second ``apply`` converges). Creates never duplicate a run: an ambiguous
failure (a lost answer, a 5xx) is resolved by looking for the run by its reserved metadata
before any retry. Progress reaches the terminal through :class:`ApplyHooks`, never by printing.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from reconciler import identity
from reconciler.client import AssistantsClient, JSONObject
from reconciler.errors import (
    AmbiguousResultError,
    ApiError,
    BadRequestError,
    ReconcilerError,
    WaitTimeoutError,
)
from reconciler.live import pending_tool_calls
from reconciler.model import ACTIVE_STATUSES, TERMINAL_STATUSES
from reconciler.plan import Action, Change, Plan

#: Statuses a run ends in that mean it did not do its work.
UNSUCCESSFUL_STATUSES = frozenset({"failed", "expired", "incomplete", "cancelled"})


class Outcome(enum.Enum):
    APPLIED = "applied"
    FAILED = "failed"
    NOT_ATTEMPTED = "not attempted"


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
        return all(r.outcome is Outcome.APPLIED for r in self.results) and all(
            w.succeeded for w in self.waited
        )

    def summary(self) -> str:
        text = (
            f"Apply complete: {self.count(Outcome.APPLIED)} applied, "
            f"{self.count(Outcome.FAILED)} failed, "
            f"{self.count(Outcome.NOT_ATTEMPTED)} not attempted."
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
    max_attempts: int = 5  # re-tries of an action after an ambiguous failure


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


Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


class Applier:
    """Carries out one plan against one client."""

    def __init__(
        self,
        client: AssistantsClient,
        *,
        options: ApplyOptions | None = None,
        hooks: ApplyHooks | None = None,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.client = client
        self.options = options or ApplyOptions()
        self.hooks: ApplyHooks = hooks or SilentHooks()
        self._clock = clock
        self._sleep = sleep
        self._deadline = 0.0

    async def apply(self, plan: Plan) -> ApplyReport:
        self._deadline = self._clock() + self.options.timeout
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
            run_id = await self._create(change, work)
            work.followed[run_id] = _Followed(change.address, run_id, change.answers)
            notes.insert(0, f"created {run_id}")
            return run_id, "; ".join(notes)
        raise ReconcilerError(f"{change.address}: cannot apply action {change.action.value}")

    async def _cancel(self, thread: str, run_id: str) -> str:
        """Cancel a run; one that already ended or is cancelling counts as done."""
        for _ in range(self.options.max_attempts):
            try:
                run = await self.client.cancel_run(thread, run_id)
                return f"cancel requested (status {run.get('status')})"
            except AmbiguousResultError:
                run = await self.client.get_run(thread, run_id)
            except BadRequestError as exc:
                if "cannot cancel" not in exc.api_message.lower():
                    raise
                run = await self.client.get_run(thread, run_id)
                if run.get("status") in ACTIVE_STATUSES and run.get("status") != "cancelling":
                    raise
            status = str(run.get("status"))
            if status == "cancelling" or status in TERMINAL_STATUSES:
                return f"already {status}"
        raise ReconcilerError(
            f"could not cancel run {run_id} after {self.options.max_attempts} tries"
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
            except AmbiguousResultError:
                run = await self.client.get_run(thread, run_id)
                pending = {c.id for c in pending_tool_calls(run)}
                if run.get("status") != "requires_action" or not wanted & pending:
                    return "tool outputs accepted (confirmed after a lost answer)"
        raise ReconcilerError(
            f"could not submit tool outputs to {run_id} after {self.options.max_attempts} tries"
        )

    async def _create(self, change: Change, work: _ThreadWork) -> str:
        body = change.create_request
        if body is None:
            raise ReconcilerError(f"{change.address}: the plan has no create request")
        thread = change.thread_id
        # The plan says when the thread is busy; if it went busy since, the create is refused
        # ("already has an active run") and the next attempt waits first.
        busy = bool(change.wait_for or work.followed)
        for _ in range(self.options.max_attempts):
            if busy:
                await self._wait_thread_free(change, work)
            busy = True
            try:
                run = await self.client.create_run(thread, body)
                return _run_id(run, change)
            except AmbiguousResultError as exc:
                self.hooks.progress(change.address, f"{exc.api_message}; looking the run up")
                found = await self._find_created(change)
                if found is not None:
                    return found
            except BadRequestError as exc:
                if "already has an active run" not in exc.api_message:
                    raise
                self.hooks.progress(change.address, "thread became busy; waiting")
        raise ReconcilerError(
            f"{change.address}: could not create the run after {self.options.max_attempts} tries"
        )

    async def _find_created(self, change: Change) -> str | None:
        """After an ambiguous create: is the newest managed run of that name ours?"""
        body = change.create_request or {}
        metadata = body.get("metadata") or {}
        for run in await self.client.list_runs(change.thread_id):
            meta = run.get("metadata") or {}
            if (
                meta.get(identity.KEY_PROJECT) == metadata.get(identity.KEY_PROJECT)
                and meta.get(identity.KEY_NAME) == change.name
            ):
                if meta.get(identity.KEY_SPEC) == metadata.get(identity.KEY_SPEC):
                    return _run_id(run, change)
                return None
        return None

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
            if status == "requires_action":
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
                if status == "requires_action":
                    await self._answer_if_ours(work, run)
                await self._pause(f"{followed.address}: run {followed.run_id} still {status}")
        except ReconcilerError as exc:
            return WaitResult(followed.address, followed.run_id, last_status or "unknown", str(exc))

    async def _pause(self, what: str) -> None:
        if self._clock() >= self._deadline:
            raise WaitTimeoutError(f"timed out after {self.options.timeout:g}s: {what}")
        await self._sleep(self.options.poll_interval)


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
