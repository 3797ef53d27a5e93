"""Threads: create, retrieve, modify, delete — and appending a message to a thread.

``insert_message`` lives here rather than in ``messages`` because three resources append
messages: thread creation (its initial messages), runs (``additional_messages`` and the reply a
finished run leaves) and the messages API. Keeping it beside the thread keeps the imports
one-way (see the package docstring).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from reconciler.emulator.resources.common import JSON, Body, Context, Operation, fetch


def thread_or_404(ctx: Context, thread_id: str) -> Body:
    """The stored thread, or the service's 404."""
    return fetch(ctx, "threads", thread_id)


def insert_thread(ctx: Context, thread_id: str, body: Mapping[str, JSON], now: float) -> Body:
    """Store a thread (and its initial messages) from a create request; return the thread."""
    resources = body.get("tool_resources") or {}
    file_search = resources.get("file_search")
    if isinstance(file_search, dict) and "vector_stores" in file_search:
        stores = [ctx.new_id("vs_") for _ in file_search["vector_stores"]]
        resources = {**resources, "file_search": {"vector_store_ids": stores}}
    thread = {
        "id": thread_id,
        "object": "thread",
        "created_at": math.floor(now),
        "tool_resources": resources,
        "metadata": body.get("metadata") or {},
    }
    ctx.store.insert("threads", thread_id, thread)
    for message in body.get("messages") or []:
        insert_message(ctx, thread_id, message, now)
    return thread


def insert_message(
    ctx: Context, thread_id: str, request: Mapping[str, JSON], now: float,
) -> Body:
    """Append a message (a create-message request, or a run's additional message)."""
    message = build_message(ctx.new_id("msg_"), thread_id, request, now)
    store_message(ctx, message)
    return message


def store_message(ctx: Context, message: Body) -> None:
    """Append a built message to its thread (tagged with its run, for ``run_id`` filters)."""
    ctx.store.insert("messages", message["id"], message, parent=message["thread_id"],
                     tag=message["run_id"])


def build_message(
    message_id: str, thread_id: str, request: Mapping[str, JSON], now: float, *,
    assistant_id: str | None = None, run_id: str | None = None,
    status: str = "completed", incomplete_reason: str | None = None,
    finished: float | None = None,
) -> Body:
    """A message as the API shows it, from a create-message request or a run's reply.

    ``finished`` is when a reply was completed (or cut short); a request's message is
    complete the moment it is created.
    """
    content = request["content"]
    if isinstance(content, str):
        parts = [{"type": "text", "text": {"value": content, "annotations": []}}]
    else:
        parts = [
            {"type": "text", "text": {"value": part["text"], "annotations": []}}
            if part.get("type") == "text" else part
            for part in content
        ]
    done = math.floor(now if finished is None else finished)
    return {
        "id": message_id,
        "object": "thread.message",
        "created_at": math.floor(now),
        "thread_id": thread_id,
        "status": status,
        "incomplete_details": (
            {"reason": incomplete_reason} if incomplete_reason is not None else None
        ),
        "completed_at": done if status == "completed" else None,
        "incomplete_at": done if status == "incomplete" else None,
        "role": request["role"],
        "content": parts,
        "assistant_id": assistant_id,
        "run_id": run_id,
        "attachments": request.get("attachments") or [],
        "metadata": request.get("metadata") or {},
    }


def create_thread(ctx: Context, *, now: float, body: Body, **_: JSON) -> JSON:
    return insert_thread(ctx, ctx.new_id("thread_"), body, now)


def get_thread(ctx: Context, *, thread_id: str, **_: JSON) -> JSON:
    return thread_or_404(ctx, thread_id)


def modify_thread(ctx: Context, *, thread_id: str, body: Body, **_: JSON) -> JSON:
    thread = thread_or_404(ctx, thread_id)
    if "metadata" in body:
        thread["metadata"] = body["metadata"] or {}
    if "tool_resources" in body:
        thread["tool_resources"] = body["tool_resources"] or {}
    ctx.store.update("threads", thread_id, thread)
    return thread


def delete_thread(ctx: Context, *, thread_id: str, **_: JSON) -> JSON:
    thread_or_404(ctx, thread_id)
    ctx.store.delete_children("messages", thread_id)
    ctx.store.delete_children("runs", thread_id)
    ctx.store.delete("threads", thread_id)
    return {"id": thread_id, "object": "thread.deleted", "deleted": True}


OPERATIONS: dict[str, Operation] = {
    "createThread": create_thread,
    "getThread": get_thread,
    "modifyThread": modify_thread,
    "deleteThread": delete_thread,
}
