"""What each server-sent event of a run stream must carry, checked against the spec.

The reference spec cut for the emulator keeps every object a stream carries (``ThreadObject``,
``RunObject``, ``RunStepObject``, ``MessageObject``, ``Error``) but not the upstream
``AssistantStreamEvent`` union nor its two delta objects. Those two are transcribed below from
the upstream openai-openapi definitions (``MessageDeltaObject``, ``RunStepDeltaObject``),
limited to the content kinds the emulator emits: a text delta, and a function call's delta or
a message creation in a step. Everything else is validated against the spec itself.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from jsonschema import Draft202012Validator

from reconciler.emulator.spec import FORMATS, json_schema_spec, schema_problems

JSON = Any

MESSAGE_DELTA: dict[str, JSON] = {
    "type": "object",
    "required": ["id", "object", "delta"],
    "properties": {
        "id": {"type": "string"},
        "object": {"type": "string", "enum": ["thread.message.delta"]},
        "delta": {
            "type": "object",
            "properties": {
                "role": {"type": "string", "enum": ["user", "assistant"]},
                "content": {"type": "array", "items": {"oneOf": [{
                    "type": "object",
                    "required": ["index", "type"],
                    "properties": {
                        "index": {"type": "integer"},
                        "type": {"type": "string", "enum": ["text"]},
                        "text": {"type": "object", "properties": {
                            "value": {"type": "string"},
                            "annotations": {"type": "array"},
                        }},
                    },
                }]}},
            },
        },
    },
}

RUN_STEP_DELTA: dict[str, JSON] = {
    "type": "object",
    "required": ["id", "object", "delta"],
    "properties": {
        "id": {"type": "string"},
        "object": {"type": "string", "enum": ["thread.run.step.delta"]},
        "delta": {"type": "object", "properties": {"step_details": {"oneOf": [
            {
                "type": "object",
                "required": ["type"],
                "properties": {
                    "type": {"type": "string", "enum": ["message_creation"]},
                    "message_creation": {"type": "object",
                                         "properties": {"message_id": {"type": "string"}}},
                },
            },
            {
                "type": "object",
                "required": ["type"],
                "properties": {
                    "type": {"type": "string", "enum": ["tool_calls"]},
                    "tool_calls": {"type": "array", "items": {"oneOf": [{
                        "type": "object",
                        "required": ["index", "type"],
                        "properties": {
                            "index": {"type": "integer"},
                            "id": {"type": "string"},
                            "type": {"type": "string", "enum": ["function"]},
                            "function": {"type": "object", "properties": {
                                "name": {"type": "string"},
                                "arguments": {"type": "string"},
                                "output": {"type": ["string", "null"]},
                            }},
                        },
                    }]}},
                },
            },
        ]}}},
    },
}

_RUN_STATUSES = ("queued", "in_progress", "requires_action", "cancelling", "cancelled",
                 "failed", "completed", "incomplete", "expired")
_STEP_STATUSES = ("in_progress", "cancelled", "failed", "completed", "expired")
_MESSAGE_STATUSES = ("in_progress", "incomplete", "completed")

_OBJECTS: dict[str, tuple[str, str | None]] = {
    "thread.created": ("#/components/schemas/ThreadObject", None),
    "thread.run.created": ("#/components/schemas/RunObject", "queued"),
    **{f"thread.run.{s}": ("#/components/schemas/RunObject", s) for s in _RUN_STATUSES},
    "thread.run.step.created": ("#/components/schemas/RunStepObject", "in_progress"),
    **{f"thread.run.step.{s}": ("#/components/schemas/RunStepObject", s)
       for s in _STEP_STATUSES},
    "thread.message.created": ("#/components/schemas/MessageObject", "in_progress"),
    **{f"thread.message.{s}": ("#/components/schemas/MessageObject", s)
       for s in _MESSAGE_STATUSES},
    "error": ("#/components/schemas/Error", None),
}
"""Each event that carries a spec object: that object's schema, and the status it must show."""


@cache
def _delta_validator(name: str) -> Draft202012Validator:
    schema = MESSAGE_DELTA if name == "thread.message.delta" else RUN_STEP_DELTA
    return Draft202012Validator({**schema, "components": json_schema_spec()["components"]},
                                format_checker=FORMATS)


def validate_stream_event(name: str, data: JSON) -> list[str]:
    """Problems with one event of a run stream (empty when it conforms).

    ``data`` is the decoded JSON of the event's ``data:`` line (the text ``[DONE]`` for
    ``done``). Run, step and message events must also show the status their name says.
    """
    if name == "done":
        return [] if data == "[DONE]" else [f"done carries {data!r}, not [DONE]"]
    if name in {"thread.message.delta", "thread.run.step.delta"}:
        return [f"{name} at {'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}"
                for e in _delta_validator(name).iter_errors(data)]
    if name not in _OBJECTS:
        return [f"{name} is not an event of an Assistants stream"]
    key, status = _OBJECTS[name]
    problems = schema_problems(key, data, name)
    if status is not None and isinstance(data, dict) and data.get("status") != status:
        problems.append(f"{name} shows status {data.get('status')!r}")
    return problems
