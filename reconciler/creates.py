"""Creating a run exactly once, whatever the network does: the heart of "no duplicates".

Every create carries a fresh attempt id in its reserved metadata and is recorded in the intent
journal before it is sent; an ambiguous failure (a timeout, a lost answer, a 5xx) is looked for
by that id through a settle window before anything is sent again, and the thread is read again
before every send. :class:`reconciler.apply.Applier` calls :meth:`Creator.create` for every
create and replace.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from reconciler import identity
from reconciler.changes import Change, Create, Replace
from reconciler.client import AssistantsClient
from reconciler.errors import (
    AmbiguousResultError,
    ApiError,
    ReconcilerError,
    ThreadBusyError,
    UnknownOutcomeError,
)
from reconciler.journal import Intent, IntentJournal
from reconciler.live import read_thread
from reconciler.model import LiveRun
from reconciler.outcomes import ApplyHooks
from reconciler.planning import index_thread

__all__ = ["Clock", "CreateOptions", "CreatedMeanwhile", "Creator", "Sleep", "new_attempt_id"]

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


class CreatedMeanwhile(ReconcilerError):
    """The name got its run from someone else between the plan and this create."""

    def __init__(self, run_id: str) -> None:
        super().__init__(f"created meanwhile by another apply ({run_id}); nothing to do")
        self.run_id = run_id


@dataclass
class _Settling:
    """Every create attempt of one address (this apply's and the journal's), each with the
    wall-clock time until which its run may still appear. Attempts are never forgotten while
    the address is worked on: a run landing after its window is still recognised as ours."""

    deadlines: dict[str, float] = field(default_factory=dict)
    sent_at: dict[str, float] = field(default_factory=dict)  # wall-clock time of each send
    last_error: str = ""
    sends: int = 0  # sends whose outcome counts (a busy thread's refusal does not)
    busy_refusals: int = 0

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


def new_attempt_id() -> str:
    """A create attempt id: 16 random hex digits, unique enough across every apply."""
    return uuid.uuid4().hex[:16]


@dataclass(frozen=True)
class CreateOptions:
    """The settle rules: how often to look, how long a create may take to show, how often
    to send (see :class:`reconciler.apply.ApplyOptions`, which they come from)."""

    max_attempts: int
    settle_window: float
    settle_poll: float


class Creator:
    """Creates runs of one project on one backend; ``earlier`` holds the journal's unresolved
    attempts by address, waited out before anything is sent for that address again."""

    def __init__(
        self, client: AssistantsClient, *, options: CreateOptions, hooks: ApplyHooks,
        journal: IntentJournal, backend: str, project: str,
        earlier: Mapping[tuple[str, str], list[Intent]], request_timeout: float,
        wall_clock: Clock, sleep: Sleep, attempt_ids: Callable[[], str],
    ) -> None:
        self.client = client
        self.options = options
        self.hooks = hooks
        self.journal = journal
        self.backend = backend
        self._project = project
        self._earlier = earlier
        self._grace = request_timeout + options.settle_window
        self._wall = wall_clock
        self._sleep = sleep
        self._attempt_ids = attempt_ids

    async def create(
        self, change: Change, payload: Create | Replace, wait_free: Callable[[], Awaitable[None]]
    ) -> tuple[str, str]:
        """Create the run once, whatever the network does: the heart of "no duplicates".

        Before every send the thread is read again: a run that appeared for this name since
        the plan is ours (an earlier attempt's, found by its attempt id) or another apply's
        (skipped). A send whose outcome is ambiguous is looked for through the settle window
        before anything is sent again; a thread found busy is waited on and read again.
        """
        settling = self._settling(change)
        while True:
            thread = await read_thread(self.client, change.thread_id)
            current_runs, by_name = index_thread(thread, self._project)
            current = current_runs.get(change.name)
            if current is not None and current.id != change.run_id:
                found = await self._judge(change, payload, settling, current, by_name[change.name])
                if found is None:
                    continue  # another send of ours may still land: see it before judging
                return found
            if await self._still_settling(settling):
                continue
            if settling.sends >= self.options.max_attempts:  # its attempts stay in the journal
                raise UnknownOutcomeError(
                    f"{change.address}: the create may or may not have made a run "
                    f"({settling.last_error}); no run with its attempt id appeared within "
                    f"the {self.options.settle_window:g}s settle window after {settling.sends} "
                    f"tr{'ies' if settling.sends != 1 else 'y'}: run `reconciler plan` later to "
                    "see whether it did"
                )
            if any(run.is_active for run in thread.runs):
                await wait_free()
                continue
            run_id = await self._send(change, payload, settling)
            if run_id is not None:
                return run_id, "created"

    def _settling(self, change: Change) -> _Settling:
        """The address's attempts so far: those an earlier apply's journal left unresolved."""
        settling = _Settling()
        for intent in self._earlier.get((change.thread_id, change.name), []):
            settling.deadlines[intent.attempt_id] = intent.started_at + self._grace
            settling.sent_at[intent.attempt_id] = intent.started_at
        if settling.deadlines:
            self.hooks.progress(
                change.address, "an earlier apply may have created this run; looking for it"
            )
        return settling

    async def _judge(
        self, change: Change, payload: Create | Replace, settling: _Settling, current: LiveRun,
        named: list[LiveRun],
    ) -> tuple[str, str] | None:
        """A current run for the name that the plan did not see: ours, a twin, or foreign.

        ``None`` while another attempt of ours may still land.
        """
        attempt = identity.attempt_of(current.metadata) or ""
        if attempt not in settling.deadlines:
            self._resolve(settling)
            return self._foreign(change, payload, current)
        settling.landed(attempt, self._wall(), self.options.settle_window)
        if await self._still_settling(settling):
            return None
        ours = [r.id for r in named if identity.attempt_of(r.metadata) in settling.deadlines]
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

    async def _send(
        self, change: Change, payload: Create | Replace, settling: _Settling
    ) -> str | None:
        """One create attempt, journaled first; the new run's id, or None to look again."""
        attempt = self._attempt_ids()
        settling.sent_at[attempt] = self._wall()
        self.journal.record(Intent(
            attempt, self._project, self.backend, change.thread_id, change.name,
            settling.sent_at[attempt],
        ))
        settling.sends += 1
        body = _with_attempt(payload.create_request, attempt)
        try:
            run = await self.client.create_run(change.thread_id, body)
        except ThreadBusyError:
            self.journal.resolve(attempt)
            settling.busy_refusals += 1
            if settling.busy_refusals > self.options.max_attempts:
                raise
            settling.sends -= 1  # refused outright: nothing was created
            self.hooks.progress(change.address, "thread became busy; reading it again")
            return None
        except AmbiguousResultError as exc:
            settling.deadlines[attempt] = self._wall() + self.options.settle_window
            settling.last_error = exc.api_message
            self.hooks.progress(change.address, f"{exc.api_message}; looking for attempt {attempt}")
            return None
        except ReconcilerError:
            self.journal.resolve(attempt)
            raise
        self.journal.resolve(attempt)
        self._resolve(settling)
        return _run_id(run, change)

    def _foreign(
        self, change: Change, payload: Create | Replace, current: LiveRun
    ) -> tuple[str, str]:
        """A run for this name that the plan did not see and no attempt of ours made."""
        wanted = identity.recorded_spec_hash(payload.create_request.get("metadata") or {})
        if identity.recorded_spec_hash(current.metadata) == wanted:
            raise CreatedMeanwhile(current.id)
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


def _with_attempt(body: Mapping[str, Any], attempt: str) -> dict[str, Any]:
    """The create request carrying ``attempt`` in its reserved metadata."""
    metadata = dict(body.get("metadata") or {})
    metadata[identity.KEY_SPEC] = identity.with_attempt(
        metadata.get(identity.KEY_SPEC, ""), attempt
    )
    return {**body, "metadata": metadata}


def _run_id(run: Mapping[str, Any], change: Change) -> str:
    """The new run's id: all a create's answer must give (its run is read again later)."""
    run_id = run.get("id")
    if not isinstance(run_id, str):
        raise ApiError("the server's new run has no id", operation=f"create {change.address}")
    return run_id

