"""Responses encoded once: JSON text cached beside the store, spliced into list pages.

A settled run looks the same at every instant, so its rendering is a pure function of its
stored record. ``RenderCache`` keeps that rendering, already encoded, under the run's id with
the stored text it came from: a read whose stored text differs in any byte (a write by this
process, by another process on the same ``--state`` file, a rolled-back write) simply misses,
so the cache never needs invalidating and cannot serve a stale answer. ``dumps`` writes a
response body exactly as starlette's ``JSONResponse`` does, with ``Encoded`` values spliced in.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from typing import Any

JSON = Any


@dataclass(frozen=True, slots=True)
class Encoded:
    """An object already encoded as a response writes it, with its ``id`` (for list cursors)
    and ``object`` kind (``thread.run``: the app adds ``openai-poll-after-ms``)."""

    id: str
    object: str | None
    text: str


#: what ``json.dumps`` builds on every call with these options (made once: it is reentrant)
_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False, indent=None,
                            separators=(",", ":"))


def _encode(value: JSON) -> str:
    """Compact JSON, byte for byte what ``starlette.responses.JSONResponse`` renders."""
    return _ENCODER.encode(value)


def encode_value(value: JSON) -> str:
    """``value`` as response text, ``Encoded`` parts spliced in rather than re-encoded.

    They stand as the whole value (one object) or as items of a list page's ``data``; any
    other value is encoded as it is (and an ``Encoded`` anywhere else is a ``TypeError``).
    """
    if isinstance(value, Encoded):
        return value.text
    if _is_page(value):
        return "{" + ",".join(f"{_encode(k)}:{_part(v)}" for k, v in value.items()) + "}"
    return _encode(value)


def dumps(value: JSON) -> bytes:
    """A response body: ``encode_value`` as UTF-8."""
    return encode_value(value).encode("utf-8")


def _is_page(value: JSON) -> bool:
    return isinstance(value, dict) and value.get("object") == "list" and isinstance(
        value.get("data"), list)


def _part(value: JSON) -> str:
    if isinstance(value, list):
        return "[" + ",".join([item.text if isinstance(item, Encoded) else _encode(item)
                               for item in value]) + "]"
    return _encode(value)


def plain(value: JSON) -> JSON:
    """``value`` with its ``Encoded`` parts decoded: what in-process callers of the emulator
    get, the same JSON a client decodes from the response."""
    if isinstance(value, Encoded):
        return json.loads(value.text)
    if _is_page(value):
        data = [json.loads(i.text) if isinstance(i, Encoded) else i for i in value["data"]]
        return {**value, "data": data}
    return value


class RenderCache:
    """Encoded renderings by object id, each valid only for the stored text it was made from.

    The stored text is kept to compare with (an exact test, and cheaper than hashing it):
    about 2.5 kB an entry for a run. Bounded: past ``capacity`` objects the oldest entry is
    dropped (an update refreshes an entry's age). The default holds a project of 100,000 runs
    whole (about 300 MB at most): a plan lists every run in the same order each time, and a
    cache smaller than that order would drop each entry just before it is asked for again.
    One lock, so several threads are safe.
    """

    def __init__(self, capacity: int = 120_000) -> None:
        self.capacity = capacity
        self._entries: dict[str, tuple[str, Encoded]] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def cached(self, object_id: str, stored: str) -> Encoded | None:
        """The rendering kept for ``object_id`` if it was made from ``stored``, else None."""
        with self._lock:
            entry = self._entries.get(object_id)
        if entry is None or entry[0] != stored:
            return None
        return entry[1]

    def keep(self, object_id: str, stored: str, value: dict[str, JSON]) -> Encoded:
        """Encode ``value``, the rendering of ``object_id`` as ``stored``, and keep it; the
        caller vouches that the rendering depends on nothing but ``stored``."""
        encoded = Encoded(object_id, value.get("object"), _encode(value))
        with self._lock:
            self._entries.pop(object_id, None)
            self._entries[object_id] = (stored, encoded)
            while len(self._entries) > self.capacity:
                del self._entries[next(iter(self._entries))]
        return encoded
