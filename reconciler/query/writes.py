"""INSERT, UPDATE and EXEC compiled to the one API request each makes.

Values are checked here against CreateRunRequest's types (JSON text parsed, numbers and
booleans read from quoted text as StackQL templates write them), so a mistake never costs a
request. EXEC reaches every method of the page by name, StackQL's or the newer provider's.
"""

from __future__ import annotations

import json
from typing import Any

from sqlglot import exp

from reconciler.query.catalog import CREATE_FIELDS, METHOD_NAMES, RESOURCE, SUBMIT_METHOD
from reconciler.query.checks import (
    check_resource,
    conjuncts,
    is_column,
    key_values,
    missing_params,
    require_id,
    suggestion,
)
from reconciler.query.dialect import Source, table_of
from reconciler.query.select import every_run
from reconciler.query.statements import (
    CancelRun,
    Insert,
    Scalar,
    Statement,
    SubmitToolOutputs,
    Update,
)

_INSERT_NEEDS = "create_run needs the columns thread_id and data__assistant_id"
_UPDATE_NEEDS = "modify_run needs thread_id = '…' AND run_id = '…' in the WHERE clause"
_VALUE = "a value (a quoted string, a number, true, false or null)"


def literal(node: exp.Expr, source: Source) -> Scalar:
    """The Python value of a SQL literal; anything else is refused where it stands."""
    if isinstance(node, exp.Literal):
        if node.is_string:
            return str(node.this)
        return _number(str(node.this))
    if isinstance(node, exp.Boolean):
        return bool(node.this)
    if isinstance(node, exp.Null):
        return None
    if isinstance(node, exp.Neg) and isinstance(node.this, exp.Literal) \
            and not node.this.is_string:
        return -_number(str(node.this.this))
    raise source.error(node, f"expected {_VALUE}")


def _number(text: str) -> int | float:
    return int(text) if text.isdigit() else float(text)


def compile_insert(node: exp.Insert, source: Source) -> Insert:
    schema = node.this
    if not isinstance(schema, exp.Schema):
        raise source.error(schema, f"INSERT needs a column list: INSERT INTO {RESOURCE} "
                                   "(thread_id, data__assistant_id, …) SELECT '…', '…'")
    check_resource(schema.this, source)
    extra = sorted(k for k, v in node.args.items()
                   if v and k not in ("this", "expression", "is_function"))
    if extra:
        raise source.error(schema, f"INSERT … {extra[0].rstrip('_').upper()} is not supported")
    values = _insert_values(node.expression, source)
    names: list[exp.Identifier] = list(schema.expressions)
    if len(values) != len(names):
        raise source.error(schema, f"INSERT names {len(names)} column(s) but gives "
                                   f"{len(values)} value(s)")
    thread_id: str | None = None
    body: dict[str, Any] = {}
    for name, value in zip(names, values, strict=True):
        column = name.name.lower()
        if column == "thread_id":
            if thread_id is not None:
                raise source.error(name, "column 'thread_id' is given twice")
            thread_id = require_id(value, source, "thread_id")
            continue
        field = column.removeprefix("data__")
        if field not in CREATE_FIELDS:
            raise source.error(name, f"cannot insert column '{name.name}': use thread_id and "
                                     "data__<field> for a CreateRunRequest field"
                                     f"{suggestion(field, CREATE_FIELDS)}")
        if field in body:
            raise source.error(name, f"column '{name.name}' is given twice")
        body[field] = coerce(field, literal(value, source), value, source)
    return _insert(thread_id, body, schema, source)


def _insert(thread_id: str | None, body: dict[str, Any], where: exp.Expr | None,
            source: Source) -> Insert:
    if thread_id is None or "assistant_id" not in body:
        raise missing_params(where, source, "insert", _INSERT_NEEDS)
    if body.get("stream"):
        raise source.error(where, "data__stream = true is not supported: query reads whole "
                                  "responses")
    return Insert(thread_id, tuple(body.items()))


def _insert_values(node: exp.Expr | None, source: Source) -> list[exp.Expr]:
    """The one row of ``VALUES (…)`` or of a ``SELECT`` of values (StackQL's form)."""
    if isinstance(node, exp.Values):
        rows = node.expressions
        if len(rows) != 1:
            raise source.error(node, "INSERT creates one run: give one row of VALUES")
        return list(rows[0].expressions)
    if isinstance(node, exp.Select) and not any(
            v for k, v in node.args.items() if k != "expressions"):
        return list(node.expressions)
    raise source.error(node, "INSERT takes VALUES (…) or SELECT of values (no FROM)")


