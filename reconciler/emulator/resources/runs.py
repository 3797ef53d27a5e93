"""Runs: create (on a thread, or with a new thread), retrieve, list, modify, cancel, submit
tool outputs — and how runs move.

A run's status is never stored while it is moving: ``phase`` derives it from the run's clock
and the configured timing (``reconciler.emulator.machine``). ``settle`` materialises what
finished runs leave behind (the reply message, the final phase) the first time a request
touches their thread, and tells whether a run is still active there (one per thread, as the
service enforced). ``render`` shows a stored run record in the spec's ``RunObject`` shape;
a settled run never changes again unless written, so ``render_stored`` answers it from its
encoding cached against the stored text (``reconciler.emulator.encoded``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import asdict

from reconciler.emulator.encoded import Encoded
from reconciler.emulator.errors import bad_request
from reconciler.emulator.machine import (
    Course,
    Outcome,
    Phase,
    RunClock,
    course_of,
    derive,
    outcome_from_markers,
)
from reconciler.emulator.resources.assistants import assistant_or_404
from reconciler.emulator.resources.common import (
    JSON,
    Body,
    Context,
    Operation,
    fetch,
    fetch_text,
    first,
    page_stored,
    seconds,
)
from reconciler.emulator.resources.threads import (
    build_message,
    insert_message,
    insert_thread,
    store_message,
    thread_or_404,
)

_CANCELLABLE = frozenset({"queued", "in_progress", "requires_action"})


# ---------------------------------------------------------------------------------- lifecycle


def phase(ctx: Context, record: Mapping[str, JSON], now: float) -> Phase:
    """A run's status at ``now``: its final phase once settled, else derived from its clock."""
    if record["final"] is not None:
        return Phase(**record["final"])
    return derive(RunClock(**record["clock"]), Outcome(**record["outcome"]), ctx.timing, now)


def settle(ctx: Context, thread_id: str, now: float) -> str | None:
    """Materialise what finished runs leave behind; return the id of a still-active run."""
    still_active = None
    for record in ctx.store.active("runs", thread_id):
        current = phase(ctx, record, now)
        if not current.terminal:
            still_active = record["run"]["id"]
            continue
        if current.status in {"completed", "incomplete"}:
            reply = reply_message(ctx, record, current)
            store_message(ctx, reply)
            record["reply_message_id"] = reply["id"]
        record["final"] = asdict(current)
        run_id = record["run"]["id"]
        stored = ctx.store.update("runs", run_id, record, active=False)
        # how every later list or get shows it: encoded now, while the record is at hand
        ctx.rendered.keep(run_id, stored, render(record, current))
    return still_active


def refuse_if_active(ctx: Context, thread_id: str, now: float, message: str) -> None:
    """The service's 400 when the thread has an active run (``message`` names both)."""
    active = settle(ctx, thread_id, now)
    if active is not None:
        raise bad_request(message.format(thread=thread_id, run=active))


def run_record(ctx: Context, thread_id: str, run_id: str, now: float) -> Body:
    """A run's stored record, its thread settled first; 404 for the thread or the run."""
    thread_or_404(ctx, thread_id)
    settle(ctx, thread_id, now)
    return fetch(ctx, "runs", run_id, parent=thread_id)


def render(record: Mapping[str, JSON], current: Phase) -> Body:
    """A run record in phase ``current``, as the API shows a run."""
    run: Body = dict(record["run"])  # nested values are never mutated
    outcome = record["outcome"]
    status = current.status
    run.update({
        "status": status,
        "started_at": seconds(current.started_at),
        "completed_at": seconds(current.completed_at),
        "cancelled_at": seconds(current.cancelled_at),
        "failed_at": seconds(current.failed_at),
        "required_action": None,
        "last_error": None,
        "incomplete_details": None,
        "usage": usage(record) if current.terminal else None,
    })
    if status == "requires_action":
        run["required_action"] = {
            "type": "submit_tool_outputs",
            "submit_tool_outputs": {"tool_calls": record["calls"]},
        }
    elif status == "failed":
        run["last_error"] = {"code": outcome["error_code"], "message": outcome["error_message"]}
    elif status == "incomplete":
        run["incomplete_details"] = {"reason": outcome["incomplete_reason"]}
    if current.terminal and status != "expired":
        run["expires_at"] = None
    return run


