"""The answer of a query: columns and rows, plus a sentence for writes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class QueryResult:
    """What every statement returns; renderers turn it into table, JSON or CSV text."""

    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]
    message: str = ""
