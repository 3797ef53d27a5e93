"""Live state: the runs of every thread the manifests name, as the planner needs them.

The shell around :mod:`reconciler.runs` (one reading of an API run): ``read_live_state``
lists each thread concurrently through the client, and ``plan_from_api`` plans each thread the
moment its runs arrive, so that planning CPU overlaps the other threads' requests instead of
following the last of them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeAlias

from reconciler.client import AssistantsClient
from reconciler.errors import NotFoundError
from reconciler.model import DesiredRun, LiveState, ThreadState
from reconciler.planning import (
    Plan,
    PlanOptions,
    ThreadPlan,
    assemble,
    desired_by_thread,
    plan_thread,
)
from reconciler.runs import thread_state

#: Told ``(threads read so far, threads to read)`` as each thread's runs arrive: the hook a
#: progress view hangs on (this module prints nothing).
ThreadsRead: TypeAlias = Callable[[int, int], None]


def _counting(total: int, on_read: ThreadsRead | None) -> Callable[[], None]:
    """A function to call once per thread read, telling ``on_read`` the count so far."""
    done = 0
    if on_read is not None:
        on_read(0, total)

    def one_more() -> None:
        nonlocal done
        done += 1
        if on_read is not None:
            on_read(done, total)

    return one_more


async def list_thread_runs(client: AssistantsClient, thread_id: str) -> list[dict[str, Any]]:
    """A thread's runs as the API returns them; a missing thread is a clear error."""
    try:
        return await client.list_runs(thread_id)
    except NotFoundError as exc:
        raise NotFoundError(
            f"thread {thread_id} does not exist on the server ({exc.api_message})",
            status=exc.status,
            request_id=exc.request_id,
            operation=exc.operation,
            host=exc.host,
        ) from exc


async def read_thread(client: AssistantsClient, thread_id: str) -> ThreadState:
    """List one thread's runs, reduced to what planning needs."""
    return thread_state(thread_id, await list_thread_runs(client, thread_id))


async def read_live_state(client: AssistantsClient, thread_ids: Iterable[str], *,
                          on_read: ThreadsRead | None = None) -> LiveState:
    """Read every named thread concurrently (the client bounds how many at once)."""
    ordered = list(dict.fromkeys(thread_ids))
    one_more = _counting(len(ordered), on_read)

    async def one(thread_id: str) -> ThreadState:
        state = await read_thread(client, thread_id)
        one_more()
        return state

    states = await asyncio.gather(*(one(t) for t in ordered))
    return LiveState(threads={state.thread_id: state for state in states})


async def plan_from_api(
    client: AssistantsClient, desired: Sequence[DesiredRun], options: PlanOptions,
    *, threads: Sequence[str] = (), on_read: ThreadsRead | None = None,
) -> Plan:
    """Read every declared thread and plan it; the same plan as ``plan(desired, live)``.

    ``threads`` adds threads the manifests name without declaring a run on them (``runs: []``),
    so that their managed runs are still seen (and pruned with ``--prune``); ``on_read`` is
    told the count of threads read as each arrives.
    """
    groups = desired_by_thread(desired)
    for thread_id in threads:
        groups.setdefault(thread_id, [])
    one_more = _counting(len(groups), on_read)

    async def one(thread_id: str, runs: list[DesiredRun]) -> ThreadPlan:
        state = await read_thread(client, thread_id)
        one_more()
        return plan_thread(runs, state, options, thread_id=thread_id)

    parts = await asyncio.gather(*(one(t, runs) for t, runs in groups.items()))
    return assemble(parts, options)
