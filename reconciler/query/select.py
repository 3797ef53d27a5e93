"""A SELECT over ``openai.assistants.runs`` compiled to API calls plus SQLite over their rows.

The statement is checked against the page (one resource, known columns, ``thread_id`` given),
its required parameters are read from the WHERE clause, and what is left is sqlglot's own
tree pointed at the temporary table ``runs`` and written out in SQLite's dialect: everything
SQLite can do over one table (expressions, aggregates, GROUP BY, HAVING, DISTINCT, ORDER BY,
LIMIT/OFFSET, JSON functions) works as it would in StackQL.
"""

from __future__ import annotations

from sqlglot import exp

from reconciler.query import engine
from reconciler.query.catalog import BOOLEAN_FIELDS, FIELD_NAMES, RESOURCE
from reconciler.query.checks import (
    check_resource,
    key_values,
    missing_params,
    suggestion,
)
from reconciler.query.dialect import Source
from reconciler.query.statements import Select

#: Parts of a SELECT the engine can evaluate over one table; anything else is refused.
_ALLOWED = frozenset({"expressions", "distinct", "from_", "where", "group", "having", "order",
                      "limit", "offset"})
_NEEDS = ("list_runs needs thread_id in the WHERE clause (thread_id = '…' or thread_id IN "
          "('…', …)); get_run needs thread_id and run_id")
_CLAUSES = {"joins": "joins are", "with_": "WITH is", "laterals": "LATERAL is"}


def compile_select(node: exp.Select, source: Source) -> Select:
    """The :class:`Select` for ``node``, or a located :class:`QueryError`."""
    _check_shape(node, source)
    table = node.args["from_"].this
    check_resource(table, source)
    alias = table.alias or None
    name = alias or engine.TABLE
    _expand_stars(node)
    _check_columns(node, source, alias)
    where = node.args.get("where")
    threads = key_values(where, "thread_id", source)
    if threads is None:
        raise missing_params(table, source, "select", _NEEDS)
    runs = key_values(where, "run_id", source)
    for column in list(node.find_all(exp.Column)):
        if column.name.lower() == "run_id":
            column.set("this", exp.to_identifier("id"))  # a run's id is its run_id
        if column.table:
            column.set("table", exp.to_identifier(name))
            column.set("db", None)
            column.set("catalog", None)
    table.replace(exp.Table(this=exp.to_identifier(engine.TABLE),
                            alias=exp.TableAlias(this=exp.to_identifier(alias))
                            if alias else None))
    for key in ("limit", "offset"):
        _check_count(node.args.get(key), key.upper(), source)
    fields = _fields(node)
    sql = node.sql(dialect="sqlite", comments=False)
    problem = engine.check(sql, fields)
    if problem is not None:
        raise source.error(node, f"SQLite cannot run this SELECT: {problem}")
    return Select(sql=sql, thread_ids=threads, fields=fields,
                  run_ids=runs if runs is not None and len(threads) == 1 else None,
                  booleans=tuple(_is_boolean(p) for p in node.expressions))


def every_run(threads: tuple[str, ...], runs: tuple[str, ...] | None) -> Select:
    """``SELECT *`` of the runs ``EXEC get_run`` / ``list_runs`` name."""
    columns = ", ".join(FIELD_NAMES)
    return Select(sql=f"SELECT {columns} FROM {engine.TABLE}", thread_ids=threads,
                  fields=FIELD_NAMES, run_ids=runs,
                  booleans=tuple(name in BOOLEAN_FIELDS for name in FIELD_NAMES))


def _check_shape(node: exp.Select, source: Source) -> None:
    extra = sorted(k for k, v in node.args.items() if v and k not in _ALLOWED)
    if extra or node.args.get("from_") is None:
        what = "a SELECT without FROM is" if not extra else _CLAUSES.get(
            extra[0], f"{extra[0].rstrip('_').upper()} is")
        raise source.error(node, f"{what} not supported: a SELECT reads one resource, "
                                 f"{RESOURCE}, with WHERE, GROUP BY, HAVING, ORDER BY, LIMIT")
    nested = next((n for n in node.walk() if n is not node
                   and isinstance(n, exp.Select | exp.Subquery | exp.SetOperation)), None)
    if nested is not None:
        raise source.error(nested, "subqueries are not supported: a SELECT reads one "
                                   f"resource, {RESOURCE}")


def _expand_stars(node: exp.Select) -> None:
    """``*`` and ``r.*`` become the page's columns, so the result's columns are known."""
    projections: list[exp.Expr] = []
    for item in node.expressions:
        star = isinstance(item, exp.Star) or (isinstance(item, exp.Column)
                                              and isinstance(item.this, exp.Star))
        if star:
            projections.extend(exp.column(name) for name in FIELD_NAMES)
        else:
            projections.append(item)
    node.set("expressions", projections)


def _check_columns(node: exp.Select, source: Source, alias: str | None) -> None:
    """Every column is a field of the page, an alias of the select list, or run_id in WHERE."""
    aliases = {p.alias.lower() for p in node.expressions if isinstance(p, exp.Alias)}
    qualifiers = {"runs", "openai.assistants.runs", "assistants.runs"}
    if alias:
        qualifiers = {alias.lower()}
    for column in node.find_all(exp.Column):
        qualifier = ".".join(p.name for p in column.parts[:-1]).lower()
        if qualifier and qualifier not in qualifiers:
            raise source.error(column, f"unknown table '{qualifier}' (the query reads "
                                       f"{RESOURCE}{f' as {alias}' if alias else ''})")
        name = column.name.lower()
        in_where = column.find_ancestor(exp.Where) is not None
        if name in FIELD_NAMES or (name in aliases and not qualifier) or (
                name == "run_id" and in_where):
            continue
        raise source.error(column, _unknown(column, aliases))


def _unknown(column: exp.Column, aliases: set[str]) -> str:
    name = column.name
    identifier = column.this
    if isinstance(identifier, exp.Identifier) and identifier.quoted:
        hint = f" (strings take single quotes: '{name}')"
    elif name.lower() == "run_id":
        hint = " (run_id is a parameter: it goes in the WHERE clause; the column is id)"
    else:
        hint = suggestion(name, [*FIELD_NAMES, *aliases]) or (
            f" (DESCRIBE {RESOURCE} lists them)")
    return f"unknown column '{name}' of {RESOURCE}{hint}"


def _check_count(clause: exp.Expr | None, word: str, source: Source) -> None:
    if clause is None:
        return
    value = clause.args.get("expression")
    if not (isinstance(value, exp.Literal) and not value.is_string
            and str(value.this).isdigit()):
        raise source.error(value or clause, f"{word} takes a whole number of rows, such as 10")


def _fields(node: exp.Select) -> tuple[str, ...]:
    """The page's columns the SQL reads (the table is built with these only), in page order."""
    used = {column.name.lower() for column in node.find_all(exp.Column)}
    fields = tuple(name for name in FIELD_NAMES if name in used)
    return fields or ("id",)


def _is_boolean(projection: exp.Expr) -> bool:
    inner = projection.this if isinstance(projection, exp.Alias) else projection
    return isinstance(inner, exp.Column) and inner.name.lower() in BOOLEAN_FIELDS