def usage(record: Mapping[str, JSON]) -> Body:
    """Token counts for a finished run (or its reply step): fixed arithmetic on its size."""
    run = record["run"]
    prompt = 50 + len(run["instructions"]) // 4 + 30 * len(record["calls"])
    completion = 20 + 10 * len(record["calls"])
    if record["outcome"]["status"] == "incomplete":
        completion = run.get("max_completion_tokens") or 256
    return {"prompt_tokens": prompt, "completion_tokens": completion,
            "total_tokens": prompt + completion}


def course(ctx: Context, record: Mapping[str, JSON]) -> Course:
    """The instants of a run's natural course under the configured timing."""
    return course_of(RunClock(**record["clock"]), ctx.timing)


def reply_message(ctx: Context, record: Mapping[str, JSON], current: Phase) -> Body:
    """The assistant message a finished run leaves on its thread (``current``: its ending).

    Its id was fixed when the run was created (records from before that get a fresh one),
    so a stream can name the message while the run is still writing it.
    """
    run = record["run"]
    replying = course(ctx, record).replying_at
    finished = current.finished_at
    status = "incomplete" if current.status == "incomplete" else "completed"
    return build_message(
        record.get("reply_id") or ctx.new_id("msg_"), run["thread_id"],
        {"role": "assistant", "content": reply_text(record)},
        replying if replying is not None else (finished or 0.0),
        assistant_id=run["assistant_id"], run_id=run["id"], status=status,
        incomplete_reason="max_tokens" if status == "incomplete" else None,
        finished=finished,
    )


def reply_text(record: Mapping[str, JSON]) -> str:
    """What a finished run answers: its id and what its function calls returned."""
    run = record["run"]
    text = f"Run {run['id']} finished on the reconciler emulator."
    outputs = record["outputs"] or {}
    for call in record["calls"]:
        output = outputs.get(call["id"])
        if output is not None:
            text += f" {call['function']['name']} returned {output[:200]}"
    return text


# ---------------------------------------------------------------------------------- creation


def _start_run(ctx: Context, thread_id: str, body: Mapping[str, JSON], now: float) -> JSON:
    assistant = assistant_or_404(ctx, body["assistant_id"])
    refuse_if_active(ctx, thread_id, now, "Thread {thread} already has an active run {run}.")
    for message in body.get("additional_messages") or []:
        insert_message(ctx, thread_id, message, now)
    run = _new_run(ctx.new_id("run_"), thread_id, body, assistant, now, ctx.timing.expires_after)
    calls = _plan_tool_calls(ctx, run)
    outcome = outcome_from_markers(body.get("additional_instructions"), run["instructions"])
    run_id = run["id"]
    record = {
        "run": run,
        "clock": {"created": now, "expires_at": float(run["expires_at"]),
                  "calls_functions": bool(calls), "outputs_submitted": None,
                  "cancel_requested": None},
        "outcome": asdict(outcome),
        "calls": calls,
        "outputs": None,
        # step ids share the run's unique serial: no extra allocation per run
        "steps": [f"step_{run_id[4:-1]}T", f"step_{run_id[4:-1]}M"],
        "reply_id": f"msg_{run_id[4:-1]}R",
        "reply_message_id": None,
        "final": None,
    }
    ctx.store.insert("runs", run_id, record, parent=thread_id, active=True)
    return render(record, Phase("queued"))


