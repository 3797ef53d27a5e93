"""Messages: create, list, retrieve, modify, delete a thread's messages.

Reading a thread's messages settles its runs first, so a finished run's reply is there; adding
one is refused while a run is active, as the service did. Building and storing a message is
``threads.insert_message``, shared with thread creation and runs.
"""

from __future__ import annotations

from collections.abc import Mapping

from reconciler.emulator.resources.common import JSON, Body, Context, Operation, fetch, page
from reconciler.emulator.resources.runs import refuse_if_active, settle
from reconciler.emulator.resources.threads import insert_message, thread_or_404


def _message_or_404(ctx: Context, thread_id: str, message_id: str) -> Body:
    thread_or_404(ctx, thread_id)
    return fetch(ctx, "messages", message_id, parent=thread_id)


def create_message(ctx: Context, *, thread_id: str, now: float, body: Body, **_: JSON) -> JSON:
    thread_or_404(ctx, thread_id)
    refuse_if_active(
        ctx, thread_id, now, "Can't add messages to {thread} while a run {run} is active."
    )
    return insert_message(ctx, thread_id, body, now)


def list_messages(ctx: Context, *, thread_id: str, now: float, query: Mapping[str, str],
                  **_: JSON) -> JSON:
    thread_or_404(ctx, thread_id)
    settle(ctx, thread_id, now)
    return page(ctx, "messages", thread_id, query, tag=query.get("run_id") or None)


def get_message(ctx: Context, *, thread_id: str, message_id: str, now: float,
                **_: JSON) -> JSON:
    settle(ctx, thread_id, now)
    return _message_or_404(ctx, thread_id, message_id)


def modify_message(ctx: Context, *, thread_id: str, message_id: str, body: Body,
                   **_: JSON) -> JSON:
    message = _message_or_404(ctx, thread_id, message_id)
    if "metadata" in body:
        message["metadata"] = body["metadata"] or {}
    ctx.store.update("messages", message_id, message)
    return message


def delete_message(ctx: Context, *, thread_id: str, message_id: str, **_: JSON) -> JSON:
    _message_or_404(ctx, thread_id, message_id)
    ctx.store.delete("messages", message_id)
    return {"id": message_id, "object": "thread.message.deleted", "deleted": True}


OPERATIONS: dict[str, Operation] = {
    "createMessage": create_message,
    "listMessages": list_messages,
    "getMessage": get_message,
    "modifyMessage": modify_message,
    "deleteMessage": delete_message,
}
