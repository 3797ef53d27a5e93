"""Names and required parameters, checked against the catalog before any request is made.

The API addresses runs by thread (and run), so ``thread_id`` and ``run_id`` in a WHERE clause
are parameters, not filters: :func:`key_values` finds the ids a WHERE fixes whatever its
shape (``=``, ``IN``, ``AND``, ``OR``, parentheses). A parameter missing gets StackQL's own
sentence for it, so users recognise it, followed by what this resource needs.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from sqlglot import exp

from reconciler.query.catalog import RESOURCE, RESOURCE_ALIASES, RESOURCES, SERVICE
from reconciler.query.dialect import Source
from reconciler.query.statements import QueryError

_STACKQL_NO_METHOD = (
    "cannot find matching operation, possible causes include missing required parameters or "
    "an unsupported method for the resource, to find required parameters for supported "
    "methods run SHOW METHODS IN {resource}: no appropriate method = '{verb}' for resource = "
    "'runs'"
)


def suggestion(name: str, candidates: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest candidate, or nothing."""
    close = difflib.get_close_matches(name.lower(), list(candidates), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def dotted(table: exp.Table) -> str:
    return ".".join(part.name for part in table.parts)


def check_resource(table: exp.Expr | None, source: Source) -> None:
    """Only ``openai.assistants.runs`` (or ``runs``, ``assistants.runs``) is served here."""
    if not isinstance(table, exp.Table) or table.args.get("this") is None:
        raise source.error(table, f"expected the resource {RESOURCE}")
    name = dotted(table)
    if name.lower() in RESOURCE_ALIASES:
        return
    others = {r.id for r in RESOURCES} - {RESOURCE}
    if name.lower() in others:
        raise source.error(table, f"unknown resource '{name}': StackQL's openai provider has "
                                  f"it, but reconciler serves only {RESOURCE}")
    hint = suggestion(name, [RESOURCE, *others]) or f" (reconciler serves {RESOURCE})"
    raise source.error(table, f"unknown resource '{name}'{hint}")


def check_service(table: exp.Expr | None, source: Source) -> None:
    """``SHOW RESOURCES IN openai.assistants``: the one service whose resources are known."""
    name = dotted(table) if isinstance(table, exp.Table) else ""
    if name.lower() not in (SERVICE, "assistants"):
        hint = suggestion(name, [SERVICE]) or f" (reconciler knows the service {SERVICE})"
        raise source.error(table, f"unknown service '{name}'{hint}")


def missing_params(node: exp.Expr | None, source: Source, verb: str, needs: str) -> QueryError:
    """StackQL's error for a statement whose required parameters are not all given."""
    text = _STACKQL_NO_METHOD.format(resource=RESOURCE, verb=verb)
    return source.error(node, f"{text}; {needs}")


def require_id(node: exp.Expr, source: Source, name: str) -> str:
    """A thread or run id: a non-empty quoted string that cannot leave its URL segment."""
    if not isinstance(node, exp.Literal) or not node.is_string or not node.this:
        raise source.error(node, f"{name} must be a quoted id such as '{name[:-3]}_abc123'")
    value = str(node.this)
    if "/" in value or any(c.isspace() for c in value):
        raise source.error(node, f"{name} {value!r} is not a valid id")
    return value


def key_values(where: exp.Expr | None, key: str,
               source: Source) -> tuple[str, ...] | None:
    """The ids ``key`` is restricted to by ``where``, or None when it is not restricted.

    ``AND`` keeps the ids both sides allow, ``OR`` those either side allows (so both sides
    must restrict it); anything else (``NOT``, ``LIKE``, a comparison with a column) leaves
    it unrestricted. The WHERE is still applied to the rows fetched, so this only has to
    find a superset of the runs it can match.
    """
    found = _values(where, key, source) if where is not None else None
    return None if found is None else tuple(dict.fromkeys(found))


def _values(node: exp.Expr, key: str, source: Source) -> list[str] | None:
    if isinstance(node, exp.Where | exp.Paren):
        return _values(node.this, key, source)
    if isinstance(node, exp.And | exp.Or):
        left = _values(node.left, key, source)
        right = _values(node.right, key, source)
        if isinstance(node, exp.Or):
            return None if left is None or right is None else left + right
        if left is None or right is None:
            return right if left is None else left
        return [v for v in left if v in right]
    if isinstance(node, exp.EQ):
        for column, value in ((node.left, node.right), (node.right, node.left)):
            if is_column(column, key) and isinstance(value, exp.Literal):
                return [require_id(value, source, key)]
        return None
    if isinstance(node, exp.In) and is_column(node.this, key) and not node.args.get("query"):
        items = node.expressions
        if all(isinstance(item, exp.Literal) for item in items):
            return [require_id(item, source, key) for item in items]
    return None


def is_column(node: exp.Expr | None, name: str) -> bool:
    return isinstance(node, exp.Column) and node.name.lower() == name


def conjuncts(where: exp.Expr | None) -> list[exp.Expr]:
    """The parts of a WHERE joined by AND (parentheses around them removed)."""
    if where is None:
        return []
    node = where.this if isinstance(where, exp.Where) else where
    while isinstance(node, exp.Paren):
        node = node.this
    if isinstance(node, exp.And):
        return conjuncts(node.left) + conjuncts(node.right)
    return [node]
