"""What each of the 23 operations does to the emulator's state, as the real service did it.

Requests arrive here already matched to an operation and validated against the spec; this
module applies the service's own rules (one active run per thread, which statuses accept a
cancel or tool outputs, the 404 wording), keeps runs moving by settling them lazily from the
status machine, and renders objects in the spec's response shapes.
"""

from __future__ import annotations

import json
import math
import random
import string
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict
from os import PathLike
from typing import Any

from reconciler.emulator.config import EmulatorConfig
from reconciler.emulator.errors import ApiError, bad_request, not_found
from reconciler.emulator.fixtures import Fixtures, load_fixtures
from reconciler.emulator.machine import Outcome, Phase, RunClock, derive, outcome_from_markers
from reconciler.emulator.store import Store, Table
from reconciler.emulator.validation import list_params

JSON = Any
Body = dict[str, JSON]

_B62 = string.digits + string.ascii_uppercase + string.ascii_lowercase
_CANCELLABLE = frozenset({"queued", "in_progress", "requires_action"})


def _b62(number: int, width: int) -> str:
    digits = []
    while number:
        number, rest = divmod(number, 62)
        digits.append(_B62[rest])
    return "".join(reversed(digits)).rjust(width, "0")


def _seconds(value: float | None) -> int | None:
    return None if value is None else math.floor(value)


def _text_content(value: str) -> list[Body]:
    return [{"type": "text", "text": {"value": value, "annotations": []}}]


