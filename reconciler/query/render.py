"""Renderings of a :class:`QueryResult`: aligned table, JSON list of objects, CSV. Pure."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from reconciler.query.result import QueryResult
from reconciler.query.statements import QueryError

FORMATS = ("table", "json", "csv")


def render_result(result: QueryResult, fmt: str) -> str:
    """The result as text in ``fmt`` (table|json|csv), ending with a newline."""
    if fmt == "table":
        return _table(result)
    if fmt == "json":
        objects = [dict(zip(result.columns, row, strict=True)) for row in result.rows]
        return json.dumps(objects, indent=2, ensure_ascii=False) + "\n"
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(result.columns)
        writer.writerows([_csv_cell(v) for v in row] for row in result.rows)
        return out.getvalue()
    raise QueryError(f"unknown output format {fmt!r}: expected one of {', '.join(FORMATS)}")


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _table_cell(value: Any) -> str:
    if value is None:
        return "null"
    text = _csv_cell(value)
    return text.replace("\r\n", "\\n").replace("\n", "\\n").replace("\t", " ")


def _table(result: QueryResult) -> str:
    """StackQL-style boxed table; newlines in cells are shown as ``\\n`` to keep alignment."""
    if not result.columns:
        return result.message + "\n" if result.message else ""
    cells = [[_table_cell(v) for v in row] for row in result.rows]
    widths = [len(name) for name in result.columns]
    for row in cells:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]
    rule = "+" + "+".join("-" * (w + 2) for w in widths) + "+"

    def line(values: list[str]) -> str:
        return "|" + "|".join(f" {v.ljust(w)} " for v, w in zip(values, widths, strict=True)) + "|"

    lines = [rule, line(list(result.columns)), rule, *(line(row) for row in cells)]
    if cells:
        lines.append(rule)
    if result.message:
        lines.append(result.message)
    return "\n".join(lines) + "\n"
