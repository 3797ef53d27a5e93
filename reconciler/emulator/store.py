"""SQLite persistence for the emulator: one table per object kind, JSON bodies, indexed lists.

Objects are kept as JSON documents; the columns are only what lookups and cursor pagination
need (id, parent, insertion order). Listing a thread's runs or messages walks the
``(parent, seq)`` index and never scans other threads. One connection, guarded by a lock, is
shared by every request: uvicorn and the in-process transport both call in from one event
loop, and a lock keeps it safe if a caller uses several threads.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal

JSON = Any
Table = Literal["assistants", "threads", "messages", "runs"]
TABLES: tuple[Table, ...] = ("assistants", "threads", "messages", "runs")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
""" + "".join(
    f"""
CREATE TABLE IF NOT EXISTS {table} (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    parent TEXT,
    tag TEXT,
    active INTEGER NOT NULL DEFAULT 0,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS {table}_by_parent ON {table} (parent, seq);
"""
    for table in TABLES
) + """
CREATE INDEX IF NOT EXISTS runs_active ON runs (parent, active);
"""


class Store:
    """The emulator's state: a SQLite file, or memory when ``path`` is None."""

    def __init__(self, path: str | None) -> None:
        self._lock = threading.RLock()
        self._db = sqlite3.connect(
            path or ":memory:", check_same_thread=False, isolation_level=None
        )
        self._db.execute("PRAGMA journal_mode=WAL" if path else "PRAGMA journal_mode=MEMORY")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._depth = 0

    def close(self) -> None:
        """Release the database (the file keeps everything committed)."""
        with self._lock:
            self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """All-or-nothing for one request's reads and writes; reentrant."""
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    yield
                finally:
                    self._depth -= 1
                return
            self._db.execute("BEGIN IMMEDIATE")
            self._depth = 1
            try:
                yield
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            else:
                self._db.execute("COMMIT")
            finally:
                self._depth = 0

    def next_serial(self) -> int:
        """A counter that only grows, persisted: the time-ordered part of every id."""
        with self._lock:
            row = self._db.execute(
                "INSERT INTO meta (key, value) VALUES ('serial', 1) "
                "ON CONFLICT(key) DO UPDATE SET value = value + 1 RETURNING value"
            ).fetchone()
            return int(row[0])

    def insert(
        self, table: Table, object_id: str, body: JSON, *, parent: str | None = None,
        tag: str | None = None, active: bool = False,
    ) -> None:
        with self._lock:
            self._db.execute(
                f"INSERT INTO {table} (id, parent, tag, active, body) VALUES (?, ?, ?, ?, ?)",
                (object_id, parent, tag, int(active), json.dumps(body, separators=(",", ":"))),
            )

    def exists(self, table: Table, object_id: str) -> bool:
        with self._lock:
            row = self._db.execute(f"SELECT 1 FROM {table} WHERE id = ?", (object_id,)).fetchone()
            return row is not None

    def get(self, table: Table, object_id: str, *, parent: str | None = None) -> JSON | None:
        """The object with that id (and that parent, when given), or None."""
        text = self.get_text(table, object_id, parent=parent)
        return None if text is None else json.loads(text)

    def get_text(self, table: Table, object_id: str, *, parent: str | None = None
                 ) -> str | None:
        """``get`` as stored (JSON text), for callers that cache what they decode."""
        with self._lock:
            row = self._db.execute(
                f"SELECT parent, body FROM {table} WHERE id = ?", (object_id,)
            ).fetchone()
        if row is None or (parent is not None and row[0] != parent):
            return None
        text: str = row[1]
        return text

    def update(self, table: Table, object_id: str, body: JSON, *, active: bool | None = None
               ) -> str:
        """Store ``body`` as the object's new state; returns the JSON text stored."""
        with self._lock:
            text = json.dumps(body, separators=(",", ":"))
            if active is None:
                self._db.execute(f"UPDATE {table} SET body = ? WHERE id = ?", (text, object_id))
            else:
                self._db.execute(
                    f"UPDATE {table} SET body = ?, active = ? WHERE id = ?",
                    (text, int(active), object_id),
                )
            return text

    def delete(self, table: Table, object_id: str) -> None:
        with self._lock:
            self._db.execute(f"DELETE FROM {table} WHERE id = ?", (object_id,))

    def delete_children(self, table: Table, parent: str) -> None:
        with self._lock:
            self._db.execute(f"DELETE FROM {table} WHERE parent = ?", (parent,))

    def active(self, table: Table, parent: str) -> list[JSON]:
        """Objects of a parent still marked active (for runs: not yet settled)."""
        with self._lock:
            rows = self._db.execute(
                f"SELECT body FROM {table} WHERE parent = ? AND active = 1 ORDER BY seq",
                (parent,),
            ).fetchall()
        return [json.loads(row[0]) for row in rows]

    def page(
        self, table: Table, *, parent: str | None, limit: int, order: str,
        after: str | None = None, before: str | None = None, tag: str | None = None,
    ) -> tuple[list[JSON], bool] | str:
        """One page of a cursor-paginated list and whether more follow.

        Returns the name of the cursor parameter instead when its id is not in this list.
        """
        found = self.page_text(table, parent=parent, limit=limit, order=order, after=after,
                               before=before, tag=tag)
        if isinstance(found, str):
            return found
        rows, has_more = found
        return [json.loads(text) for _, text in rows], has_more

    def page_text(
        self, table: Table, *, parent: str | None, limit: int, order: str,
        after: str | None = None, before: str | None = None, tag: str | None = None,
    ) -> tuple[list[tuple[str, str]], bool] | str:
        """``page`` as stored: (id, JSON text) pairs, for callers that cache what they decode."""
        where = ["parent IS ?"]
        args: list[object] = [parent]
        if tag is not None:
            where.append("tag = ?")
            args.append(tag)
        descending = order == "desc"
        reverse = False
        with self._lock:
            for name, cursor in (("after", after), ("before", before)):
                if cursor is None:
                    continue
                row = self._db.execute(
                    f"SELECT seq FROM {table} WHERE id = ? AND parent IS ?", (cursor, parent)
                ).fetchone()
                if row is None:
                    return name
                later = (name == "after") != descending
                where.append("seq > ?" if later else "seq < ?")
                args.append(int(row[0]))
            # with only `before`, read towards the cursor and flip, so the page is adjacent
            direction_desc = descending
            if before is not None and after is None:
                direction_desc = not descending
                reverse = True
            rows: list[tuple[str, str]] = self._db.execute(
                f"SELECT id, body FROM {table} WHERE {' AND '.join(where)} "
                f"ORDER BY seq {'DESC' if direction_desc else 'ASC'} LIMIT ?",
                (*args, limit + 1),
            ).fetchall()
        items = rows[:limit]
        if reverse:
            items.reverse()
        return items, len(rows) > limit

    def count(self, table: Table) -> int:
        with self._lock:
            return int(self._db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])