def _new_run(run_id: str, thread_id: str, body: Mapping[str, JSON], assistant: Mapping[str, JSON],
             now: float, expires_after: float) -> Body:
    """The run a create request describes: its own settings, else the assistant's, else defaults."""
    tools = body["tools"] if body.get("tools") is not None else assistant["tools"]
    instructions = body.get("instructions")
    if instructions is None:
        instructions = assistant.get("instructions") or ""
    parallel = body.get("parallel_tool_calls")
    return {
        "id": run_id,
        "object": "thread.run",
        "created_at": math.floor(now),
        "thread_id": thread_id,
        "assistant_id": assistant["id"],
        "expires_at": math.floor(now + expires_after),
        "model": body.get("model") or assistant["model"],
        "instructions": instructions,
        "tools": tools,
        "metadata": body.get("metadata") or {},
        "temperature": first(body.get("temperature"), assistant.get("temperature"), 1.0),
        "top_p": first(body.get("top_p"), assistant.get("top_p"), 1.0),
        "max_prompt_tokens": body.get("max_prompt_tokens"),
        "max_completion_tokens": body.get("max_completion_tokens"),
        "truncation_strategy": body.get("truncation_strategy")
        or {"type": "auto", "last_messages": None},
        "tool_choice": body.get("tool_choice") or "auto",
        "parallel_tool_calls": True if parallel is None else bool(parallel),
        "response_format": body.get("response_format") or assistant.get("response_format")
        or "auto",
    }


def _plan_tool_calls(ctx: Context, run: Mapping[str, JSON]) -> list[Body]:
    """The function calls a run will ask for, decided at creation so they are stable."""
    choice = run["tool_choice"]
    functions = [t["function"] for t in run["tools"] if t.get("type") == "function"]
    if choice == "none" or not functions:
        return []
    if isinstance(choice, dict):
        if choice.get("type") != "function":
            return []
        wanted = (choice.get("function") or {}).get("name")
        functions = [f for f in functions if f["name"] == wanted][:1]
    elif not run["parallel_tool_calls"]:
        functions = functions[:1]
    return [
        {
            "id": ctx.new_id("call_"),
            "type": "function",
            "function": {"name": f["name"], "arguments": _sample_arguments(f)},
        }
        for f in functions
    ]


def _sample_arguments(function: Mapping[str, JSON]) -> str:
    """Plausible JSON arguments for a function, from its parameters schema; deterministic."""
    parameters = function.get("parameters") or {}
    properties = parameters.get("properties") if isinstance(parameters, dict) else None
    if not isinstance(properties, dict):
        return "{}"
    values = {name: _sample(schema) for name, schema in properties.items()}
    return json.dumps(values, sort_keys=True)


def _sample(schema: JSON) -> JSON:
    if not isinstance(schema, dict):
        return None
    if schema.get("enum"):
        return schema["enum"][0]
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), None)
    samples: dict[str, JSON] = {
        "string": "example", "integer": 1, "number": 1.0, "boolean": True, "array": [],
        "object": {}, "null": None,
    }
    return samples.get(kind, "example") if isinstance(kind, str) else "example"


# ---------------------------------------------------------------------------------- operations


def create_run(ctx: Context, *, thread_id: str, now: float, body: Body, **_: JSON) -> JSON:
    thread_or_404(ctx, thread_id)
    return _start_run(ctx, thread_id, body, now)


def create_thread_and_run(ctx: Context, *, now: float, body: Body, **_: JSON) -> JSON:
    assistant_or_404(ctx, body["assistant_id"])
    thread_request = dict(body.get("thread") or {})
    if body.get("tool_resources") and not thread_request.get("tool_resources"):
        thread_request["tool_resources"] = body["tool_resources"]
    thread = insert_thread(ctx, ctx.new_id("thread_"), thread_request, now)
    run_request = {k: v for k, v in body.items() if k not in {"thread", "tool_resources"}}
    return _start_run(ctx, thread["id"], run_request, now)


def get_run(ctx: Context, *, thread_id: str, run_id: str, now: float, **_: JSON) -> JSON:
    thread_or_404(ctx, thread_id)
    settle(ctx, thread_id, now)
    return render_stored(ctx, run_id, fetch_text(ctx, "runs", run_id, parent=thread_id), now)


