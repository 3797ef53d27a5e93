"""SQL text to compiled statements: sqlglot parses, this module says what each one means.

Pure: text in, :class:`Statement` values out, or one :class:`QueryError` naming the line and
column. Everything that can be checked without the API (the resource, column names, required
parameters, values, what SQLite can evaluate) is checked here, for every statement of a
script before the first one runs, so a mistake never costs a request.
"""

from __future__ import annotations

from sqlglot import exp

from reconciler.query.catalog import RESOURCE
from reconciler.query.checks import check_resource, check_service
from reconciler.query.dialect import STATEMENTS, Source, parse_sql
from reconciler.query.select import compile_select
from reconciler.query.statements import (
    Describe,
    QueryError,
    ShowMethods,
    ShowResources,
    Statement,
)
from reconciler.query.writes import compile_exec, compile_insert, compile_update


def parse(sql: str) -> Statement:
    """The one statement of ``sql`` (a final ``;`` is fine)."""
    statements = parse_script(sql)
    if len(statements) > 1:
        raise QueryError(f"{len(statements)} statements given where one is expected "
                         "(reconciler query --file FILE runs several)")
    return statements[0]


def parse_script(sql: str) -> tuple[Statement, ...]:
    """Every ``;``-separated statement of ``sql``, all checked before any is run."""
    nodes = parse_sql(sql)
    if not nodes:
        raise QueryError(f"empty query: expected {STATEMENTS}")
    return tuple(compile_node(node, Source(sql, start)) for node, start in nodes)


def compile_node(node: exp.Expr, source: Source) -> Statement:
    """One parsed statement as the API calls and SQL it stands for."""
    if isinstance(node, exp.Select):
        return compile_select(node, source)
    if isinstance(node, exp.Insert):
        return compile_insert(node, source)
    if isinstance(node, exp.Update):
        return compile_update(node, source)
    if isinstance(node, exp.Execute):
        return compile_exec(node, source)
    if isinstance(node, exp.Describe):
        check_resource(node.this, source)
        return Describe(extended=str(node.args.get("style") or "").upper() == "EXTENDED")
    if isinstance(node, exp.Show):
        return _show(node, source)
    if isinstance(node, exp.Delete):
        raise source.error(node, "runs cannot be deleted: the API has no delete method for "
                                 f"runs (cancel one with EXEC {RESOURCE}.cancel_run)")
    if isinstance(node, exp.SetOperation):
        raise source.error(node, f"{type(node).__name__.upper()} is not supported: a SELECT "
                                 f"reads one resource, {RESOURCE}")
    raise source.error(node, f"{node.key.upper()} statements are not supported: expected "
                             f"{STATEMENTS}")


def _show(node: exp.Show, source: Source) -> Statement:
    extended = bool(node.args.get("full"))
    like_node = node.args.get("like")
    like = str(like_node.this) if isinstance(like_node, exp.Literal) else None
    if node.name == "METHODS":
        check_resource(node.args.get("target"), source)
        return ShowMethods(extended=extended, like=like)
    check_service(node.args.get("target"), source)
    return ShowResources(extended=extended, like=like)
