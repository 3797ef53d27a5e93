"""The intent journal: creates of runs that were sent but whose outcome is not known yet.

The API has no idempotency keys, and a create whose answer was lost may still land later (a
gateway can hold the request). So each create attempt is written down *before* it is sent and
resolved once its outcome is known; a restarted apply that finds an unresolved attempt waits
out its settle window instead of creating a duplicate run.

Every method is one short synchronous write or read, fine to call from async code.
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import astuple, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from reconciler.errors import ReconcilerError
from reconciler.lock import (
    connect_postgres,
    database_failure,
    ensure_table,
    is_postgres_url,
    redact_url,
)

if TYPE_CHECKING:
    import psycopg

JOURNAL_FILE = "journal.sqlite"
INTENTS_TABLE = "reconciler_intents"
BUSY_TIMEOUT_MS = 10_000


class JournalError(ReconcilerError):
    """The intent journal cannot be opened or written."""


@dataclass(frozen=True)
class Intent:
    """One create attempt: which run, on which backend, sent (or about to be sent) when."""

    attempt_id: str
    project: str
    backend: str
    thread_id: str
    name: str
    started_at: float


class IntentJournal(Protocol):
    """Where create attempts are recorded before they are sent."""

    def record(self, intent: Intent) -> None:
        """Write the attempt down, durably, before its request goes out."""

    def resolve(self, attempt_id: str) -> None:
        """The attempt's outcome is known: forget it (harmless if already resolved)."""

    def pending(self, project: str, backend: str) -> list[Intent]:
        """Unresolved attempts of a project on a backend, oldest first."""
        ...

    def close(self) -> None: ...


class MemoryJournal:
    """A journal in memory, for tests and library use: it dies with the process."""

    def __init__(self) -> None:
        self._intents: dict[str, Intent] = {}
        self._mutex = threading.Lock()

    def record(self, intent: Intent) -> None:
        with self._mutex:
            if intent.attempt_id in self._intents:
                raise JournalError(f"the attempt {intent.attempt_id} is already in the journal")
            self._intents[intent.attempt_id] = intent

    def resolve(self, attempt_id: str) -> None:
        with self._mutex:
            self._intents.pop(attempt_id, None)

    def pending(self, project: str, backend: str) -> list[Intent]:
        with self._mutex:  # dicts keep insertion order, which breaks started_at ties
            found = [i for i in self._intents.values()
                     if i.project == project and i.backend == backend]
        return sorted(found, key=lambda i: i.started_at)

    def close(self) -> None:
        pass


