"""What every lock backend shares: who holds it, the errors a loser sees, and how it waits.

A loser must be able to name the winner, so each backend records a ``LockHolder``; the polling
here is written once so that both backends wait, and time out, the same way.
"""

from __future__ import annotations

import getpass
import os
import socket
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Protocol, Self

from reconciler.errors import ReconcilerError
from reconciler.timestamps import utc_timestamp

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
        since=utc_timestamp(now),
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


class HeldWhileInside:
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


# --- waiting ---------------------------------------------------------------------------------


def poll(
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


#: How long a loser waits for the winner's record, to name it: a winner writes it right after
#: it takes the lock, so a few polls suffice.
_RECORD_POLLS = 10
_RECORD_POLL_SECONDS = 0.05


def await_record(read: Callable[[], LockHolder | None], sleep: Sleep) -> LockHolder | None:
    """The holder's record, read again for a moment while the holder is still writing it."""
    for _ in range(_RECORD_POLLS):
        sleep(_RECORD_POLL_SECONDS)
        found = read()
        if found is not None:
            return found
    return None