def list_runs(ctx: Context, *, thread_id: str, now: float, query: Mapping[str, str],
              **_: JSON) -> JSON:
    thread_or_404(ctx, thread_id)
    settle(ctx, thread_id, now)
    return page_stored(ctx, "runs", thread_id, query,
                       render=lambda run_id, stored: render_stored(ctx, run_id, stored, now))


def render_stored(ctx: Context, run_id: str, stored: str, now: float) -> Body | Encoded:
    """A run as the API shows it at ``now``, from its stored JSON text.

    A settled run (``final`` set by ``settle``) shows the same at every instant, so its
    encoded rendering is cached against that text; a moving run is rendered afresh.
    """
    kept = ctx.rendered.cached(run_id, stored)
    if kept is not None:  # made from this very text, which was settled then, so it is now
        return kept
    record = json.loads(stored)
    if record["final"] is None:
        return render(record, phase(ctx, record, now))
    return ctx.rendered.keep(run_id, stored, render(record, Phase(**record["final"])))


def modify_run(ctx: Context, *, thread_id: str, run_id: str, now: float, body: Body,
               **_: JSON) -> JSON:
    record = run_record(ctx, thread_id, run_id, now)
    if "metadata" in body:
        record["run"]["metadata"] = body["metadata"] or {}
        stored = ctx.store.update("runs", run_id, record)
        if record["final"] is not None:  # what the next list or get of it answers, too
            return ctx.rendered.keep(run_id, stored, render(record, Phase(**record["final"])))
    return render(record, phase(ctx, record, now))


def cancel_run(ctx: Context, *, thread_id: str, run_id: str, now: float, **_: JSON) -> JSON:
    record = run_record(ctx, thread_id, run_id, now)
    current = phase(ctx, record, now)
    if current.status not in _CANCELLABLE:
        raise bad_request(f"Cannot cancel run with status '{current.status}'.")
    record["clock"]["cancel_requested"] = now
    ctx.store.update("runs", run_id, record)
    return render(record, Phase("cancelling", started_at=current.started_at))


def submit_tool_outputs(ctx: Context, *, thread_id: str, run_id: str, now: float, body: Body,
                        **_: JSON) -> JSON:
    record = run_record(ctx, thread_id, run_id, now)
    current = phase(ctx, record, now)
    if current.status != "requires_action":
        raise bad_request(f'Runs in status "{current.status}" do not accept tool outputs.')
    record["outputs"] = _tool_outputs(body["tool_outputs"], record["calls"])
    record["clock"]["outputs_submitted"] = now
    ctx.store.update("runs", run_id, record)
    return render(record, Phase("queued", started_at=current.started_at))


def _tool_outputs(items: list[Body], calls: list[Body]) -> dict[str, str]:
    """The submitted outputs by call id; 400 unless there is exactly one per call."""
    outputs: dict[str, str] = {}
    for index, item in enumerate(items):
        for key in ("tool_call_id", "output"):
            if key not in item:
                raise bad_request(
                    f"Missing required parameter: 'tool_outputs[{index}].{key}'.",
                    param=f"tool_outputs[{index}].{key}", code="missing_required_parameter",
                )
        outputs[item["tool_call_id"]] = item["output"]
    expected = [call["id"] for call in calls]
    if sorted(outputs) != sorted(expected) or len(outputs) != len(items):
        got = [item["tool_call_id"] for item in items]
        raise bad_request(
            f"Expected tool outputs for call_ids {expected}, got {got}",
            param="tool_outputs",
        )
    return outputs


OPERATIONS: dict[str, Operation] = {
    "createRun": create_run,
    "createThreadAndRun": create_thread_and_run,
    "getRun": get_run,
    "listRuns": list_runs,
    "modifyRun": modify_run,
    "cancelRun": cancel_run,
    "submitToolOuputsToRun": submit_tool_outputs,
}