def compile_update(node: exp.Update, source: Source) -> Update:
    table = node.this
    check_resource(table, source)
    extra = sorted(k for k, v in node.args.items()
                   if v and k not in ("this", "expressions", "where"))
    if extra:
        raise source.error(table, f"UPDATE … {extra[0].rstrip('_').upper()} is not supported")
    metadata: tuple[tuple[str, str], ...] | None = None
    for assignment in node.expressions:
        column = assignment.this
        if not is_column(column, "data__metadata") and not is_column(column, "metadata"):
            raise source.error(column, f"cannot update '{column.sql()}': only data__metadata "
                                       "can be changed on a run (other fields need a new run: "
                                       "INSERT)")
        if metadata is not None:
            raise source.error(column, "data__metadata is set twice")
        value = assignment.expression
        parsed = coerce("metadata", literal(value, source), value, source)
        if parsed is None:
            raise source.error(value, "data__metadata must be a JSON object such as "
                                      "'{\"k\": \"v\"}'")
        metadata = tuple(parsed.items())
    where = node.args.get("where")
    threads = key_values(where, "thread_id", source)
    runs = key_values(where, "run_id", source)
    for part in conjuncts(where):
        if not (isinstance(part, exp.EQ) and (is_column(part.left, "thread_id")
                                               or is_column(part.left, "run_id"))):
            raise source.error(part, "UPDATE takes only thread_id = '…' AND run_id = '…' in "
                                     "WHERE: it changes one run")
    if threads is None or runs is None or len(threads) != 1 or len(runs) != 1:
        raise missing_params(table, source, "update", _UPDATE_NEEDS)
    assert metadata is not None
    return Update(threads[0], runs[0], metadata)


def compile_exec(node: exp.Execute, source: Source) -> Statement:
    """``EXEC resource.method @param = value …``: any method of the page, by any name."""
    target = node.this
    assert isinstance(target, exp.Table)
    parts = target.parts
    if len(parts) < 2:
        raise source.error(target, f"expected a method such as {RESOURCE}.cancel_run")
    check_resource(table_of(parts[:-1]), source)
    method_name = parts[-1].name.lower()
    method = METHOD_NAMES.get(method_name)
    if method is None:
        raise source.error(parts[-1], f"unknown method '{parts[-1].name}' of {RESOURCE}"
                                      f"{suggestion(method_name, METHOD_NAMES)} (SHOW METHODS "
                                      f"IN {RESOURCE} lists them)")
    params = _params(node, source)
    return _EXEC[method.name](params, source, node)


Params = dict[str, tuple[Any, exp.Expr]]


def _params(node: exp.Execute, source: Source) -> Params:
    found: Params = {}
    for assignment in node.expressions:
        key, value = assignment.this, assignment.expression
        name = key.name.lower()
        if name in found:
            raise source.error(key, f"parameter {key.name} is given twice")
        found[name] = (literal(value, source), value)
    return found


def _take(params: Params, method: str, allowed: tuple[str, ...], required: tuple[str, ...],
          node: exp.Expr, source: Source) -> dict[str, str]:
    """Check the parameters' names; the ids of ``required``, each a quoted id."""
    for name, (_, value) in params.items():
        if name not in allowed:
            raise source.error(value, f"unknown parameter {name} for {method} (expected "
                                      f"{', '.join(allowed)})")
    missing = [name for name in required if name not in params]
    if missing:
        raise source.error(node, f"{method} requires {', '.join(missing)}")
    return {name[1:]: require_id(params[name][1], source, name[1:]) for name in required}


_IDS = ("@thread_id", "@run_id")


def _get(params: Params, source: Source, node: exp.Expr) -> Statement:
    ids = _take(params, "get_run", _IDS, _IDS, node, source)
    return every_run((ids["thread_id"],), (ids["run_id"],))


def _list(params: Params, source: Source, node: exp.Expr) -> Statement:
    ids = _take(params, "list_runs", ("@thread_id",), ("@thread_id",), node, source)
    return every_run((ids["thread_id"],), None)


def _create(params: Params, source: Source, node: exp.Expr) -> Statement:
    allowed = ("@thread_id", "@@json", *(f"@data__{f}" for f in CREATE_FIELDS))
    ids = _take(params, "create_run", allowed, ("@thread_id",), node, source)
    body: dict[str, Any] = {}
    if "@@json" in params:
        value, where = params["@@json"]
        parsed = coerce("json", value, where, source, kind="object")
        for field, item in parsed.items():
            if field not in CREATE_FIELDS:
                raise source.error(where, f"@@json has '{field}', not a CreateRunRequest "
                                          f"field{suggestion(field, CREATE_FIELDS)}")
            body[field] = coerce(field, item, where, source)
    for name, (value, where) in params.items():
        field = name.removeprefix("@data__")
        if name.startswith("@data__"):
            if field in body:
                raise source.error(where, f"{field} is given twice")
            body[field] = coerce(field, value, where, source)
    return _insert(ids["thread_id"], body, node, source)


def _modify(params: Params, source: Source, node: exp.Expr) -> Statement:
    allowed = (*_IDS, "@@json", "@data__metadata")
    ids = _take(params, "modify_run", allowed, _IDS, node, source)
    if ("@@json" in params) == ("@data__metadata" in params):
        raise source.error(node, "modify_run takes the metadata once: "
                                 "@@json='{\"metadata\": {…}}' or @data__metadata='{…}'")
    if "@@json" in params:
        value, where = params["@@json"]
        body = coerce("json", value, where, source, kind="object")
        if set(body) != {"metadata"}:
            raise source.error(where, "@@json must be {\"metadata\": {…}}: only the metadata "
                                      "of a run can change")
        metadata = coerce("metadata", body["metadata"], where, source)
    else:
        value, where = params["@data__metadata"]
        metadata = coerce("metadata", value, where, source)
    return Update(ids["thread_id"], ids["run_id"], tuple((metadata or {}).items()))


