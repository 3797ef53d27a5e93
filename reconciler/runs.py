"""One reading of an API run: the run object from the wire → a typed :class:`LiveRun`.

Pure. Everything that acts on runs (planning, apply, export) reads them through here, so a
run the API describes wrongly is refused in one place, with one sentence, instead of being
acted on.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from reconciler.errors import ApiError
from reconciler.model import (
    CREATE_ONLY_FIELDS,
    RUN_FIELDS,
    RUN_STATUSES,
    LiveRun,
    RunStatus,
    ThreadState,
    ToolCall,
)

__all__ = [
    "MalformedRunError", "ended_because", "pending_tool_calls", "run_from_api", "thread_state",
]

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
        pending_tool_calls=pending_tool_calls(obj) if status == RunStatus.REQUIRES_ACTION else (),
        ended_because=ended_because(obj) if status in _ENDED_BADLY else "",
    )


#: Statuses whose run object says why: ``last_error`` or ``incomplete_details``.
_ENDED_BADLY = frozenset({RunStatus.FAILED, RunStatus.INCOMPLETE, RunStatus.EXPIRED})


def ended_because(obj: Mapping[str, Any]) -> str:
    """Why a run ended badly, in the API's words; empty when the object does not say."""
    error = obj.get("last_error")
    if isinstance(error, Mapping) and error.get("message"):
        return _shown(str(error["message"]), 300)
    details = obj.get("incomplete_details")
    if isinstance(details, Mapping) and details.get("reason"):
        return f"incomplete: {_shown(str(details['reason']))}"
    return ""


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


