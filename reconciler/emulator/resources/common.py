"""What every resource shares: the context an operation runs in, ids, timestamps, 404s, lists.

An operation is a function ``(ctx, *, now, query, body, **path_params) -> response body``; its
``Context`` gives it the store, the run timing and the seeded id source. ``fetch`` is the lookup
that answers 404 in the service's wording, and ``page``/``page_in_memory`` answer list requests
with the spec's cursor pagination.
"""

from __future__ import annotations

import math
import random
import string
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from reconciler.emulator.config import RunTiming
from reconciler.emulator.encoded import Encoded, RenderCache
from reconciler.emulator.errors import EmulatorError, bad_request, not_found
from reconciler.emulator.store import Store, Table
from reconciler.emulator.validation import list_params

JSON = Any
Body = dict[str, JSON]
Operation = Callable[..., JSON]
"""An operation handler: ``handler(ctx, now=..., query=..., body=..., **path_params)``."""

_B62 = string.digits + string.ascii_uppercase + string.ascii_lowercase
_KIND: dict[Table, str] = {
    "assistants": "assistant", "threads": "thread", "messages": "message", "runs": "run",
}


class Context:
    """The state every operation works on: the store, the run timing and the id source."""

    def __init__(self, store: Store, timing: RunTiming, seed: int) -> None:
        self.store = store
        self.timing = timing
        #: settled runs as encoded for responses, by id (see ``reconciler.emulator.encoded``)
        self.rendered = RenderCache()
        self._ids = random.Random(f"{seed}:ids")
        self._ids_lock = threading.Lock()

    def new_id(self, prefix: str) -> str:
        """A unique id: a persisted serial (so ids sort by creation) and seeded noise."""
        serial = self.store.next_serial()
        with self._ids_lock:
            noise = b62(self._ids.getrandbits(95), 16)[-16:]
        return f"{prefix}{b62(serial, 8)}{noise}"


def b62(number: int, width: int) -> str:
    """``number`` in base 62 (digits, then upper, then lower case), zero-padded to ``width``."""
    digits = []
    while number:
        number, rest = divmod(number, 62)
        digits.append(_B62[rest])
    return "".join(reversed(digits)).rjust(width, "0")


def seconds(value: float | None) -> int | None:
    """A timestamp as the API shows it: whole seconds, or None."""
    return None if value is None else math.floor(value)


def first(*values: JSON) -> JSON:
    """The first value that is not None (None if all are)."""
    for value in values:
        if value is not None:
            return value
    return None


def fetch(ctx: Context, table: Table, object_id: str, *, parent: str | None = None) -> Body:
    """The stored object, or the service's 404 (``No thread found with id 'thread_x'.``)."""
    found: Body | None = ctx.store.get(table, object_id, parent=parent)
    if found is None:
        raise not_found(_KIND[table], object_id)
    return found


def fetch_text(ctx: Context, table: Table, object_id: str, *, parent: str | None = None
               ) -> str:
    """``fetch`` as stored (JSON text), with the same 404."""
    found = ctx.store.get_text(table, object_id, parent=parent)
    if found is None:
        raise not_found(_KIND[table], object_id)
    return found


# ---------------------------------------------------------------------------------- lists


def page(ctx: Context, table: Table, parent: str | None, query: Mapping[str, str],
         tag: str | None = None, render: Callable[[Body], Body] | None = None) -> Body:
    """One page of a stored list (a parent's children, or all assistants)."""
    limit, order, after, before = list_params(query)
    found = ctx.store.page(table, parent=parent, limit=limit, order=order, after=after,
                            before=before, tag=tag)
    if isinstance(found, str):
        raise _bad_cursor(found, after if found == "after" else before)
    items, has_more = found
    return _list_body([render(i) for i in items] if render else items, has_more)


def page_stored(ctx: Context, table: Table, parent: str | None, query: Mapping[str, str],
                render: Callable[[str, str], Body | Encoded]) -> Body:
    """``page``, each item rendered from its stored ``(id, JSON text)`` — so a renderer can
    answer from a cache without decoding what it has encoded before."""
    limit, order, after, before = list_params(query)
    found = ctx.store.page_text(table, parent=parent, limit=limit, order=order, after=after,
                                before=before)
    if isinstance(found, str):
        raise _bad_cursor(found, after if found == "after" else before)
    rows, has_more = found
    return _list_body([render(object_id, text) for object_id, text in rows], has_more)


def page_in_memory(items: list[Body], query: Mapping[str, str]) -> Body:
    """One page of a list that is computed rather than stored (a run's steps)."""
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
        return _list_body(window[-limit:], len(window) > limit)
    return _list_body(window[:limit], len(window) > limit)


def _bad_cursor(name: str, value: str | None) -> EmulatorError:
    return bad_request(
        f"Invalid '{name}': no object with id '{value}' in this list.", param=name,
        code="invalid_value",
    )


def _list_body(items: Sequence[Body | Encoded], has_more: bool) -> Body:
    return {
        "object": "list",
        "data": list(items),
        # the spec types these as strings; an empty page has no ids to give
        "first_id": _id(items[0]) if items else "",
        "last_id": _id(items[-1]) if items else "",
        "has_more": has_more,
    }


def _id(item: Body | Encoded) -> str:
    found: str = item.id if isinstance(item, Encoded) else item["id"]
    return found
