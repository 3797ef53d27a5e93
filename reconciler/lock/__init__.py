"""The per-project lock every writing command holds, so two applies never interleave.

Two backends, as Terraform has: a lock file for one machine (``LocalLock``, an ``flock`` that
the kernel drops when its holder dies, even by ``kill -9``) and a PostgreSQL advisory lock for
CI runners on many machines (``PostgresLock``, dropped by the server when the holder's
connection goes away). Both record who holds the lock, so the loser can name the holder.

The package's public face; import from here, not from the rooms, which are:

- ``holder``: who holds a lock (``LockHolder``, ``new_holder``), ``LockError`` and
  ``LockHeldError``, the ``ProjectLock`` protocol, and the polling both backends wait with;
- ``local``: ``LocalLock``, the ``flock``ed file with a JSON record, and the
  ``reconciler lock show`` / ``force-unlock`` look at it (``local_lock_status``,
  ``force_unlock_local``);
- ``database``: the PostgreSQL plumbing shared with the intent journal (connecting, first-use
  tables, advisory keys, the password kept out of messages);
- ``postgres``: ``PostgresLock``, the session advisory lock and its ``reconciler_locks`` row;
- ``url``: ``open_lock``, the backend a lock URL names.
"""

from __future__ import annotations

from reconciler.lock.database import (
    CONNECT_TIMEOUT,
    advisory_key,
    connect_postgres,
    database_failure,
    ensure_table,
    is_postgres_url,
    redact_url,
)
from reconciler.lock.holder import (
    Clock,
    LockError,
    LockHeldError,
    LockHolder,
    ProjectLock,
    Sleep,
    new_holder,
)
from reconciler.lock.local import (
    LOCK_FILE,
    LocalLock,
    LockStatus,
    force_unlock_local,
    local_lock_status,
)
from reconciler.lock.postgres import LOCKS_TABLE, PostgresLock
from reconciler.lock.url import open_lock

__all__ = [
    "CONNECT_TIMEOUT",
    "LOCKS_TABLE",
    "LOCK_FILE",
    "Clock",
    "LocalLock",
    "LockError",
    "LockHeldError",
    "LockHolder",
    "LockStatus",
    "PostgresLock",
    "ProjectLock",
    "Sleep",
    "advisory_key",
    "connect_postgres",
    "database_failure",
    "ensure_table",
    "force_unlock_local",
    "is_postgres_url",
    "local_lock_status",
    "new_holder",
    "open_lock",
    "redact_url",
]