_SQLITE_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS {INTENTS_TABLE} (
    attempt_id TEXT PRIMARY KEY,
    project TEXT NOT NULL,
    backend TEXT NOT NULL,
    thread_id TEXT NOT NULL,
    name TEXT NOT NULL,
    started_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS {INTENTS_TABLE}_scope ON {INTENTS_TABLE} (project, backend);
"""
_COLUMNS = "attempt_id, project, backend, thread_id, name, started_at"


class LocalJournal:
    """``<directory>/journal.sqlite``, shared by the processes of one machine.

    WAL with ``synchronous=NORMAL``: a commit is in the file as soon as it returns, so it
    survives ``kill -9`` of the process, and it costs no fsync; a busy timeout lets several
    processes write in turn.
    """

    def __init__(self, directory: Path) -> None:
        self.path = Path(directory) / JOURNAL_FILE
        self._mutex = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(
                self.path,
                timeout=BUSY_TIMEOUT_MS / 1000,
                isolation_level=None,
                check_same_thread=False,
            )
        except (OSError, sqlite3.Error) as exc:
            raise JournalError(f"cannot open the intent journal {self.path}: {exc}") from exc
        try:
            self._db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("PRAGMA synchronous = NORMAL")
            self._db.executescript(_SQLITE_SCHEMA)
        except sqlite3.Error as exc:
            self._db.close()
            raise JournalError(f"cannot open the intent journal {self.path}: {exc}") from exc

    def _run(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        with self._mutex:
            try:
                return self._db.execute(sql, params).fetchall()
            except sqlite3.IntegrityError as exc:
                raise JournalError(
                    f"the attempt {params[0]} is already in the journal {self.path}"
                ) from exc
            except sqlite3.Error as exc:
                raise JournalError(f"cannot use the intent journal {self.path}: {exc}") from exc

    def record(self, intent: Intent) -> None:
        self._run(f"INSERT INTO {INTENTS_TABLE} ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)",
                  astuple(intent))

    def resolve(self, attempt_id: str) -> None:
        self._run(f"DELETE FROM {INTENTS_TABLE} WHERE attempt_id = ?", (attempt_id,))

    def pending(self, project: str, backend: str) -> list[Intent]:
        rows = self._run(
            f"SELECT {_COLUMNS} FROM {INTENTS_TABLE} WHERE project = ? AND backend = ? "
            "ORDER BY started_at, rowid",
            (project, backend),
        )
        return [Intent(*row) for row in rows]

    def close(self) -> None:
        with self._mutex:
            self._db.close()


_PG_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS {INTENTS_TABLE} (
    attempt_id text PRIMARY KEY,
    project text NOT NULL,
    backend text NOT NULL,
    thread_id text NOT NULL,
    name text NOT NULL,
    started_at double precision NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS {INTENTS_TABLE}_scope ON {INTENTS_TABLE} (project, backend);
"""


class PostgresJournal:
    """The table ``reconciler_intents``, in the database that holds the shared lock.

    With runners on many machines the journal has to be where the lock is: the runner that
    takes over a project must see the attempts of the one before it.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self._mutex = threading.Lock()
        self._conn: psycopg.Connection[Any] = connect_postgres(
            url, error=JournalError, what="journal"
        )
        import psycopg

        try:
            ensure_table(self._conn, INTENTS_TABLE, _PG_SCHEMA)
        except psycopg.Error as exc:
            self._conn.close()
            raise self._failure(exc) from None

    def _failure(self, exc: BaseException) -> JournalError:
        return JournalError(
            f"the PostgreSQL journal at {redact_url(self.url)} failed: "
            f"{database_failure(self.url, exc)}"
        )

    def _run(self, sql: str, params: tuple[Any, ...], *, rows: bool = False) -> list[Any]:
        import psycopg.errors

        with self._mutex:
            try:
                cursor = self._conn.execute(sql, params)
                return cursor.fetchall() if rows else []
            except psycopg.errors.UniqueViolation:
                raise JournalError(f"the attempt {params[0]} is already in the journal") from None
            except psycopg.Error as exc:
                raise self._failure(exc) from None

    def record(self, intent: Intent) -> None:
        self._run(f"INSERT INTO {INTENTS_TABLE} ({_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s)",
                  astuple(intent))

    def resolve(self, attempt_id: str) -> None:
        self._run(f"DELETE FROM {INTENTS_TABLE} WHERE attempt_id = %s", (attempt_id,))

    def pending(self, project: str, backend: str) -> list[Intent]:
        found = self._run(
            f"SELECT {_COLUMNS} FROM {INTENTS_TABLE} WHERE project = %s AND backend = %s "
            "ORDER BY started_at, recorded_at",
            (project, backend),
            rows=True,
        )
        return [Intent(*row) for row in found]

    def close(self) -> None:
        with self._mutex:
            self._conn.close()


def open_journal(url: str | None, directory: Path) -> IntentJournal:
    """The journal beside the lock: PostgreSQL for ``postgresql://…``, SQLite for None."""
    if url is None:
        return LocalJournal(directory)
    if is_postgres_url(url):
        return PostgresJournal(url)
    raise JournalError(f"unsupported journal URL {redact_url(url)}, expected postgresql://…")
