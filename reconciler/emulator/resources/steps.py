"""Run steps: list and retrieve a run's steps, derived from its record rather than stored.

A run that called functions has a ``tool_calls`` step from the moment it asked for outputs;
a run that replied has a ``message_creation`` step naming the reply. Their ids were fixed
when the run was created.
"""

from __future__ import annotations

from collections.abc import Mapping

from reconciler.emulator.errors import not_found
from reconciler.emulator.machine import Phase
from reconciler.emulator.resources.common import (
    JSON,
    Body,
    Context,
    Operation,
    page_in_memory,
    seconds,
)
from reconciler.emulator.resources.runs import course, phase, run_record, usage

_TOOL_STEP_USAGE = {"prompt_tokens": 40, "completion_tokens": 12, "total_tokens": 52}


def run_steps(ctx: Context, record: Mapping[str, JSON], current: Phase) -> list[Body]:
    """A run's steps in phase ``current``: its tool calls, then its reply message."""
    steps: list[Body] = []
    if record["calls"] and current.requires_action_at is not None:
        steps.append(tool_calls_step(record, current))
    if record["reply_message_id"] is not None:
        replying = course(ctx, record).replying_at
        steps.append(message_step(record, record["reply_message_id"],
                                  replying if replying is not None else 0.0,
                                  finished=current.finished_at))
    return steps


def _base(record: Mapping[str, JSON]) -> Body:
    run = record["run"]
    return {
        "object": "thread.run.step",
        "assistant_id": run["assistant_id"],
        "thread_id": run["thread_id"],
        "run_id": run["id"],
        "last_error": None,
        "expired_at": None,
        "cancelled_at": None,
        "failed_at": None,
        "completed_at": None,
        "metadata": {},
        "usage": None,
    }


def message_step(record: Mapping[str, JSON], message_id: str, created: float, *,
                 finished: float | None) -> Body:
    """The step that writes a run's reply: in progress until ``finished`` is known."""
    step: Body = {
        **_base(record),
        "id": record["steps"][1],
        "created_at": seconds(created),
        "type": "message_creation",
        "status": "in_progress",
        "step_details": {
            "type": "message_creation",
            "message_creation": {"message_id": message_id},
        },
    }
    if finished is not None:
        step.update(status="completed", completed_at=seconds(finished), usage=usage(record))
    return step


def tool_calls_step(record: Mapping[str, JSON], current: Phase) -> Body:
    """The step that called the run's functions, with the outputs once they are in."""
    outputs = record["outputs"] or {}
    submitted = record["clock"]["outputs_submitted"]
    step = {
        **_base(record),
        "id": record["steps"][0],
        "created_at": seconds(current.requires_action_at),
        "type": "tool_calls",
        "status": "in_progress",
        "step_details": {
            "type": "tool_calls",
            "tool_calls": [
                {**call, "function": {**call["function"], "output": outputs.get(call["id"])}}
                for call in record["calls"]
            ],
        },
    }
    if submitted is not None:
        step.update(status="completed", completed_at=seconds(submitted),
                    usage=dict(_TOOL_STEP_USAGE))
    elif current.status in {"cancelled", "expired"}:
        key = "cancelled_at" if current.status == "cancelled" else "expired_at"
        step.update(status=current.status, **{key: seconds(current.finished_at)})
    return step


def list_run_steps(ctx: Context, *, thread_id: str, run_id: str, now: float,
                   query: Mapping[str, str], **_: JSON) -> JSON:
    record = run_record(ctx, thread_id, run_id, now)
    return page_in_memory(run_steps(ctx, record, phase(ctx, record, now)), query)


def get_run_step(ctx: Context, *, thread_id: str, run_id: str, step_id: str, now: float,
                 **_: JSON) -> JSON:
    record = run_record(ctx, thread_id, run_id, now)
    for step in run_steps(ctx, record, phase(ctx, record, now)):
        if step["id"] == step_id:
            return step
    raise not_found("step", step_id)


OPERATIONS: dict[str, Operation] = {
    "listRunSteps": list_run_steps,
    "getRunStep": get_run_step,
}
