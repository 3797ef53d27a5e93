"""The imperative shell of ``query``: one client call per statement, then pure row work."""

from __future__ import annotations

from typing import Any

from reconciler.client import AssistantsClient, JSONObject
from reconciler.query.catalog import FIELD_NAMES, FIELDS, METHODS
from reconciler.query.result import QueryResult
from reconciler.query.rows import cell, select_rows
from reconciler.query.statements import (
    CancelRun,
    Describe,
    Insert,
    QueryError,
    Select,
    ShowMethods,
    Statement,
    SubmitToolOutputs,
    Update,
)


async def execute(client: AssistantsClient, statement: Statement) -> QueryResult:
    """Run a parsed statement; API failures surface as the client's typed errors."""
    if isinstance(statement, Select):
        if statement.run_id is not None:
            runs = [await client.get_run(statement.thread_id, statement.run_id)]
        else:
            runs = await client.list_runs(statement.thread_id)
        rows = select_rows(runs, statement.where, statement.order_by, statement.limit,
                           statement.columns)
        labels = tuple(c.label for c in statement.columns)
        return QueryResult(labels, rows)
    if isinstance(statement, Insert):
        run = await client.create_run(statement.thread_id, statement.body_dict())
        return _one_run(run, f"created run {run.get('id')} on {statement.thread_id}")
    if isinstance(statement, Update):
        run = await client.modify_run(statement.thread_id, statement.run_id,
                                      dict(statement.metadata))
        return _one_run(run, f"updated the metadata of run {statement.run_id}")
    if isinstance(statement, CancelRun):
        run = await client.cancel_run(statement.thread_id, statement.run_id)
        return _one_run(run, f"cancel requested for run {statement.run_id} "
                             f"(status {run.get('status')})")
    if isinstance(statement, SubmitToolOutputs):
        outputs = statement.outputs_list()
        run = await client.submit_tool_outputs(statement.thread_id, statement.run_id, outputs)
        count = len(outputs)
        return _one_run(run, f"submitted {count} tool output{'s' * (count != 1)} to run "
                             f"{statement.run_id} (status {run.get('status')})")
    catalog = catalog_result(statement)
    if catalog is not None:
        return catalog
    raise QueryError(f"cannot execute {type(statement).__name__}")


def catalog_result(statement: Statement) -> QueryResult | None:
    """DESCRIBE and SHOW METHODS answer from the catalog alone: no API call, no key needed."""
    if isinstance(statement, Describe):
        if statement.extended:
            return QueryResult(("name", "type", "description"),
                               tuple((f.name, f.type, f.description) for f in FIELDS))
        return QueryResult(("name", "type"), tuple((f.name, f.type) for f in FIELDS))
    if isinstance(statement, ShowMethods):
        return QueryResult(("MethodName", "RequiredParams", "SQLVerb"),
                           tuple((m.name, m.required_params, m.sql_verb) for m in METHODS))
    return None


def _one_run(run: JSONObject, message: str) -> QueryResult:
    row: tuple[Any, ...] = tuple(cell(run.get(name)) for name in FIELD_NAMES)
    return QueryResult(FIELD_NAMES, (row,), message)
