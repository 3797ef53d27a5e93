"""What a statement compiles to: plain frozen values, made by the compiler, run by the executor.

A SELECT keeps the user's query as SQLite text over a temporary table of runs, plus the API
calls that fill the table; the writes keep exactly the request they make.
"""

from __future__ import annotations

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
class Statement:
    """Base of every compiled statement (the executor dispatches on the subclass)."""


@dataclass(frozen=True)
class Select(Statement):
    """Fetch runs (get_run for ``run_ids`` on one thread, else list_runs of each thread, at
    once), load ``fields`` of them into the table ``runs``, run ``sql`` on it in SQLite.

    ``booleans`` says, per result column, whether it is a boolean field (SQLite keeps 0/1).
    """

    sql: str
    thread_ids: tuple[str, ...]
    fields: tuple[str, ...]
    run_ids: tuple[str, ...] | None = None
    booleans: tuple[bool, ...] = ()


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
    extended: bool = False
    like: str | None = None


@dataclass(frozen=True)
class ShowResources(Statement):
    extended: bool = False
    like: str | None = None


def is_write(statement: Statement) -> bool:
    """Whether the statement changes a run (and so holds the project lock)."""
    return isinstance(statement, Insert | Update | CancelRun | SubmitToolOutputs)