def _cancel(params: Params, source: Source, node: exp.Expr) -> Statement:
    ids = _take(params, "cancel_run", _IDS, _IDS, node, source)
    return CancelRun(ids["thread_id"], ids["run_id"])


def _submit(params: Params, source: Source, node: exp.Expr) -> Statement:
    allowed = (*_IDS, "@@json", "@data__tool_outputs")
    ids = _take(params, SUBMIT_METHOD, allowed, _IDS, node, source)
    outputs = _tool_outputs(params, node, source)
    return SubmitToolOutputs(ids["thread_id"], ids["run_id"], outputs)


_EXEC = {"get_run": _get, "list_runs": _list, "create_run": _create, "modify_run": _modify,
         "cancel_run": _cancel, SUBMIT_METHOD: _submit}


def coerce(field: str, value: Any, node: exp.Expr, source: Source, *,
           kind: str | None = None) -> Any:
    """``value`` (a SQL literal, or a JSON value from @@json) as the JSON a field takes."""
    kind = kind or CREATE_FIELDS.get(field, "object")
    if value is None:
        return None
    if kind == "string":
        if not isinstance(value, str):
            raise source.error(node, f"data__{field} must be a quoted string")
        return value
    if kind in ("number", "integer"):
        return _numeric(field, kind, value, node, source)
    if kind == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise source.error(node, f"data__{field} must be true or false")
    return _structured(field, kind, value, node, source)


def _numeric(field: str, kind: str, value: Any, node: exp.Expr, source: Source) -> Any:
    number: Any = value
    if isinstance(value, str):
        try:
            number = float(value) if kind == "number" else int(value)
        except ValueError:
            raise source.error(node, f"data__{field} must be a{' whole' * (kind == 'integer')} "
                                     f"number, got {value!r}") from None
    if isinstance(number, bool) or not isinstance(number, int | float) or (
            kind == "integer" and not isinstance(number, int)):
        raise source.error(node, f"data__{field} must be a "
                                 f"{'whole ' if kind == 'integer' else ''}number")
    return number


def _structured(field: str, kind: str, value: Any, node: exp.Expr, source: Source) -> Any:
    """An object or array field, given as JSON text (or already parsed, from @@json)."""
    label = "@@json" if field == "json" else f"data__{field}"
    parsed = value
    if isinstance(value, str):
        if kind == "string|object" and not value.lstrip().startswith("{"):
            return value
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError as exc:
            raise source.error(node, f"{label} is not valid JSON: {exc.msg} at character "
                                     f"{exc.pos + 1}") from None
    wanted = list if kind == "array" else dict
    if not isinstance(parsed, wanted):
        raise source.error(node, f"{label} must be a JSON "
                                 f"{'array' if wanted is list else 'object'}")
    if field == "metadata" and isinstance(parsed, dict):
        bad = [k for k, v in parsed.items() if not isinstance(v, str)]
        if bad:
            raise source.error(node, f"metadata values must be strings (key {bad[0]!r} is not)")
    return parsed


def _tool_outputs(params: Params, node: exp.Expr,
                  source: Source) -> tuple[tuple[tuple[str, str], ...], ...]:
    """The tool outputs of a submit, from ``@@json`` or ``@data__tool_outputs``."""
    if "@@json" in params and "@data__tool_outputs" in params:
        raise source.error(params["@data__tool_outputs"][1],
                           "give the tool outputs once: @@json or @data__tool_outputs")
    if "@@json" in params:
        value, where = params["@@json"]
        body = coerce("json", value, where, source, kind="object")
        if "tool_outputs" not in body:
            raise source.error(where, '@@json must be an object with "tool_outputs": '
                                      '{"tool_outputs": [{"tool_call_id": "…", "output": "…"}]}')
        outputs = body["tool_outputs"]
    elif "@data__tool_outputs" in params:
        value, where = params["@data__tool_outputs"]
        outputs = coerce("tool_outputs", value, where, source, kind="array")
    else:
        raise source.error(node, f"{SUBMIT_METHOD} requires @@json='{{\"tool_outputs\": "
                                 "[...]}'")
    if not isinstance(outputs, list) or not outputs:
        raise source.error(where, "tool_outputs must be a non-empty JSON array")
    result = []
    for n, item in enumerate(outputs, 1):
        if not isinstance(item, dict) or not isinstance(item.get("tool_call_id"), str):
            raise source.error(where, f"tool output {n} needs a string \"tool_call_id\"")
        output = item.get("output", "")
        if not isinstance(output, str):
            output = json.dumps(output)
        result.append((("tool_call_id", item["tool_call_id"]), ("output", output)))
    return tuple(result)
