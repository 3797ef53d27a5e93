"""In-memory fakes for the apply engine: a scripted Assistants client and a clock.

:class:`FakeClient` holds runs per thread as dicts shaped like the API's run objects and keeps
the API's own rules (one active run per thread, cancel only a cancellable run, tool outputs
only to a run waiting for them). Each test scripts the rest, request by request, with
:class:`Answer`: a lost answer, a late gateway commit, something happening just before. Time
is a :class:`FakeClock`: it moves only when slept on, and records every sleep; nothing really
sleeps and nothing goes over a network.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from reconciler import identity
from reconciler.apply import ActionResult, WaitResult
from reconciler.client import AssistantsClient, JSONObject
from reconciler.errors import (
    AmbiguousResultError,
    ApiError,
    NotFoundError,
    RunNotCancellableError,
    ThreadBusyError,
    ToolOutputsNotAcceptedError,
)
from reconciler.journal import Intent, MemoryJournal
from reconciler.model import ACTIVE_STATUSES, CANCELLABLE_STATUSES, CREATE_ONLY_FIELDS, LiveState
from reconciler.planning import Change
from reconciler.runs import thread_state

LOST_ANSWER = "the gateway answered 504 after the request was sent"


class FakeClock:
    """One ``now`` for ``clock`` and ``wall_clock``; only :meth:`sleep` moves it."""

    def __init__(self, start: float = 1000.0) -> None:
        self.start = start
        self.now = start
        self.sleeps: list[float] = []
        self._due: list[tuple[int, Callable[[], None]]] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        done = len(self.sleeps)
        due = [action for at, action in self._due if at <= done]
        self._due = [(at, action) for at, action in self._due if at > done]
        for action in due:
            action()
        await asyncio.sleep(0)  # let the other threads' tasks run; no time passes

    def after_sleeps(self, count: int, action: Callable[[], None]) -> None:
        """Do ``action`` once ``count`` more sleeps have happened (at once for 0)."""
        if count <= 0:
            action()
        else:
            self._due.append((len(self.sleeps) + count, action))


@dataclass(frozen=True)
class Answer:
    """How the fake server answers one scripted request (the default: normally)."""

    #: Raised instead of the answer (after the request took effect, if it does).
    error: type[ApiError] | None = None
    message: str = LOST_ANSWER
    #: Whether the request does its work on the server.
    takes_effect: bool = True
    #: ... only once this many more sleeps have happened: a gateway that commits late.
    after_sleeps: int = 0
    #: Something else that happens on the server just before this request arrives.
    before: Callable[[], None] | None = None


def lost(*, commits: bool, after_sleeps: int = 0, message: str = LOST_ANSWER) -> Answer:
    """An ambiguous answer: the request did (``commits``) or did not take effect."""
    return Answer(AmbiguousResultError, message, commits, after_sleeps)


def refused(error: type[ApiError], message: str) -> Answer:
    """A definite refusal: nothing happened on the server."""
    return Answer(error, message, takes_effect=False)


_STATUS = {
    NotFoundError: 404,
    ThreadBusyError: 400,
    RunNotCancellableError: 400,
    ToolOutputsNotAcceptedError: 400,
}


class FakeClient:
    """The client methods the applier calls, over runs held in memory.

    ``requests`` lists every request as ``(method, target)``: the thread for reads of a thread,
    ``thread/name`` for creates, the run id for requests on one run.
    """

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.threads: dict[str, list[JSONObject]] = {}
        self.requests: list[tuple[str, str]] = []
        self.create_bodies: list[JSONObject] = []  # every create body sent, in order
        self.accepted_outputs: list[tuple[str, list[dict[str, str]]]] = []  # (run id, outputs)
        #: Sleeps after an accepted cancel until the run is ``cancelled`` (None: never).
        self.cancel_takes: int | None = None
        self._scripts: dict[tuple[str, str], list[Answer]] = {}
        self._ids = 0
        self._created_at = 1_700_000_000

    # -- the test's side ----------------------------------------------------------------

    def as_client(self) -> AssistantsClient:
        return cast(AssistantsClient, self)

    def script(self, method: str, target: str, *answers: Answer) -> None:
        """Answer the next requests of ``method`` on ``target`` so, in order."""
        self._scripts.setdefault((method, target), []).extend(answers)

    def add_run(
        self,
        thread_id: str,
        body: Mapping[str, Any],
        *,
        status: str = "queued",
        run_id: str | None = None,
        created_at: int | None = None,
        required_action: JSONObject | None = None,
    ) -> JSONObject:
        """Put a run on a thread, as if created from ``body`` (no busy check)."""
        if run_id is None:
            self._ids += 1
            run_id = f"run_{self._ids:02d}"
        if created_at is None:
            self._created_at += 1
            created_at = self._created_at
        run: JSONObject = {
            "id": run_id,
            "object": "thread.run",
            "created_at": created_at,
            "thread_id": thread_id,
            "status": status,
            "required_action": required_action,
            "last_error": None,
            "incomplete_details": None,
            "tools": [],
            **{k: copy.deepcopy(v) for k, v in body.items()
               if k not in CREATE_ONLY_FIELDS and k != "metadata"},
            "metadata": dict(body.get("metadata") or {}),
        }
        self.threads.setdefault(thread_id, []).append(run)
        return run

    def run(self, run_id: str) -> JSONObject:
        for runs in self.threads.values():
            for run in runs:
                if run["id"] == run_id:
                    return run
        raise KeyError(run_id)

    def set_status(self, run_id: str, status: str) -> None:
        run = self.run(run_id)
        run["status"] = status
        if status != "requires_action":
            run["required_action"] = None

    def managed_runs(self, thread_id: str, name: str, project: str) -> list[JSONObject]:
        return [
            run for run in self.threads.get(thread_id, [])
            if identity.is_managed_by(run["metadata"], project)
            and run["metadata"][identity.KEY_NAME] == name
        ]

    def live(self, *thread_ids: str) -> LiveState:
        """The live state of the threads, through the same reduction as ``read_thread``."""
        return LiveState({
            t: thread_state(t, copy.deepcopy(self.threads.get(t, []))) for t in thread_ids
        })

    def count(self, method: str) -> int:
        return sum(1 for m, _ in self.requests if m == method)

    # -- the applier's side -------------------------------------------------------------

    async def list_runs(self, thread_id: str, *, page_size: int = 100) -> list[JSONObject]:
        await self._arrive("list_runs", thread_id)
        return [copy.deepcopy(r) for r in self._newest_first(thread_id)]

    async def list_latest_run(self, thread_id: str) -> JSONObject | None:
        await self._arrive("list_latest_run", thread_id)
        runs = self._newest_first(thread_id)
        return copy.deepcopy(runs[0]) if runs else None

    async def get_run(self, thread_id: str, run_id: str) -> JSONObject:
        await self._arrive("get_run", run_id)
        return copy.deepcopy(self._find(thread_id, run_id, "get run"))

    async def create_run(self, thread_id: str, body: Mapping[str, Any]) -> JSONObject:
        name = str((body.get("metadata") or {}).get(identity.KEY_NAME, ""))
        answer = await self._arrive("create_run", f"{thread_id}/{name}")
        self.create_bodies.append(copy.deepcopy(dict(body)))
        operation = f"create run on {thread_id}"
        busy = next((r for r in self.threads.get(thread_id, [])
                     if r["status"] in ACTIVE_STATUSES), None)
        if busy is not None:
            raise _error(
                ThreadBusyError,
                f"Thread {thread_id} already has an active run {busy['id']}.",
                operation,
            )
        created: list[JSONObject] = []
        if answer.takes_effect:
            frozen = copy.deepcopy(dict(body))
            self.clock.after_sleeps(
                answer.after_sleeps, lambda: created.append(self.add_run(thread_id, frozen))
            )
        if answer.error is not None:
            raise _error(answer.error, answer.message, operation)
        assert created, "a create that answers normally must take effect at once"
        return copy.deepcopy(created[0])

    async def modify_run(
        self, thread_id: str, run_id: str, metadata: Mapping[str, str]
    ) -> JSONObject:
        answer = await self._arrive("modify_run", run_id)
        run = self._find(thread_id, run_id, f"modify run {run_id}")
        if answer.takes_effect:
            run["metadata"] = dict(metadata)
        if answer.error is not None:
            raise _error(answer.error, answer.message, f"modify run {run_id}")
        return copy.deepcopy(run)

    async def cancel_run(self, thread_id: str, run_id: str) -> JSONObject:
        answer = await self._arrive("cancel_run", run_id)
        operation = f"cancel run {run_id}"
        run = self._find(thread_id, run_id, operation)
        if run["status"] not in CANCELLABLE_STATUSES:
            raise _error(
                RunNotCancellableError,
                f"Cannot cancel run with status '{run['status']}'.",
                operation,
            )
        if answer.takes_effect:
            self.set_status(run_id, "cancelling")
            if self.cancel_takes is not None:
                self.clock.after_sleeps(
                    self.cancel_takes, lambda: self.set_status(run_id, "cancelled")
                )
        if answer.error is not None:
            raise _error(answer.error, answer.message, operation)
        return copy.deepcopy(run)

    async def submit_tool_outputs(
        self, thread_id: str, run_id: str, outputs: list[dict[str, str]]
    ) -> JSONObject:
        answer = await self._arrive("submit_tool_outputs", run_id)
        operation = f"submit tool outputs to run {run_id}"
        run = self._find(thread_id, run_id, operation)
        if run["status"] != "requires_action":
            raise _error(
                ToolOutputsNotAcceptedError,
                f"Runs in status \"{run['status']}\" do not accept tool outputs.",
                operation,
            )
        if answer.takes_effect:
            self.accepted_outputs.append((run_id, copy.deepcopy(outputs)))
            self.set_status(run_id, "in_progress")
        if answer.error is not None:
            raise _error(answer.error, answer.message, operation)
        return copy.deepcopy(run)

    # -- inside -------------------------------------------------------------------------

    async def _arrive(self, method: str, target: str) -> Answer:
        """Log the request, yield to the other tasks, and take its scripted answer."""
        self.requests.append((method, target))
        await asyncio.sleep(0)
        queue = self._scripts.get((method, target))
        answer = queue.pop(0) if queue else Answer()
        if answer.before is not None:
            answer.before()
        return answer

    def _newest_first(self, thread_id: str) -> list[JSONObject]:
        runs = self.threads.get(thread_id, [])
        return sorted(runs, key=lambda r: (r["created_at"], r["id"]), reverse=True)

    def _find(self, thread_id: str, run_id: str, operation: str) -> JSONObject:
        for run in self.threads.get(thread_id, []):
            if run["id"] == run_id:
                return run
        raise _error(NotFoundError, f"No run found with id '{run_id}'.", operation)


def _error(kind: type[ApiError], message: str, operation: str) -> ApiError:
    return kind(message, status=_STATUS.get(kind), operation=operation)


class RecordingJournal(MemoryJournal):
    """A memory journal that also logs each ``record`` and ``resolve``, in order."""

    def __init__(self, intents: Iterable[Intent] = ()) -> None:
        super().__init__()
        for intent in intents:
            super().record(intent)
        self.log: list[tuple[str, str]] = []

    def record(self, intent: Intent) -> None:
        self.log.append(("record", intent.attempt_id))
        super().record(intent)

    def resolve(self, attempt_id: str) -> None:
        self.log.append(("resolve", attempt_id))
        super().resolve(attempt_id)


@dataclass
class RecordingHooks:
    """Apply hooks that keep what they are told."""

    started: list[str] = field(default_factory=list)
    finished: list[ActionResult] = field(default_factory=list)
    progress_messages: list[tuple[str, str]] = field(default_factory=list)
    runs: list[WaitResult] = field(default_factory=list)

    def action_started(self, change: Change) -> None:
        self.started.append(change.address)

    def action_finished(self, result: ActionResult) -> None:
        self.finished.append(result)

    def progress(self, address: str, message: str) -> None:
        self.progress_messages.append((address, message))

    def run_finished(self, result: WaitResult) -> None:
        self.runs.append(result)


class AttemptIds:
    """``attempt_ids`` for the applier: ``att01``, ``att02``, …, remembering each one issued."""

    def __init__(self) -> None:
        self.issued: list[str] = []

    def __call__(self) -> str:
        self.issued.append(f"att{len(self.issued) + 1:02d}")
        return self.issued[-1]
