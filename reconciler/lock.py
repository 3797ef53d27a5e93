"""The per-project lock every writing command holds, so two applies never interleave.

Two backends, as Terraform has: a lock file for one machine (``LocalLock``, an ``flock`` that
the kernel drops when its holder dies, even by ``kill -9``) and a PostgreSQL advisory lock for
CI runners on many machines (``PostgresLock``, dropped by the server when the holder's
connection goes away). Both record who holds the lock, so the loser can name the holder.
"""

from __future__ import annotations

import contextlib
import fcntl
import getpass
import hashlib
import json
import os
import re
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol, Self
from urllib.parse import unquote

from reconciler.errors import ReconcilerError

if TYPE_CHECKING:
    import psycopg

LOCK_FILE = "lock"
LOCKS_TABLE = "reconciler_locks"
CONNECT_TIMEOUT = 10
# Serialises the CREATE TABLE of a first use: concurrent CREATE TABLE IF NOT EXISTS can fail.
_DDL_KEY_NAME = "reconciler:ddl"
_RECORD_LIMIT = 64 * 1024
_POSTGRES_SCHEMES = ("postgresql://", "postgres://")

Clock = Callable[[], float]
Sleep = Callable[[float], None]


class LockError(ReconcilerError):
    """A lock backend could not be used (folder not writable, database unreachable, …)."""


class LockHeldError(LockError):
    """Someone else holds the project's lock; ``holder`` names them if their record is readable."""

    def __init__(
        self,
        project: str,
        holder: LockHolder | None,
        waited: float,
        *,
        force_unlock_hint: bool = False,
    ) -> None:
        self.project = project
        self.holder = holder
        self.waited = waited
        who = holder.describe() if holder is not None else (
            "another process (its lock record could not be read)"
        )
        message = f"the project '{project}' is locked by {who}; waited {waited:g}s (--lock-timeout)"
        if force_unlock_hint and holder is not None:
            message += (
                f"; if that process is gone for good, "
                f"`reconciler lock force-unlock {holder.lock_id}` breaks it"
            )
        super().__init__(message)


@dataclass(frozen=True)
class LockHolder:
    """Who holds a lock: enough for a person to find the process and decide what to do."""

    lock_id: str
    project: str
    who: str
    host: str
    pid: int
    command: str
    since: str

    def describe(self) -> str:
        """The holder as a user reads it in a "locked by …" message."""
        return (
            f"{self.who}@{self.host} (pid {self.pid}, `{self.command}`) since {self.since}, "
            f"lock id {self.lock_id}"
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> LockHolder:
        """Read a record written by ``to_dict``; anything else is a ``LockError``, not a crash."""
        if not isinstance(data, dict):
            raise LockError("the lock record is not a JSON object")
        values: dict[str, Any] = {}
        for field in fields(cls):
            value = data.get(field.name)
            expected: type = int if field.name == "pid" else str
            if not isinstance(value, expected) or isinstance(value, bool):
                raise LockError(f"the lock record has no valid {field.name!r}")
            values[field.name] = value
        return cls(**values)


def new_holder(project: str, command: str, *, now: datetime | None = None) -> LockHolder:
    """A fresh holder for this process; a naive ``now`` is taken as UTC."""
    if now is None:
        now = datetime.now(UTC)
    elif now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    try:
        who = getpass.getuser()
    except Exception:  # getuser raises OSError or KeyError when nothing names the user
        who = "unknown"
    try:
        host = socket.gethostname()
    except OSError:
        host = "unknown"
    return LockHolder(
        lock_id=uuid.uuid4().hex,
        project=project,
        who=who or "unknown",
        host=host or "unknown",
        pid=os.getpid(),
        command=command,
        since=now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    )


class ProjectLock(Protocol):
    """What a writing command needs from a lock, whichever backend holds it."""

    holder: LockHolder

    def acquire(self, timeout: float) -> None:
        """Take the lock, trying for ``timeout`` seconds (0: once); ``LockHeldError`` if not."""

    def release(self) -> None:
        """Give the lock up; harmless when not held."""

    def __enter__(self) -> ProjectLock: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


def _poll(
    try_once: Callable[[], bool],
    timeout: float,
    poll_interval: float,
    clock: Clock,
    sleep: Sleep,
) -> bool:
    """Call ``try_once`` until it succeeds or ``timeout`` has passed on ``clock``."""
    deadline = clock() + max(timeout, 0.0)
    while True:
        if try_once():
            return True
        now = clock()
        if now >= deadline:
            return False
        sleep(min(poll_interval, deadline - now))


# --- the local lock file ---------------------------------------------------------------------


#: How long a loser waits for the winner's record, to name it: a winner writes it right after
#: it takes the lock, so a few polls suffice.
_RECORD_POLLS = 10
_RECORD_POLL_SECONDS = 0.05


def _await_record(read: Callable[[], LockHolder | None], sleep: Sleep) -> LockHolder | None:
    """The holder's record, read again for a moment while the holder is still writing it."""
    for _ in range(_RECORD_POLLS):
        sleep(_RECORD_POLL_SECONDS)
        found = read()
        if found is not None:
            return found
    return None


def _same_file(path: Path, fd: int) -> bool:
    """Whether ``path`` still names the file open as ``fd`` (a release may have unlinked it)."""
    try:
        on_disk = os.stat(path)
    except FileNotFoundError:
        return False
    mine = os.fstat(fd)
    return (on_disk.st_dev, on_disk.st_ino) == (mine.st_dev, mine.st_ino)


def _read_record(fd: int) -> LockHolder | None:
    """The holder recorded in an open lock file, or None while it is empty, partial or junk."""
    try:
        data = os.pread(fd, _RECORD_LIMIT, 0)
        return LockHolder.from_dict(json.loads(data.decode("utf-8")))
    except (OSError, ValueError, LockError):
        return None


def _try_flock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)


