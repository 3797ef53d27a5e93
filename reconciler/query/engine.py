"""The SQL engine: SQLite, in memory, one database per statement.

StackQL keeps fetched rows in SQLite and runs the user's SELECT there, so ``LIKE`` (ASCII
case-insensitive), ``JSON_EXTRACT``, NULL and collation behave as StackQL users know them.
The runs are loaded into a table ``runs`` with the page's column names and types (objects and
arrays as compact JSON text, booleans as 0/1); the compiled SELECT reads only that table.
Nothing here touches a file or the network.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from reconciler.identity import canonical_json
from reconciler.query.catalog import FIELD_TYPES
from reconciler.query.result import QueryResult
from reconciler.query.statements import Scalar, Select

TABLE = "runs"
_AFFINITY = {"integer": "INTEGER", "number": "REAL", "boolean": "INTEGER"}  # else TEXT


def cell(value: Any) -> Scalar:
    """A run field as a table cell: scalars as they are, objects and arrays as JSON text."""
    if isinstance(value, dict | list):
        return canonical_json(value)
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def _database(fields: Sequence[str]) -> sqlite3.Connection:
    connection = sqlite3.connect(":memory:")
    columns = ", ".join(f'"{name}" {_AFFINITY.get(FIELD_TYPES[name], "TEXT")}'
                        for name in fields)
    connection.execute(f"CREATE TABLE {TABLE} ({columns})")
    return connection


def check(sql: str, fields: Sequence[str]) -> str | None:
    """SQLite's complaint about ``sql`` (an unknown function, a misused aggregate), if any.

    Run on an empty table, so a mistake costs no request.
    """
    connection = _database(fields)
    try:
        connection.execute(sql).fetchall()
    except sqlite3.Error as exc:
        return str(exc)
    finally:
        connection.close()
    return None


def rows_of(runs: Iterable[Mapping[str, Any]], fields: Sequence[str]) -> list[tuple[Scalar, ...]]:
    """The table rows of ``runs``: one tuple of cells per run, in ``fields`` order."""
    return [tuple([cell(run.get(name)) for name in fields]) for run in runs]


def run_select(select: Select, runs: Iterable[Mapping[str, Any]]) -> QueryResult:
    """``select.sql`` over ``runs``; boolean fields come back as true/false, not 0/1."""
    connection = _database(select.fields)
    try:
        marks = ", ".join("?" * len(select.fields))
        connection.executemany(f"INSERT INTO {TABLE} VALUES ({marks})",
                               rows_of(runs, select.fields))
        cursor = connection.execute(select.sql)
        rows = cursor.fetchall()
        labels = tuple(column[0] for column in cursor.description)
    finally:
        connection.close()
    flags = select.booleans
    if any(flags):
        rows = [tuple(bool(v) if flag and v is not None else v
                      for v, flag in zip(row, flags, strict=True)) for row in rows]
    return QueryResult(labels, tuple(rows))


def like(pattern: str, values: Sequence[str]) -> list[bool]:
    """SQLite's ``value LIKE pattern`` for each value (SHOW … LIKE uses the same rules)."""
    connection = sqlite3.connect(":memory:")
    try:
        return [bool(connection.execute("SELECT ? LIKE ?", (v, pattern)).fetchone()[0])
                for v in values]
    finally:
        connection.close()
