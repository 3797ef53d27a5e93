"""Live state: the runs of every thread the manifests name, as the planner needs them.

``run_from_api`` is pure (an API run object → :class:`LiveRun`); ``read_live_state`` is the
shell around it that lists each thread concurrently through the client, and
``plan_from_api`` plans each thread the moment its runs arrive, so that planning CPU overlaps
the other threads' requests instead of following the last of them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from reconciler.client import AssistantsClient
from reconciler.errors import ApiError, NotFoundError
from reconciler.model import (
    CREATE_ONLY_FIELDS,
    RUN_FIELDS,
    RUN_STATUSES,
    DesiredRun,
    LiveRun,
    LiveState,
    ThreadState,
    ToolCall,
)
from reconciler.plan import Plan, PlanOptions, ThreadPlan, assemble, desired_by_thread, plan_thread

_ECHOED_FIELDS = tuple(f for f in RUN_FIELDS if f not in CREATE_ONLY_FIELDS)


class MalformedRunError(ApiError):
    """The API returned a run object reconciler cannot read."""


def run_from_api(obj: Mapping[str, Any], thread_id: str | None = None) -> LiveRun:
    """Reduce an API run object to what reconciling needs; refuse one that is unusable."""
    run_id = obj.get("id")
    status = obj.get("status")
    operation = f"read runs of {thread_id}" if thread_id else "read run"
    if not isinstance(run_id, str) or not run_id or not isinstance(status, str):
        raise MalformedRunError(
            "the server returned a run without a string 'id' and 'status'", operation=operation
        )
    if status not in RUN_STATUSES:
        raise MalformedRunError(
            f"the server returned run {_shown(run_id)} with status {_shown(status)!r}, which "
            "Assistants v2 does not define; refusing to plan from it",
            operation=operation,
        )
    raw_metadata = obj.get("metadata")
    metadata = (
        {str(k): str(v) for k, v in raw_metadata.items()}
        if isinstance(raw_metadata, Mapping)
        else {}
    )
    created_at = obj.get("created_at")
    fields = {name: obj[name] for name in _ECHOED_FIELDS if name in obj}
    return LiveRun(
        id=run_id,
        thread_id=str(obj.get("thread_id") or thread_id or ""),
        status=status,
        created_at=created_at if isinstance(created_at, int) else 0,
        metadata=metadata,
        fields=fields,
        pending_tool_calls=pending_tool_calls(obj) if status == "requires_action" else (),
    )


def _shown(text: str, limit: int = 80) -> str:
    """Server text inside one of our sentences: printable, one line, bounded."""
    clean = "".join(c if c.isprintable() else " " for c in text).strip()
    return clean if len(clean) <= limit else clean[: limit - 1] + "…"


def pending_tool_calls(obj: Mapping[str, Any]) -> tuple[ToolCall, ...]:
    """The function calls a ``requires_action`` run waits on (other shapes are ignored)."""
    action = obj.get("required_action")
    if not isinstance(action, Mapping):
        return ()
    submit = action.get("submit_tool_outputs")
    calls = submit.get("tool_calls") if isinstance(submit, Mapping) else None
    result: list[ToolCall] = []
    for call in calls if isinstance(calls, list) else []:
        if not isinstance(call, Mapping):
            continue
        function = call.get("function")
        if isinstance(call.get("id"), str) and isinstance(function, Mapping):
            result.append(
                ToolCall(
                    id=call["id"],
                    function_name=str(function.get("name", "")),
                    arguments=str(function.get("arguments", "")),
                )
            )
    return tuple(result)


def thread_state(thread_id: str, runs: Iterable[Mapping[str, Any]]) -> ThreadState:
    """A thread's runs, newest first whatever order the server used."""
    live = [run_from_api(obj, thread_id) for obj in runs]
    live.sort(key=lambda r: (r.created_at, r.id), reverse=True)
    return ThreadState(thread_id=thread_id, runs=tuple(live))


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
