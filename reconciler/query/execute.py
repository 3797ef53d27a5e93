"""The imperative shell of ``query``: the API calls of a statement, then the SQL engine."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from reconciler import identity
from reconciler.client import AssistantsClient, JSONObject
from reconciler.query import engine
from reconciler.query.catalog import FIELD_NAMES, FIELDS, METHODS, RESOURCES
from reconciler.query.result import QueryResult
from reconciler.query.statements import (
    CancelRun,
    Describe,
    Insert,
    QueryError,
    Select,
    ShowMethods,
    ShowResources,
    Statement,
    SubmitToolOutputs,
    Update,
)


async def fetch(client: AssistantsClient, select: Select) -> list[JSONObject]:
    """The runs a SELECT reads: get_run per run id, or list_runs of every thread at once."""
    if select.run_ids is not None:
        (thread,) = select.thread_ids
        calls = [client.get_run(thread, run_id) for run_id in select.run_ids]
        return list(await asyncio.gather(*calls))
    pages = await asyncio.gather(*(client.list_runs(t) for t in select.thread_ids))
    return [run for page in pages for run in page]


async def execute(client: AssistantsClient, statement: Statement) -> QueryResult:
    """Run a compiled statement; API failures surface as the client's typed errors."""
    if isinstance(statement, Select):
        return engine.run_select(statement, await fetch(client, statement))
    if isinstance(statement, Insert):
        body = statement.body_dict()
        reserved = sorted(_reserved(body.get("metadata")))
        if reserved:
            raise QueryError(
                f"metadata key {reserved[0]!r} is reserved: reconciler.* keys mark the runs "
                "reconciler manages, and only `reconciler apply` writes them"
            )
        run = await client.create_run(statement.thread_id, body)
        return _one_run(run, f"created run {run.get('id')} on {statement.thread_id}")
    if isinstance(statement, Update):
        live = await client.get_run(statement.thread_id, statement.run_id)
        metadata, kept = protected_metadata(live.get("metadata"), dict(statement.metadata))
        run = await client.modify_run(statement.thread_id, statement.run_id, metadata)
        note = (
            f" (kept its {kept} reserved reconciler.* key{'s' if kept != 1 else ''}: the run "
            "stays managed, and the next plan shows the edit as drift)" if kept else ""
        )
        return _one_run(run, f"updated the metadata of run {statement.run_id}{note}")
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


def protected_metadata(live: object, wanted: dict[str, str]) -> tuple[dict[str, str], int]:
    """What an UPDATE sends: the new metadata plus the run's reserved keys, kept as they are.

    The API replaces the whole map, so an UPDATE that does not name them would silently strip
    a managed run of its ownership, and the next plan would create a twin of it. Setting a
    reserved key to another value is refused.
    """
    current = {str(k): str(v) for k, v in live.items()} if isinstance(live, dict) else {}
    reserved = {k: v for k, v in current.items() if k.startswith(identity.RESERVED_PREFIX)}
    for key in sorted(_reserved(wanted)):
        if reserved.get(key) != wanted[key]:
            raise QueryError(
                f"metadata key {key!r} is reserved: reconciler.* keys mark the runs reconciler "
                "manages, and only `reconciler apply` changes them"
            )
    merged = {**wanted, **reserved}
    if len(merged) > identity.METADATA_MAX_PAIRS:
        raise QueryError(
            f"the run would have {len(merged)} metadata pairs with its {len(reserved)} reserved "
            f"keys; the API allows {identity.METADATA_MAX_PAIRS}"
        )
    return merged, len(set(reserved) - set(wanted))


def _reserved(metadata: object) -> set[str]:
    if not isinstance(metadata, dict):
        return set()
    return {str(k) for k in metadata if str(k).startswith(identity.RESERVED_PREFIX)}


def catalog_result(statement: Statement) -> QueryResult | None:
    """DESCRIBE and SHOW answer from the catalog alone: no API call, no key needed."""
    if isinstance(statement, Describe):
        if statement.extended:
            return QueryResult(("name", "type", "description"),
                               tuple((f.name, f.type, f.description) for f in FIELDS))
        return QueryResult(("name", "type"), tuple((f.name, f.type) for f in FIELDS))
    if isinstance(statement, ShowMethods):
        columns = ("MethodName", "RequiredParams", "SQLVerb")
        methods = [(m.name, m.required_params, m.sql_verb, m.description) for m in METHODS]
        return _listing(columns, methods, statement.extended, statement.like)
    if isinstance(statement, ShowResources):
        resources = [(r.name, r.id, r.description) for r in RESOURCES]
        return _listing(("name", "id"), resources, statement.extended, statement.like)
    return None


def _listing(columns: tuple[str, ...], rows: Sequence[tuple[str, ...]], extended: bool,
             like: str | None) -> QueryResult:
    """A SHOW result: the description column only when EXTENDED, rows whose name is LIKE."""
    if like is not None:
        rows = [row for row, kept in zip(rows, engine.like(like, [r[0] for r in rows]),
                                         strict=True) if kept]
    width = len(columns) + extended
    return QueryResult((*columns, "description")[:width], tuple(r[:width] for r in rows))


def _one_run(run: JSONObject, message: str) -> QueryResult:
    row: tuple[Any, ...] = tuple(engine.cell(run.get(name)) for name in FIELD_NAMES)
    return QueryResult(FIELD_NAMES, (row,), message)
