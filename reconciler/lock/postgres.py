"""The lock for CI runners on many machines: a PostgreSQL session advisory lock.

Advisory because the server drops it with the holder's connection, so a killed apply never
leaves it behind; the ``reconciler_locks`` row exists only so a loser can name the holder.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from reconciler.lock.database import (
    advisory_key,
    connect_postgres,
    database_failure,
    ensure_table,
    redact_url,
)
from reconciler.lock.holder import (
    Clock,
    HeldWhileInside,
    LockError,
    LockHeldError,
    LockHolder,
    Sleep,
    await_record,
    poll,
)

if TYPE_CHECKING:
    import psycopg

LOCKS_TABLE = "reconciler_locks"

_LOCKS_DDL = f"""
CREATE TABLE IF NOT EXISTS {LOCKS_TABLE} (
    project text PRIMARY KEY,
    lock_id text NOT NULL,
    holder jsonb NOT NULL,
    acquired_at timestamptz NOT NULL DEFAULT now()
)
"""


class PostgresLock(HeldWhileInside):
    """A session advisory lock keyed on the project, as Terraform's pg backend.

    One connection stays open while the lock is held: the server drops the lock with the
    connection, so a killed apply never leaves it behind. The ``reconciler_locks`` row only
    names the holder for the losers.
    """

    def __init__(
        self,
        url: str,
        holder: LockHolder,
        *,
        timeout: float = 0.0,
        poll_interval: float = 0.5,
        clock: Clock = time.monotonic,
        sleep: Sleep = time.sleep,
    ) -> None:
        self.url = url
        self.holder = holder
        self.timeout = timeout
        self.poll_interval = poll_interval
        self.key = advisory_key(holder.project)
        self._clock = clock
        self._sleep = sleep
        self._conn: psycopg.Connection[Any] | None = None
        self._seen: LockHolder | None = None

    @property
    def held(self) -> bool:
        return self._conn is not None

    def acquire(self, timeout: float) -> None:
        """Take the lock within ``timeout`` seconds; a no-op when this object holds it already."""
        if self._conn is not None:
            return
        conn = connect_postgres(self.url, error=LockError, what="lock")
        import psycopg  # connect_postgres has checked that it is there

        self._seen = None
        try:
            ensure_table(conn, LOCKS_TABLE, _LOCKS_DDL)
            won = poll(
                lambda: self._try_once(conn), timeout, self.poll_interval, self._clock, self._sleep
            )
        except psycopg.Error as exc:
            conn.close()
            raise LockError(
                f"the PostgreSQL lock at {redact_url(self.url)} failed: "
                f"{database_failure(self.url, exc)}"
            ) from None
        except BaseException:
            conn.close()
            raise
        if not won:
            if self._seen is None:  # the winner holds the key but has not written its row yet
                self._seen = await_record(lambda: self._read_row(conn), self._sleep)
            conn.close()
            raise LockHeldError(self.holder.project, self._seen, timeout)
        self._conn = conn

    def _try_once(self, conn: psycopg.Connection[Any]) -> bool:
        row = conn.execute("SELECT pg_try_advisory_lock(%s)", (self.key,)).fetchone()
        if row and row[0]:
            conn.execute(
                f"INSERT INTO {LOCKS_TABLE} (project, lock_id, holder, acquired_at) "
                "VALUES (%s, %s, %s::jsonb, now()) "
                "ON CONFLICT (project) DO UPDATE SET lock_id = EXCLUDED.lock_id, "
                "holder = EXCLUDED.holder, acquired_at = EXCLUDED.acquired_at",
                (self.holder.project, self.holder.lock_id, json.dumps(self.holder.to_dict())),
            )
            return True
        # The row names the holder only while the key is held; a stale one is just retried.
        self._seen = self._read_row(conn) or self._seen
        return False

    def _read_row(self, conn: psycopg.Connection[Any]) -> LockHolder | None:
        import psycopg

        try:
            found = conn.execute(
                f"SELECT holder FROM {LOCKS_TABLE} WHERE project = %s", (self.holder.project,)
            ).fetchone()
        except psycopg.Error:
            return None
        if found is None:
            return None
        try:
            return LockHolder.from_dict(found[0])
        except LockError:
            return None

    def release(self) -> None:
        """Delete our row and unlock; closing the connection would free the lock anyway."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        import psycopg

        try:
            conn.execute(
                f"DELETE FROM {LOCKS_TABLE} WHERE project = %s AND lock_id = %s",
                (self.holder.project, self.holder.lock_id),
            )
            conn.execute("SELECT pg_advisory_unlock(%s)", (self.key,))
        except psycopg.Error:
            pass
        finally:
            conn.close()
