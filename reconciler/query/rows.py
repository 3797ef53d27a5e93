"""Pure row work for SELECT: client-side WHERE, ORDER BY, LIMIT and projection of runs.

The API filters runs by thread only, so everything else in WHERE is evaluated here.
Objects and arrays become JSON text, as StackQL shows them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from reconciler.identity import canonical_json
from reconciler.query.statements import Column, Condition, Op, OrderBy, Scalar


def cell(value: Any) -> Scalar:
    """A run field as a table cell: scalars as they are, objects and arrays as JSON text."""
    if isinstance(value, dict | list):
        return canonical_json(value)
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def _text(value: Scalar) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _number(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


def _compare(left: Any, right: Scalar) -> int | None:
    """-1/0/1, or None when either side is NULL (SQL: NULL compares as unknown)."""
    if left is None or right is None:
        return None
    a, b = _number(left), _number(right)
    if a is None and b is not None:
        try:
            a = float(_text(cell(left)))
        except ValueError:
            a = None
    if a is not None and b is None and isinstance(right, str):
        try:
            b = float(right)
        except ValueError:
            b = None
    if a is not None and b is not None:
        return (a > b) - (a < b)
    x, y = _text(cell(left)), _text(right)
    return (x > y) - (x < y)


def _like(pattern: str) -> re.Pattern[str]:
    """SQLite's LIKE (StackQL's engine): % and _ wildcards, ASCII case-insensitive."""
    parts = ("." * (c == "_") + ".*" * (c == "%") if c in "%_" else re.escape(c)
             for c in pattern)
    return re.compile("".join(parts), re.DOTALL | re.IGNORECASE)


def matches(run: Mapping[str, Any], condition: Condition) -> bool:
    """Whether ``run`` passes one WHERE condition."""
    value = run.get(condition.column)
    op = condition.op
    if op is Op.IS_NULL:
        return value is None
    if op is Op.IS_NOT_NULL:
        return value is not None
    if value is None:
        return False
    if op in (Op.LIKE, Op.NOT_LIKE):
        found = _like(str(condition.value)).fullmatch(_text(cell(value))) is not None
        return found if op is Op.LIKE else not found
    if op in (Op.IN, Op.NOT_IN):
        found = any(_compare(value, v) == 0 for v in condition.values)
        return found if op is Op.IN else not found
    order = _compare(value, condition.value)
    if order is None:
        return False
    return {Op.EQ: order == 0, Op.NE: order != 0, Op.LT: order < 0, Op.GT: order > 0,
            Op.LE: order <= 0, Op.GE: order >= 0}[op]


def _sort_key(value: Any) -> tuple[int, float, str]:
    number = _number(value)
    if number is not None:
        return (0, number, "")
    return (1, 0.0, _text(cell(value)))


def select_rows(runs: Iterable[Mapping[str, Any]], where: Sequence[Condition],
                order_by: OrderBy | None, limit: int | None,
                columns: Sequence[Column]) -> tuple[tuple[Scalar, ...], ...]:
    """Filter, sort (NULLs last either way), cut and project ``runs`` into table rows."""
    kept = [run for run in runs if all(matches(run, c) for c in where)]
    if order_by is not None:
        present = [r for r in kept if r.get(order_by.column) is not None]
        missing = [r for r in kept if r.get(order_by.column) is None]
        present.sort(key=lambda r: _sort_key(r.get(order_by.column)),
                     reverse=order_by.descending)
        kept = present + missing
    if limit is not None:
        kept = kept[:limit]
    return tuple(tuple(project(run, column) for column in columns) for run in kept)


def project(run: Mapping[str, Any], column: Column) -> Scalar:
    """One cell of a row; ``json_extract`` yields NULL where the path does not lead."""
    value = run.get(column.field)
    for step in column.json_path or ():
        if isinstance(step, int) and isinstance(value, list) and step < len(value):
            value = value[step]
        elif isinstance(step, str) and isinstance(value, dict):
            value = value.get(step)
        else:
            return None
    return cell(value)
