"""Live state: the runs of every thread the manifests name, as the planner needs them.

The shell around :mod:`reconciler.runs` (one reading of an API run): ``read_live_state``
lists each thread concurrently through the client, and ``plan_from_api`` plans each thread the
moment its runs arrive, so that planning CPU overlaps the other threads' requests instead of
following the last of them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from typing import Any

from reconciler.client import AssistantsClient
from reconciler.errors import NotFoundError
from reconciler.model import DesiredRun, LiveState, ThreadState
from reconciler.plan import Plan, PlanOptions, ThreadPlan, assemble, desired_by_thread, plan_thread
from reconciler.runs import thread_state


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


async def read_live_state(client: AssistantsClient, thread_ids: Iterable[str]) -> LiveState:
    """Read every named thread concurrently (the client bounds how many at once)."""
    ordered = list(dict.fromkeys(thread_ids))
    states = await asyncio.gather(*(read_thread(client, t) for t in ordered))
    return LiveState(threads={state.thread_id: state for state in states})


async def plan_from_api(
    client: AssistantsClient, desired: Sequence[DesiredRun], options: PlanOptions,
    *, threads: Sequence[str] = (),
) -> Plan:
    """Read every declared thread and plan it; the same plan as ``plan(desired, live)``.

    ``threads`` adds threads the manifests name without declaring a run on them (``runs: []``),
    so that their managed runs are still seen (and pruned with ``--prune``).
    """
    groups = desired_by_thread(desired)
    for thread_id in threads:
        groups.setdefault(thread_id, [])

    async def one(thread_id: str, runs: list[DesiredRun]) -> ThreadPlan:
        return plan_thread(runs, await read_thread(client, thread_id), options,
                           thread_id=thread_id)

    parts = await asyncio.gather(*(one(t, runs) for t, runs in groups.items()))
    return assemble(parts, options)