class _HeldWhileInside:
    """``with lock:`` takes it within the lock's own timeout and releases it at the end."""

    timeout: float

    def acquire(self, timeout: float) -> None:
        raise NotImplementedError

    def release(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        self.acquire(self.timeout)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


class LocalLock(_HeldWhileInside):
    """The lock file ``<directory>/lock``: an ``flock`` plus a JSON record of the holder.

    The kernel drops the ``flock`` of a process that dies, so a crash never leaves the project
    locked; the record left behind is only a stale note. A release or a force-unlock removes
    the file, and an acquirer checks that the file it locked is still the one at the path.
    """

    def __init__(
        self,
        directory: Path,
        holder: LockHolder,
        *,
        timeout: float = 0.0,
        poll_interval: float = 0.2,
        clock: Clock = time.monotonic,
        sleep: Sleep = time.sleep,
    ) -> None:
        self.directory = Path(directory)
        self.path = self.directory / LOCK_FILE
        self.holder = holder
        self.timeout = timeout
        self.poll_interval = poll_interval
        self._clock = clock
        self._sleep = sleep
        self._fd: int | None = None
        self._seen: LockHolder | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self, timeout: float) -> None:
        """Take the lock within ``timeout`` seconds; a no-op when this object holds it already."""
        if self._fd is not None:
            return
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise LockError(
                f"cannot create the lock folder {self.directory}: {_reason(exc)}"
            ) from exc
        self._seen = None
        if not _poll(self._try_once, timeout, self.poll_interval, self._clock, self._sleep):
            if self._seen is None:  # the winner holds the flock but has not written its record
                self._seen = _await_record(self._read_path, self._sleep)
            raise LockHeldError(
                self.holder.project, self._seen, timeout, force_unlock_hint=True
            )

    def _read_path(self) -> LockHolder | None:
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return None
        try:
            return _read_record(fd)
        finally:
            os.close(fd)

    def _try_once(self) -> bool:
        while True:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            except OSError as exc:
                raise LockError(f"cannot open the lock file {self.path}: {_reason(exc)}") from exc
            try:
                if not _try_flock(fd):
                    self._seen = _read_record(fd) or self._seen
                    os.close(fd)
                    return False
                if not _same_file(self.path, fd):
                    os.close(fd)  # unlinked by a release or force-unlock since we opened it
                    continue
                data = json.dumps(self.holder.to_dict(), sort_keys=True).encode("utf-8")
                os.ftruncate(fd, 0)
                written = 0
                while written < len(data):
                    written += os.pwrite(fd, data[written:], written)
                os.fsync(fd)
            except OSError as exc:
                os.close(fd)
                raise LockError(f"cannot write the lock file {self.path}: {_reason(exc)}") from exc
            self._fd = fd
            return True

    def release(self) -> None:
        """Remove the lock file if it is still ours, then drop the ``flock``."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            if _same_file(self.path, fd):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.path)
        except OSError:
            pass  # closing the descriptor below frees the lock all the same
        finally:
            os.close(fd)


@dataclass(frozen=True)
class LockStatus:
    """A look at a local lock: ``held=False`` with a holder is the stale record of a dead one."""

    holder: LockHolder | None
    held: bool


def local_lock_status(directory: Path) -> LockStatus:
    """Whether the local lock is held now, probing with an ``flock`` that is released at once."""
    path = Path(directory) / LOCK_FILE
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return LockStatus(holder=None, held=False)
    except OSError as exc:
        raise LockError(f"cannot open the lock file {path}: {_reason(exc)}") from exc
    try:
        free = _try_flock(fd)
        return LockStatus(holder=_read_record(fd), held=not free)
    finally:
        os.close(fd)  # also drops the probe's flock


def force_unlock_local(directory: Path, lock_id: str) -> LockHolder:
    """Break the local lock recorded under ``lock_id`` and return whom it named.

    The file is removed, so the next acquirer makes a fresh one; the old holder, if it is only
    hung, will find its file gone and leave the new one alone.
    """
    path = Path(directory) / LOCK_FILE
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise LockError(f"there is no lock to break in {directory}") from None
    except OSError as exc:
        raise LockError(f"cannot open the lock file {path}: {_reason(exc)}") from exc
    try:
        # When nobody holds it, holding it ourselves keeps a new acquirer out while we unlink.
        _try_flock(fd)
        holder = _read_record(fd)
        if holder is None:
            raise LockError(
                f"the lock file {path} holds no readable record; remove it by hand "
                f"if no reconciler is running"
            )
        if holder.lock_id != lock_id:
            raise LockError(
                f"lock id {lock_id} does not match the lock on the project '{holder.project}' "
                f"(lock id {holder.lock_id}); nothing was unlocked"
            )
        if _same_file(path, fd):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        return holder
    except OSError as exc:
        raise LockError(f"cannot remove the lock file {path}: {_reason(exc)}") from exc
    finally:
        os.close(fd)


# --- the PostgreSQL advisory lock ------------------------------------------------------------


def advisory_key(project: str) -> int:
    """The project's advisory-lock key: a signed 64-bit int from sha256, stable across versions."""
    digest = hashlib.sha256(b"reconciler:" + project.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


_URL_USERINFO = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^?#]*)@")
_QUERY_PASSWORD = re.compile(r"(?i)([?&]password=)[^&#]*")
_KEYWORD_PASSWORD = re.compile(r"(?i)\bpassword\s*=\s*('(?:[^'\\]|\\.)*'|\S+)")


def redact_url(url: str) -> str:
    """The URL (or ``key=value`` string) with any password replaced by ``***``, fit for messages."""
    match = _URL_USERINFO.match(url)
    if match is None and "://" not in url:
        return _KEYWORD_PASSWORD.sub("password=***", url)
    if match and ":" in match["userinfo"]:
        user = match["userinfo"].split(":", 1)[0]
        url = f"{match['scheme']}{user}:***@{url[match.end():]}"
    return _QUERY_PASSWORD.sub(r"\1***", url)


def _secrets(url: str) -> list[str]:
    """Every spelling of the password in ``url``, longest first."""
    found: list[str] = []
    match = _URL_USERINFO.match(url)
    if match is None and "://" not in url:
        found += [m[1].strip("'") for m in _KEYWORD_PASSWORD.finditer(url)]
    else:
        if match and ":" in match["userinfo"]:
            found.append(match["userinfo"].split(":", 1)[1])
        for query in _QUERY_PASSWORD.finditer(url):
            found.append(re.split(r"[&#]", url[query.end():], maxsplit=1)[0])
    found += [unquote(secret) for secret in found]
    return sorted({secret for secret in found if secret}, key=len, reverse=True)


def database_failure(url: str, exc: BaseException) -> str:
    """psycopg's complaint as one clause: first line only, every form of the password removed."""
    text = str(exc).strip().splitlines()
    reason = text[0].strip() if text else type(exc).__name__
    for secret in _secrets(url):
        reason = reason.replace(secret, "***")
    return reason.rstrip(".")


def connect_postgres(
    url: str, *, error: type[ReconcilerError], what: str
) -> psycopg.Connection[Any]:
    """One autocommit connection, or ``error`` as one sentence that never shows the password.

    psycopg is imported here, so nothing needs it unless a PostgreSQL backend is used.
    """
    try:
        import psycopg
    except ImportError:
        raise error(f"the PostgreSQL {what} needs psycopg: pip install 'psycopg[binary]'") from None
    try:
        return psycopg.connect(
            url,
            autocommit=True,
            connect_timeout=CONNECT_TIMEOUT,
            application_name=f"reconciler {what}",
        )
    except psycopg.Error as exc:
        raise error(
            f"cannot connect to the PostgreSQL {what} database {redact_url(url)}: "
            f"{database_failure(url, exc)}"
        ) from None


def ensure_table(conn: psycopg.Connection[Any], table: str, ddl: str) -> None:
    """Create ``table`` on first use, one creator at a time (concurrent IF NOT EXISTS can fail)."""
    exists = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (table,)).fetchone()
    if exists and exists[0]:
        return
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (advisory_key(_DDL_KEY_NAME),))
        conn.execute(ddl)


_LOCKS_DDL = f"""
CREATE TABLE IF NOT EXISTS {LOCKS_TABLE} (
    project text PRIMARY KEY,
    lock_id text NOT NULL,
    holder jsonb NOT NULL,
    acquired_at timestamptz NOT NULL DEFAULT now()
)
"""


class PostgresLock(_HeldWhileInside):
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
            won = _poll(
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
                self._seen = _await_record(lambda: self._read_row(conn), self._sleep)
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


def is_postgres_url(url: str) -> bool:
    return url.startswith(_POSTGRES_SCHEMES)


def open_lock(
    url: str | None, directory: Path, holder: LockHolder, *, timeout: float
) -> ProjectLock:
    """The lock a URL names: PostgreSQL for ``postgresql://…``, the local file for None."""
    if url is None:
        return LocalLock(directory, holder, timeout=timeout)
    if is_postgres_url(url):
        return PostgresLock(url, holder, timeout=timeout)
    raise LockError(f"unsupported lock URL {redact_url(url)}, expected postgresql://…")