class Emulator:
    """The state and rules of one emulated Assistants v2 service."""

    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self.timing = config.timing
        self.store = Store(config.state_path)
        self._ids = random.Random(f"{config.seed}:ids")
        self._ids_lock = threading.Lock()
        fixtures = config.fixtures
        if isinstance(fixtures, (str, PathLike)):
            fixtures = load_fixtures(fixtures)
        if fixtures is not None:
            self._load_fixtures(fixtures)

    def close(self) -> None:
        self.store.close()

    def now(self) -> float:
        return float(self.config.clock())

    def new_id(self, prefix: str) -> str:
        """A unique id: a persisted serial (so ids sort by creation) and seeded noise."""
        serial = self.store.next_serial()
        with self._ids_lock:
            noise = _b62(self._ids.getrandbits(95), 16)[-16:]
        return f"{prefix}{_b62(serial, 8)}{noise}"

    def _load_fixtures(self, fixtures: Fixtures) -> None:
        now = self.now()
        with self.store.transaction():
            for item in fixtures.assistants:
                if not self.store.exists("assistants", item["id"]):
                    body = {k: v for k, v in item.items() if k != "id"}
                    self.store.insert("assistants", item["id"],
                                      self._assistant(item["id"], body, now))
            for item in fixtures.threads:
                if not self.store.exists("threads", item["id"]):
                    body = {k: v for k, v in item.items() if k != "id"}
                    self._insert_thread(item["id"], body, now)

    # ------------------------------------------------------------------ dispatch

    def handle(self, operation_id: str, params: Mapping[str, str], query: Mapping[str, str],
               body: Body) -> JSON:
        """Perform one operation atomically and return its response body."""
        handler: Callable[..., JSON] = getattr(self, f"op_{operation_id}")
        now = self.now()
        with self.store.transaction():
            return handler(now=now, query=query, body=body, **params)

    # ------------------------------------------------------------------ assistants

    def _assistant(self, assistant_id: str, body: Mapping[str, JSON], now: float) -> Body:
        return {
            "id": assistant_id,
            "object": "assistant",
            "created_at": math.floor(now),
            "name": body.get("name"),
            "description": body.get("description"),
            "model": body["model"],
            "instructions": body.get("instructions"),
            "tools": body.get("tools") or [],
            "tool_resources": body.get("tool_resources") or {},
            "metadata": body.get("metadata") or {},
            "temperature": body.get("temperature", 1.0),
            "top_p": body.get("top_p", 1.0),
            "response_format": body.get("response_format") or "auto",
        }

    def op_createAssistant(self, *, now: float, body: Body, **_: JSON) -> JSON:
        assistant = self._assistant(self.new_id("asst_"), body, now)
        self.store.insert("assistants", assistant["id"], assistant)
        return assistant

    def op_listAssistants(self, *, query: Mapping[str, str], **_: JSON) -> JSON:
        return self._page("assistants", None, query)

    def _get_assistant(self, assistant_id: str) -> Body:
        found: Body | None = self.store.get("assistants", assistant_id)
        if found is None:
            raise not_found("assistant", assistant_id)
        return found

    def op_getAssistant(self, *, assistant_id: str, **_: JSON) -> JSON:
        return self._get_assistant(assistant_id)

    def op_modifyAssistant(self, *, assistant_id: str, body: Body, **_: JSON) -> JSON:
        assistant = self._get_assistant(assistant_id)
        for key, value in body.items():
            if key == "reasoning_effort":
                continue
            if key in {"tools"}:
                value = value or []
            elif key in {"metadata", "tool_resources"}:
                value = value or {}
            elif key == "response_format":
                value = value or "auto"
            elif key == "model" and value is None:
                continue
            assistant[key] = value
        self.store.update("assistants", assistant_id, assistant)
        return assistant

    def op_deleteAssistant(self, *, assistant_id: str, **_: JSON) -> JSON:
        self._get_assistant(assistant_id)
        self.store.delete("assistants", assistant_id)
        return {"id": assistant_id, "object": "assistant.deleted", "deleted": True}

    # ------------------------------------------------------------------ threads

    def _insert_thread(self, thread_id: str, body: Mapping[str, JSON], now: float) -> Body:
        resources = body.get("tool_resources") or {}
        file_search = resources.get("file_search")
        if isinstance(file_search, dict) and "vector_stores" in file_search:
            stores = [self.new_id("vs_") for _ in file_search["vector_stores"]]
            resources = {**resources, "file_search": {"vector_store_ids": stores}}
        thread = {
            "id": thread_id,
            "object": "thread",
            "created_at": math.floor(now),
            "tool_resources": resources,
            "metadata": body.get("metadata") or {},
        }
        self.store.insert("threads", thread_id, thread)
        for message in body.get("messages") or []:
            self._insert_message(thread_id, message, now)
        return thread

    def op_createThread(self, *, now: float, body: Body, **_: JSON) -> JSON:
        return self._insert_thread(self.new_id("thread_"), body, now)

    def _get_thread(self, thread_id: str) -> Body:
        found: Body | None = self.store.get("threads", thread_id)
        if found is None:
            raise not_found("thread", thread_id)
        return found

    def op_getThread(self, *, thread_id: str, **_: JSON) -> JSON:
        return self._get_thread(thread_id)

    def op_modifyThread(self, *, thread_id: str, body: Body, **_: JSON) -> JSON:
        thread = self._get_thread(thread_id)
        if "metadata" in body:
            thread["metadata"] = body["metadata"] or {}
        if "tool_resources" in body:
            thread["tool_resources"] = body["tool_resources"] or {}
        self.store.update("threads", thread_id, thread)
        return thread

    def op_deleteThread(self, *, thread_id: str, **_: JSON) -> JSON:
        self._get_thread(thread_id)
        self.store.delete_children("messages", thread_id)
        self.store.delete_children("runs", thread_id)
        self.store.delete("threads", thread_id)
        return {"id": thread_id, "object": "thread.deleted", "deleted": True}

    # ------------------------------------------------------------------ messages

    def _insert_message(
        self, thread_id: str, request: Mapping[str, JSON], now: float, *,
        assistant_id: str | None = None, run_id: str | None = None,
        status: str = "completed", incomplete_reason: str | None = None,
    ) -> Body:
        content = request["content"]
        if isinstance(content, str):
            parts = _text_content(content)
        else:
            parts = [
                {"type": "text", "text": {"value": part["text"], "annotations": []}}
                if part.get("type") == "text" else part
                for part in content
            ]
        created = math.floor(now)
        message = {
            "id": self.new_id("msg_"),
            "object": "thread.message",
            "created_at": created,
            "thread_id": thread_id,
            "status": status,
            "incomplete_details": (
                {"reason": incomplete_reason} if incomplete_reason is not None else None
            ),
            "completed_at": created if status == "completed" else None,
            "incomplete_at": created if status == "incomplete" else None,
            "role": request["role"],
            "content": parts,
            "assistant_id": assistant_id,
            "run_id": run_id,
            "attachments": request.get("attachments") or [],
            "metadata": request.get("metadata") or {},
        }
        self.store.insert("messages", message["id"], message, parent=thread_id, tag=run_id)
        return message

    def _refuse_if_active(self, thread_id: str, now: float, message: str) -> None:
        active = self._settle(thread_id, now)
        if active is not None:
            raise bad_request(message.format(thread=thread_id, run=active))

    def op_createMessage(self, *, thread_id: str, now: float, body: Body, **_: JSON) -> JSON:
        self._get_thread(thread_id)
        self._refuse_if_active(
            thread_id, now, "Can't add messages to {thread} while a run {run} is active."
        )
        return self._insert_message(thread_id, body, now)

    def op_listMessages(self, *, thread_id: str, now: float, query: Mapping[str, str],
                        **_: JSON) -> JSON:
        self._get_thread(thread_id)
        self._settle(thread_id, now)
        return self._page("messages", thread_id, query, tag=query.get("run_id") or None)

    def _get_message(self, thread_id: str, message_id: str) -> Body:
        self._get_thread(thread_id)
        found: Body | None = self.store.get("messages", message_id, parent=thread_id)
        if found is None:
            raise not_found("message", message_id)
        return found

    def op_getMessage(self, *, thread_id: str, message_id: str, now: float, **_: JSON) -> JSON:
        self._settle(thread_id, now)
        return self._get_message(thread_id, message_id)

    def op_modifyMessage(self, *, thread_id: str, message_id: str, body: Body,
                         **_: JSON) -> JSON:
        message = self._get_message(thread_id, message_id)
        if "metadata" in body:
            message["metadata"] = body["metadata"] or {}
        self.store.update("messages", message_id, message)
        return message

    def op_deleteMessage(self, *, thread_id: str, message_id: str, **_: JSON) -> JSON:
        self._get_message(thread_id, message_id)
        self.store.delete("messages", message_id)
        return {"id": message_id, "object": "thread.message.deleted", "deleted": True}

    # ------------------------------------------------------------------ runs

    def op_createRun(self, *, thread_id: str, now: float, body: Body, **_: JSON) -> JSON:
        self._get_thread(thread_id)
        return self._create_run(thread_id, body, now)

    def op_createThreadAndRun(self, *, now: float, body: Body, **_: JSON) -> JSON:
        self._refuse_stream(body)
        self._get_assistant(body["assistant_id"])
        thread_request = dict(body.get("thread") or {})
        if body.get("tool_resources") and not thread_request.get("tool_resources"):
            thread_request["tool_resources"] = body["tool_resources"]
        thread = self._insert_thread(self.new_id("thread_"), thread_request, now)
        run_request = {k: v for k, v in body.items() if k not in {"thread", "tool_resources"}}
        return self._create_run(thread["id"], run_request, now)

    @staticmethod
    def _refuse_stream(body: Mapping[str, JSON]) -> None:
        if body.get("stream"):
            raise bad_request("Streaming is not supported by the reconciler emulator; "
                              "send stream=false and poll the run.", param="stream")

    def _create_run(self, thread_id: str, body: Mapping[str, JSON], now: float) -> JSON:
        self._refuse_stream(body)
        assistant = self._get_assistant(body["assistant_id"])
        self._refuse_if_active(thread_id, now, "Thread {thread} already has an active run {run}.")
        for message in body.get("additional_messages") or []:
            self._insert_message(thread_id, message, now)
        run_id = self.new_id("run_")
        tools = body["tools"] if body.get("tools") is not None else assistant["tools"]
        instructions = body.get("instructions")
        if instructions is None:
            instructions = assistant.get("instructions") or ""
        parallel = body.get("parallel_tool_calls")
        run = {
            "id": run_id,
            "object": "thread.run",
            "created_at": math.floor(now),
            "thread_id": thread_id,
            "assistant_id": assistant["id"],
            "expires_at": math.floor(now + self.timing.expires_after),
            "model": body.get("model") or assistant["model"],
            "instructions": instructions,
            "tools": tools,
            "metadata": body.get("metadata") or {},
            "temperature": _first(body.get("temperature"), assistant.get("temperature"), 1.0),
            "top_p": _first(body.get("top_p"), assistant.get("top_p"), 1.0),
            "max_prompt_tokens": body.get("max_prompt_tokens"),
            "max_completion_tokens": body.get("max_completion_tokens"),
            "truncation_strategy": body.get("truncation_strategy")
            or {"type": "auto", "last_messages": None},
            "tool_choice": body.get("tool_choice") or "auto",
            "parallel_tool_calls": True if parallel is None else bool(parallel),
            "response_format": body.get("response_format") or assistant.get("response_format")
            or "auto",
        }
        calls = self._plan_tool_calls(run)
        outcome = outcome_from_markers(body.get("additional_instructions"), instructions)
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
            "reply_message_id": None,
            "final": None,
        }
        self.store.insert("runs", run_id, record, parent=thread_id, active=True)
        return self._render(record, Phase("queued"))

    def _plan_tool_calls(self, run: Mapping[str, JSON]) -> list[Body]:
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
                "id": self.new_id("call_"),
                "type": "function",
                "function": {"name": f["name"], "arguments": _sample_arguments(f)},
            }
            for f in functions
        ]

    def _phase(self, record: Mapping[str, JSON], now: float) -> Phase:
        if record["final"] is not None:
            return Phase(**record["final"])
        return derive(RunClock(**record["clock"]), Outcome(**record["outcome"]), self.timing, now)

    def _settle(self, thread_id: str, now: float) -> str | None:
        """Materialise what finished runs leave behind; return the id of a still-active run."""
        still_active = None
        for record in self.store.active("runs", thread_id):
            phase = self._phase(record, now)
            if not phase.terminal:
                still_active = record["run"]["id"]
                continue
            finished = phase.finished_at if phase.finished_at is not None else now
            if phase.status in {"completed", "incomplete"}:
                reason = "max_tokens" if phase.status == "incomplete" else None
                reply = self._insert_message(
                    thread_id, {"role": "assistant", "content": _reply_text(record)}, finished,
                    assistant_id=record["run"]["assistant_id"], run_id=record["run"]["id"],
                    status=phase.status, incomplete_reason=reason,
                )
                record["reply_message_id"] = reply["id"]
            record["final"] = asdict(phase)
            self.store.update("runs", record["run"]["id"], record, active=False)
        return still_active

    def _get_run(self, thread_id: str, run_id: str, now: float) -> Body:
        self._get_thread(thread_id)
        self._settle(thread_id, now)
        found: Body | None = self.store.get("runs", run_id, parent=thread_id)
        if found is None:
            raise not_found("run", run_id)
        return found

    def _render(self, record: Mapping[str, JSON], phase: Phase) -> Body:
        run: Body = dict(record["run"])  # nested values are never mutated
        outcome = record["outcome"]
        status = phase.status
        run.update({
            "status": status,
            "started_at": _seconds(phase.started_at),
            "completed_at": _seconds(phase.completed_at),
            "cancelled_at": _seconds(phase.cancelled_at),
            "failed_at": _seconds(phase.failed_at),
            "required_action": None,
            "last_error": None,
            "incomplete_details": None,
            "usage": _usage(record) if phase.terminal else None,
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
        if phase.terminal and status != "expired":
            run["expires_at"] = None
        return run

    def op_getRun(self, *, thread_id: str, run_id: str, now: float, **_: JSON) -> JSON:
        record = self._get_run(thread_id, run_id, now)
        return self._render(record, self._phase(record, now))

    def op_listRuns(self, *, thread_id: str, now: float, query: Mapping[str, str],
                    **_: JSON) -> JSON:
        self._get_thread(thread_id)
        self._settle(thread_id, now)
        return self._page("runs", thread_id, query,
                          render=lambda record: self._render(record, self._phase(record, now)))

    def op_modifyRun(self, *, thread_id: str, run_id: str, now: float, body: Body,
                     **_: JSON) -> JSON:
        record = self._get_run(thread_id, run_id, now)
        if "metadata" in body:
            record["run"]["metadata"] = body["metadata"] or {}
            self.store.update("runs", run_id, record)
        return self._render(record, self._phase(record, now))

    def op_cancelRun(self, *, thread_id: str, run_id: str, now: float, **_: JSON) -> JSON:
        record = self._get_run(thread_id, run_id, now)
        phase = self._phase(record, now)
        if phase.status not in _CANCELLABLE:
            raise bad_request(f"Cannot cancel run with status '{phase.status}'.")
        record["clock"]["cancel_requested"] = now
        self.store.update("runs", run_id, record)
        return self._render(record, Phase("cancelling", started_at=phase.started_at))

    def op_submitToolOuputsToRun(self, *, thread_id: str, run_id: str, now: float, body: Body,
                                 **_: JSON) -> JSON:
        self._refuse_stream(body)
        record = self._get_run(thread_id, run_id, now)
        phase = self._phase(record, now)
        if phase.status != "requires_action":
            raise bad_request(f'Runs in status "{phase.status}" do not accept tool outputs.')
        outputs: dict[str, str] = {}
        for index, item in enumerate(body["tool_outputs"]):
            for key in ("tool_call_id", "output"):
                if key not in item:
                    raise bad_request(
                        f"Missing required parameter: 'tool_outputs[{index}].{key}'.",
                        param=f"tool_outputs[{index}].{key}", code="missing_required_parameter",
                    )
            outputs[item["tool_call_id"]] = item["output"]
        expected = [call["id"] for call in record["calls"]]
        if sorted(outputs) != sorted(expected) or len(outputs) != len(body["tool_outputs"]):
            got = [item["tool_call_id"] for item in body["tool_outputs"]]
            raise bad_request(
                f"Expected tool outputs for call_ids {expected}, got {got}",
                param="tool_outputs",
            )
        record["outputs"] = outputs
        record["clock"]["outputs_submitted"] = now
        self.store.update("runs", run_id, record)
        return self._render(record, Phase("queued", started_at=phase.started_at))

    # ------------------------------------------------------------------ run steps

    def _steps(self, record: Mapping[str, JSON], phase: Phase) -> list[Body]:
        """A run's steps, derived from its record: tool calls, then the reply message."""
        run = record["run"]
        base = {
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
        steps: list[Body] = []
        if record["calls"] and phase.requires_action_at is not None:
            outputs = record["outputs"] or {}
            submitted = record["clock"]["outputs_submitted"]
            step = {
                **base,
                "id": record["steps"][0],
                "created_at": _seconds(phase.requires_action_at),
                "type": "tool_calls",
                "status": "in_progress",
                "step_details": {
                    "type": "tool_calls",
                    "tool_calls": [
                        {**call, "function": {**call["function"],
                                              "output": outputs.get(call["id"])}}
                        for call in record["calls"]
                    ],
                },
            }
            if submitted is not None:
                step.update(status="completed", completed_at=_seconds(submitted),
                            usage={"prompt_tokens": 40, "completion_tokens": 12,
                                   "total_tokens": 52})
            elif phase.status in {"cancelled", "expired"}:
                key = "cancelled_at" if phase.status == "cancelled" else "expired_at"
                step.update(status=phase.status, **{key: _seconds(phase.finished_at)})
            steps.append(step)
        if record["reply_message_id"] is not None:
            finished = _seconds(phase.finished_at)
            usage = _usage(record)
            steps.append({
                **base,
                "id": record["steps"][1],
                "created_at": finished,
                "type": "message_creation",
                "status": "completed",
                "completed_at": finished,
                "usage": usage,
                "step_details": {
                    "type": "message_creation",
                    "message_creation": {"message_id": record["reply_message_id"]},
                },
            })
        return steps

    def op_listRunSteps(self, *, thread_id: str, run_id: str, now: float,
                        query: Mapping[str, str], **_: JSON) -> JSON:
        record = self._get_run(thread_id, run_id, now)
        steps = self._steps(record, self._phase(record, now))
        return _page_in_memory(steps, query)

    def op_getRunStep(self, *, thread_id: str, run_id: str, step_id: str, now: float,
                      **_: JSON) -> JSON:
        record = self._get_run(thread_id, run_id, now)
        for step in self._steps(record, self._phase(record, now)):
            if step["id"] == step_id:
                return step
        raise not_found("step", step_id)

    # ------------------------------------------------------------------ lists

    def _page(self, table: Table, parent: str | None, query: Mapping[str, str],
              tag: str | None = None, render: Callable[[Body], Body] | None = None) -> Body:
        limit, order, after, before = list_params(query)
        found = self.store.page(table, parent=parent, limit=limit, order=order, after=after,
                                before=before, tag=tag)
        if isinstance(found, str):
            raise _bad_cursor(found, after if found == "after" else before)
        items, has_more = found
        return _list_body([render(i) for i in items] if render else items, has_more)


def _first(*values: JSON) -> JSON:
    for value in values:
        if value is not None:
            return value
    return None


def _bad_cursor(name: str, value: str | None) -> ApiError:
    return bad_request(
        f"Invalid '{name}': no object with id '{value}' in this list.", param=name,
        code="invalid_value",
    )


def _list_body(items: Sequence[Body], has_more: bool) -> Body:
    return {
        "object": "list",
        "data": list(items),
        # the spec types these as strings; an empty page has no ids to give
        "first_id": items[0]["id"] if items else "",
        "last_id": items[-1]["id"] if items else "",
        "has_more": has_more,
    }


def _page_in_memory(items: list[Body], query: Mapping[str, str]) -> Body:
    limit, order, after, before = list_params(query)
    ordered = items if order == "asc" else list(reversed(items))
    ids = [item["id"] for item in ordered]
    start, stop = 0, len(ordered)
    if after is not None:
        if after not in ids:
            raise _bad_cursor("after", after)
        start = ids.index(after) + 1
    if before is not None:
        if before not in ids:
            raise _bad_cursor("before", before)
        stop = ids.index(before)
    window = ordered[start:stop]
    if before is not None and after is None:
        page = window[-limit:]
        return _list_body(page, len(window) > limit)
    return _list_body(window[:limit], len(window) > limit)


def _usage(record: Mapping[str, JSON]) -> Body:
    run = record["run"]
    prompt = 50 + len(run["instructions"]) // 4 + 30 * len(record["calls"])
    completion = 20 + 10 * len(record["calls"])
    if record["outcome"]["status"] == "incomplete":
        completion = run.get("max_completion_tokens") or 256
    return {"prompt_tokens": prompt, "completion_tokens": completion,
            "total_tokens": prompt + completion}


def _reply_text(record: Mapping[str, JSON]) -> str:
    run = record["run"]
    text = f"Run {run['id']} finished on the reconciler emulator."
    outputs = record["outputs"] or {}
    for call in record["calls"]:
        output = outputs.get(call["id"])
        if output is not None:
            text += f" {call['function']['name']} returned {output[:200]}"
    return text


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
