"""The parsed form of a query: plain frozen values, built by the parser, read by the executor."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, TypeAlias

from reconciler.errors import ReconcilerError

Scalar: TypeAlias = str | int | float | bool | None


class QueryError(ReconcilerError):
    """The SQL cannot be parsed or asks for something the resource does not offer."""

    def __init__(self, message: str, *, line: int | None = None,
                 column: int | None = None) -> None:
        self.line = line
        self.column = column
        self.reason = message
        where = f"line {line}, column {column}: " if line is not None else ""
        super().__init__(where + message)


@dataclass(frozen=True)
class Position:
    """Where a token starts in the SQL text (1-based), for error messages."""

    line: int
    column: int

    def error(self, message: str) -> QueryError:
        return QueryError(message, line=self.line, column=self.column)


class Op(enum.Enum):
    """Client-side comparison operators of a WHERE condition."""

    EQ = "="
    NE = "!="
    LT = "<"
    GT = ">"
    LE = "<="
    GE = ">="
    LIKE = "LIKE"
    NOT_LIKE = "NOT LIKE"
    IN = "IN"
    NOT_IN = "NOT IN"
    IS_NULL = "IS NULL"
    IS_NOT_NULL = "IS NOT NULL"


@dataclass(frozen=True)
class Condition:
    """``column op value``; ``values`` holds the IN list, ``value`` everything else."""

    column: str
    op: Op
    value: Scalar = None
    values: tuple[Scalar, ...] = ()


@dataclass(frozen=True)
class Column:
    """A select-list item: a field, or ``json_extract(field, path)``, shown as ``label``."""

    field: str
    label: str
    json_path: tuple[str | int, ...] | None = None


@dataclass(frozen=True)
class OrderBy:
    column: str
    descending: bool = False


@dataclass(frozen=True)
class Statement:
    """Base of every parsed statement (the executor dispatches on the subclass)."""


@dataclass(frozen=True)
class Select(Statement):
    """SELECT: get_run when ``run_id`` is given, else list_runs; the rest filters locally."""

    columns: tuple[Column, ...]
    thread_id: str
    run_id: str | None = None
    where: tuple[Condition, ...] = ()
    order_by: OrderBy | None = None
    limit: int | None = None


@dataclass(frozen=True)
class Insert(Statement):
    """INSERT: create_run with ``body`` (a CreateRunRequest) on ``thread_id``."""

    thread_id: str
    body: tuple[tuple[str, Any], ...]

    def body_dict(self) -> dict[str, Any]:
        return dict(self.body)


@dataclass(frozen=True)
class Update(Statement):
    """UPDATE: modify_run, which can only replace the metadata."""

    thread_id: str
    run_id: str
    metadata: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class CancelRun(Statement):
    thread_id: str
    run_id: str


@dataclass(frozen=True)
class SubmitToolOutputs(Statement):
    thread_id: str
    run_id: str
    tool_outputs: tuple[tuple[tuple[str, str], ...], ...]

    def outputs_list(self) -> list[dict[str, str]]:
        return [dict(item) for item in self.tool_outputs]


@dataclass(frozen=True)
class Describe(Statement):
    extended: bool = False


@dataclass(frozen=True)
class ShowMethods(Statement):
    pass


def is_write(statement: Statement) -> bool:
    """Whether the statement changes a run (and so holds the project lock)."""
    return isinstance(statement, Insert | Update | CancelRun | SubmitToolOutputs)
