"""The PostgreSQL plumbing the shared lock and the intent journal both stand on.

Kept apart from ``PostgresLock`` because the journal (``reconciler.journal``) uses it too:
one way to connect, to create a table on first use, to key an advisory lock, and to word a
database failure without ever showing the URL's password.
"""

from __future__ import annotations

import hashlib
import re
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from reconciler.errors import ReconcilerError

if TYPE_CHECKING:
    import psycopg

CONNECT_TIMEOUT = 10
# Serialises the CREATE TABLE of a first use: concurrent CREATE TABLE IF NOT EXISTS can fail.
_DDL_KEY_NAME = "reconciler:ddl"
_POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def is_postgres_url(url: str) -> bool:
    return url.startswith(_POSTGRES_SCHEMES)


def advisory_key(project: str) -> int:
    """The project's advisory-lock key: a signed 64-bit int from sha256, stable across versions."""
    digest = hashlib.sha256(b"reconciler:" + project.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


# --- the password kept out of messages -------------------------------------------------------


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


# --- connecting and first use ----------------------------------------------------------------


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
