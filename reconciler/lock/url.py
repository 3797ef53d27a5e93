"""The lock URL (``RECONCILER_LOCK_URL``, else ``lock`` in ``reconciler.toml``) → its backend.

The one place that knows every backend, so a writing command asks for "the lock" and never
cares which one it got.
"""

from __future__ import annotations

from pathlib import Path

from reconciler.lock.database import is_postgres_url, redact_url
from reconciler.lock.holder import LockError, LockHolder, ProjectLock
from reconciler.lock.local import LocalLock
from reconciler.lock.postgres import PostgresLock


def open_lock(
    url: str | None, directory: Path, holder: LockHolder, *, timeout: float
) -> ProjectLock:
    """The lock a URL names: PostgreSQL for ``postgresql://…``, the local file for None."""
    if url is None:
        return LocalLock(directory, holder, timeout=timeout)
    if is_postgres_url(url):
        return PostgresLock(url, holder, timeout=timeout)
    raise LockError(f"unsupported lock URL {redact_url(url)}, expected postgresql://…")
