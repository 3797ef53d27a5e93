"""Assistants: create, list, retrieve, modify, delete — and the defaults the service filled in.

``new_assistant`` builds the stored object from a create request (fixtures use it too);
``assistant_or_404`` is the lookup runs use to inherit model, instructions and tools.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from reconciler.emulator.resources.common import JSON, Body, Context, Operation, fetch, page


def new_assistant(assistant_id: str, body: Mapping[str, JSON], now: float) -> Body:
    """The assistant a create request (already validated) describes, with the defaults."""
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


def assistant_or_404(ctx: Context, assistant_id: str) -> Body:
    """The stored assistant, or the service's 404."""
    return fetch(ctx, "assistants", assistant_id)


def create_assistant(ctx: Context, *, now: float, body: Body, **_: JSON) -> JSON:
    assistant = new_assistant(ctx.new_id("asst_"), body, now)
    ctx.store.insert("assistants", assistant["id"], assistant)
    return assistant


def list_assistants(ctx: Context, *, query: Mapping[str, str], **_: JSON) -> JSON:
    return page(ctx, "assistants", None, query)


def get_assistant(ctx: Context, *, assistant_id: str, **_: JSON) -> JSON:
    return assistant_or_404(ctx, assistant_id)


def modify_assistant(ctx: Context, *, assistant_id: str, body: Body, **_: JSON) -> JSON:
    assistant = assistant_or_404(ctx, assistant_id)
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
    ctx.store.update("assistants", assistant_id, assistant)
    return assistant


def delete_assistant(ctx: Context, *, assistant_id: str, **_: JSON) -> JSON:
    assistant_or_404(ctx, assistant_id)
    ctx.store.delete("assistants", assistant_id)
    return {"id": assistant_id, "object": "assistant.deleted", "deleted": True}


OPERATIONS: dict[str, Operation] = {
    "createAssistant": create_assistant,
    "listAssistants": list_assistants,
    "getAssistant": get_assistant,
    "modifyAssistant": modify_assistant,
    "deleteAssistant": delete_assistant,
}
