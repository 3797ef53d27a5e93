"""Recursive-descent parser for the StackQL subset over ``openai.assistants.runs``.

Pure: text in, a :class:`Statement` out, or a :class:`QueryError` naming the line and column.
Everything that can be checked without the API (column names, required parameters, JSON
values, CreateRunRequest types) is checked here, so a mistake never costs a request.
"""

from __future__ import annotations

import json
import re
from typing import Any

from reconciler.query.catalog import (
    CREATE_FIELDS,
    EXEC_METHODS,
    FIELD_NAMES,
    RESOURCE,
    RESOURCE_ALIASES,
    SUBMIT_METHOD,
)
from reconciler.query.lexer import Kind, Token, tokenize
from reconciler.query.statements import (
    CancelRun,
    Column,
    Condition,
    Describe,
    Insert,
    Op,
    OrderBy,
    Position,
    QueryError,
    Scalar,
    Select,
    ShowMethods,
    Statement,
    SubmitToolOutputs,
    Update,
)

_COMPARISONS = {"=": Op.EQ, "!=": Op.NE, "<>": Op.NE, "<": Op.LT, ">": Op.GT, "<=": Op.LE,
                ">=": Op.GE}
_JSON_PATH_STEP = re.compile(r'\.(?:([A-Za-z_][\w-]*)|"((?:[^"\\]|\\.)*)")|\[(\d+)\]')
_PUBLIC_NAMES = "openai.assistants.runs (or runs)"


def parse(sql: str) -> Statement:
    """Parse one statement; raises :class:`QueryError` with a position on any mistake."""
    return _Parser(tokenize(sql)).statement()


class _Parser:
    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.i = 0

    # -- token helpers ------------------------------------------------------------------------

    def peek(self, ahead: int = 0) -> Token:
        return self.tokens[min(self.i + ahead, len(self.tokens) - 1)]

    def advance(self) -> Token:
        token = self.peek()
        if token.kind is not Kind.END:
            self.i += 1
        return token

    def at_word(self, *words: str) -> bool:
        token = self.peek()
        return token.kind is Kind.WORD and token.text.upper() in words

    def at_symbol(self, symbol: str) -> bool:
        token = self.peek()
        return token.kind is Kind.SYMBOL and token.text == symbol

    def accept_word(self, word: str) -> bool:
        if self.at_word(word):
            self.advance()
            return True
        return False

    def expect_word(self, word: str) -> Token:
        if not self.at_word(word):
            raise self.unexpected(word)
        return self.advance()

    def expect_symbol(self, symbol: str) -> Token:
        if not self.at_symbol(symbol):
            raise self.unexpected(f"'{symbol}'")
        return self.advance()

    def unexpected(self, wanted: str) -> QueryError:
        token = self.peek()
        return token.pos.error(f"expected {wanted}, got {token.describe()}")

    def name(self, wanted: str = "a column name") -> Token:
        token = self.peek()
        if token.kind not in (Kind.WORD, Kind.QUOTED):
            raise self.unexpected(wanted)
        return self.advance()

    def end(self) -> None:
        if self.at_symbol(";"):
            self.advance()
        if self.peek().kind is not Kind.END:
            raise self.unexpected("end of statement")

    def literal(self) -> tuple[Scalar, Position]:
        token = self.peek()
        if token.kind is Kind.STRING:
            self.advance()
            return token.text, token.pos
        if token.kind is Kind.NUMBER:
            self.advance()
            text = token.text
            is_float = any(c in text for c in ".eE")
            return (float(text) if is_float else int(text)), token.pos
        if self.at_word("TRUE", "FALSE"):
            self.advance()
            return token.text.upper() == "TRUE", token.pos
        if self.at_word("NULL"):
            self.advance()
            return None, token.pos
        raise self.unexpected("a value")

    def resource(self) -> Token:
        """A dotted resource name; only the runs resource (and its alias) exists here."""
        first = self.name("a resource name such as openai.assistants.runs")
        parts, pos = [first.text], first.pos
        while self.at_symbol("."):
            self.advance()
            parts.append(self.name("a name after '.'").text)
        dotted = ".".join(parts)
        if dotted.lower() not in RESOURCE_ALIASES:
            raise pos.error(f"unknown resource '{dotted}': only {_PUBLIC_NAMES} is supported")
        return Token(Kind.WORD, dotted, pos)

    # -- statements ---------------------------------------------------------------------------

    def statement(self) -> Statement:
        token = self.peek()
        if token.kind is Kind.END:
            raise token.pos.error("empty query: expected SELECT, INSERT, UPDATE, EXEC, "
                                  "DESCRIBE or SHOW")
        verb = token.text.upper() if token.kind is Kind.WORD else ""
        if verb == "SELECT":
            return self.select()
        if verb == "INSERT":
            return self.insert()
        if verb == "UPDATE":
            return self.update()
        if verb in ("EXEC", "EXECUTE"):
            return self.exec_()
        if verb in ("DESCRIBE", "DESC"):
            return self.describe()
        if verb == "SHOW":
            return self.show()
        if verb == "DELETE":
            raise token.pos.error("runs cannot be deleted: the API has no delete method for "
                                  "runs (cancel one with EXEC "
                                  f"{RESOURCE}.cancel_run)")
        if verb == "REPLACE":
            raise token.pos.error("runs cannot be replaced: the API has no replace method for "
                                  "runs (INSERT a new run instead)")
        raise token.pos.error(f"expected SELECT, INSERT, UPDATE, EXEC, DESCRIBE or SHOW, "
                              f"got {token.describe()}")

    def select(self) -> Select:
        self.expect_word("SELECT")
        columns = self.select_list()
        self.expect_word("FROM")
        resource = self.resource()
        conditions: list[tuple[Condition, Position]] = []
        if self.accept_word("WHERE"):
            conditions = self.conditions()
        order_by = None
        if self.accept_word("ORDER"):
            self.expect_word("BY")
            column = self.field_name()
            descending = False
            if self.at_word("ASC", "DESC"):
                descending = self.advance().text.upper() == "DESC"
            order_by = OrderBy(column, descending)
        limit = None
        if self.accept_word("LIMIT"):
            token = self.peek()
            if token.kind is not Kind.NUMBER or not token.text.isdigit():
                raise self.unexpected("a whole number after LIMIT")
            limit = int(self.advance().text)
        self.end()
        thread_id, rest = _take_key(conditions, "thread_id", resource.pos, required=True)
        run_id, rest = _take_key(rest, "run_id", resource.pos, required=False)
        assert thread_id is not None
        return Select(tuple(columns), thread_id, run_id, tuple(c for c, _ in rest), order_by,
                      limit)

    def select_list(self) -> list[Column]:
        if self.at_symbol("*"):
            self.advance()
            return [Column(name, name) for name in FIELD_NAMES]
        columns = [self.select_item()]
        while self.at_symbol(","):
            self.advance()
            if self.at_symbol("*"):
                self.advance()
                columns.extend(Column(name, name) for name in FIELD_NAMES)
            else:
                columns.append(self.select_item())
        return columns

    def select_item(self) -> Column:
        if self.at_word("JSON_EXTRACT") and self.peek(1).text == "(":
            self.advance()
            self.expect_symbol("(")
            field = self.field_name()
            self.expect_symbol(",")
            path_token = self.peek()
            if path_token.kind is not Kind.STRING:
                raise self.unexpected("a JSON path such as '$.key'")
            self.advance()
            path = _json_path(path_token)
            self.expect_symbol(")")
            column = Column(field, f"json_extract({field}, '{path_token.text}')", path)
        else:
            field = self.field_name()
            column = Column(field, field)
        if self.accept_word("AS"):
            return Column(column.field, self.name("an alias").text, column.json_path)
        if self.peek().kind is Kind.QUOTED:
            return Column(column.field, self.advance().text, column.json_path)
        return column

    def field_name(self, extra: tuple[str, ...] = ()) -> str:
        token = self.name()
        field = token.text.lower()
        if field not in FIELD_NAMES and field not in extra:
            raise token.pos.error(f"unknown column '{token.text}' of {RESOURCE} "
                                  f"(DESCRIBE {RESOURCE} lists them)")
        return field

    def conditions(self) -> list[tuple[Condition, Position]]:
        found = [self.condition()]
        while True:
            if self.at_word("OR"):
                raise self.peek().pos.error("OR is not supported: combine conditions with AND")
            if not self.accept_word("AND"):
                return found
            found.append(self.condition())

    def condition(self) -> tuple[Condition, Position]:
        pos = self.peek().pos
        if self.at_word("NOT") or self.at_symbol("("):
            raise self.unexpected("a column name (NOT and parentheses are not supported)")
        column = self.field_name(extra=("run_id",))
        token = self.peek()
        if token.kind is Kind.SYMBOL and token.text in _COMPARISONS:
            self.advance()
            value, _ = self.literal()
            return Condition(column, _COMPARISONS[token.text], value), pos
        negated = self.accept_word("NOT")
        if self.accept_word("LIKE"):
            value, value_pos = self.literal()
            if not isinstance(value, str):
                raise value_pos.error("LIKE needs a quoted pattern")
            return Condition(column, Op.NOT_LIKE if negated else Op.LIKE, value), pos
        if self.accept_word("IN"):
            self.expect_symbol("(")
            values = [self.literal()[0]]
            while self.at_symbol(","):
                self.advance()
                values.append(self.literal()[0])
            self.expect_symbol(")")
            return Condition(column, Op.NOT_IN if negated else Op.IN, values=tuple(values)), pos
        if not negated and self.accept_word("IS"):
            is_not = self.accept_word("NOT")
            self.expect_word("NULL")
            return Condition(column, Op.IS_NOT_NULL if is_not else Op.IS_NULL), pos
        raise self.unexpected("a comparison (=, !=, <, >, <=, >=, LIKE, IN, IS NULL)")

    def insert(self) -> Insert:
        start = self.expect_word("INSERT").pos
        self.expect_word("INTO")
        self.resource()
        self.expect_symbol("(")
        names = [self.name()]
        while self.at_symbol(","):
            self.advance()
            names.append(self.name())
        self.expect_symbol(")")
        if self.accept_word("VALUES"):
            self.expect_symbol("(")
            values = self.values()
            self.expect_symbol(")")
        elif self.accept_word("SELECT"):
            values = self.values()
        else:
            raise self.unexpected("SELECT or VALUES")
        self.end()
        if len(values) != len(names):
            raise start.error(f"INSERT names {len(names)} column(s) but gives "
                              f"{len(values)} value(s)")
        thread_id: str | None = None
        body: dict[str, Any] = {}
        for token, (value, pos) in zip(names, values, strict=True):
            column = token.text.lower()
            if column == "thread_id":
                if thread_id is not None:
                    raise token.pos.error("column 'thread_id' is given twice")
                thread_id = _require_id(value, pos, "thread_id")
                continue
            field = column.removeprefix("data__")
            if not column.startswith("data__") or field not in CREATE_FIELDS:
                raise token.pos.error(
                    f"cannot insert column '{token.text}': use thread_id and data__<field> "
                    f"for a CreateRunRequest field ({', '.join(CREATE_FIELDS)})")
            if field in body:
                raise token.pos.error(f"column '{token.text}' is given twice")
            body[field] = _coerce(field, CREATE_FIELDS[field], value, pos)
        if thread_id is None:
            raise start.error("INSERT needs a thread_id column: runs are created on a thread")
        if "assistant_id" not in body:
            raise start.error("INSERT needs a data__assistant_id column")
        if body.get("stream"):
            raise start.error("data__stream = true is not supported: query reads whole "
                              "responses")
        return Insert(thread_id, tuple(body.items()))

    def values(self) -> list[tuple[Scalar, Position]]:
        found = [self.literal()]
        while self.at_symbol(","):
            self.advance()
            found.append(self.literal())
        return found

    def update(self) -> Update:
        self.expect_word("UPDATE")
        resource = self.resource()
        self.expect_word("SET")
        metadata: tuple[tuple[str, str], ...] | None = None
        while True:
            token = self.name()
            column = token.text.lower()
            if column not in ("data__metadata", "metadata"):
                raise token.pos.error(
                    f"cannot update '{token.text}': only data__metadata can be changed on a "
                    "run (other fields need a new run: INSERT)")
            if metadata is not None:
                raise token.pos.error("data__metadata is set twice")
            self.expect_symbol("=")
            value, pos = self.literal()
            parsed = _coerce("metadata", "object", value, pos)
            if parsed is None:
                raise pos.error("data__metadata must be a JSON object such as '{\"k\": \"v\"}'")
            metadata = tuple(parsed.items())
            if not self.at_symbol(","):
                break
            self.advance()
        if not self.at_word("WHERE"):
            raise self.unexpected("WHERE thread_id = '…' AND run_id = '…'")
        self.advance()
        conditions = self.conditions()
        self.end()
        thread_id, rest = _take_key(conditions, "thread_id", resource.pos, required=True)
        run_id, rest = _take_key(rest, "run_id", resource.pos, required=True)
        if rest:
            raise rest[0][1].error("UPDATE takes only thread_id and run_id in WHERE")
        assert thread_id is not None and run_id is not None
        return Update(thread_id, run_id, metadata)

    def exec_(self) -> Statement:
        self.advance()
        first = self.name(f"a method such as {RESOURCE}.cancel_run")
        parts = [first]
        while self.at_symbol("."):
            self.advance()
            parts.append(self.name("a name after '.'"))
        method_token = parts[-1]
        resource = ".".join(p.text for p in parts[:-1])
        if len(parts) < 2 or resource.lower() not in RESOURCE_ALIASES:
            raise first.pos.error(
                f"unknown method '{'.'.join(p.text for p in parts)}': expected "
                f"{RESOURCE}.cancel_run or {RESOURCE}.{SUBMIT_METHOD}")
        method = EXEC_METHODS.get(method_token.text.lower())
        if method is None:
            raise method_token.pos.error(
                f"unknown method '{method_token.text}': EXEC supports cancel_run and "
                f"{SUBMIT_METHOD} (SHOW METHODS IN {RESOURCE} lists all)")
        params: dict[str, tuple[Scalar, Position]] = {}
        while self.peek().kind is Kind.PARAM:
            token = self.advance()
            name = token.text.lower()
            if name in params:
                raise token.pos.error(f"parameter {token.text} is given twice")
            allowed = ["@thread_id", "@run_id"]
            if method == SUBMIT_METHOD:
                allowed += ["@@json", "@data__tool_outputs"]
            if name not in allowed:
                raise token.pos.error(f"unknown parameter {token.text} for {method} "
                                      f"(expected {', '.join(allowed)})")
            self.expect_symbol("=")
            params[name] = self.literal()
            if self.at_symbol(","):
                self.advance()
        self.end()
        end = self.tokens[-1].pos
        ids = {}
        for key in ("@thread_id", "@run_id"):
            if key not in params:
                raise end.error(f"{method} requires {key}")
            ids[key] = _require_id(params[key][0], params[key][1], key[1:])
        if method != SUBMIT_METHOD:
            return CancelRun(ids["@thread_id"], ids["@run_id"])
        return SubmitToolOutputs(ids["@thread_id"], ids["@run_id"], _tool_outputs(params, end))

    def describe(self) -> Describe:
        self.advance()
        extended = self.accept_word("EXTENDED")
        self.resource()
        self.end()
        return Describe(extended)

    def show(self) -> ShowMethods:
        self.advance()
        self.accept_word("EXTENDED")
        if not self.at_word("METHODS"):
            raise self.unexpected(f"METHODS (only SHOW METHODS IN {RESOURCE} is supported)")
        self.advance()
        self.expect_word("IN")
        self.resource()
        self.end()
        return ShowMethods()


def _take_key(conditions: list[tuple[Condition, Position]], key: str, where: Position, *,
              required: bool) -> tuple[str | None, list[tuple[Condition, Position]]]:
    """Pull the ``key = 'id'`` condition out of WHERE: it addresses the API, not a filter."""
    found = [(c, p) for c, p in conditions if c.column == key]
    rest = [(c, p) for c, p in conditions if c.column != key]
    if not found:
        if not required:
            return None, rest
        if key == "thread_id":
            raise where.error("WHERE thread_id = '…' is required: runs can only be listed "
                              "per thread")
        raise where.error(f"WHERE {key} = '…' is required")
    if len(found) > 1:
        raise found[1][1].error(f"{key} is given twice")
    condition, pos = found[0]
    if condition.op is not Op.EQ:
        raise pos.error(f"{key} must be compared with '=' to a quoted id")
    return _require_id(condition.value, pos, key), rest


def _require_id(value: Scalar, pos: Position, name: str) -> str:
    if not isinstance(value, str) or not value:
        raise pos.error(f"{name} must be a non-empty quoted string")
    if "/" in value or any(c.isspace() for c in value):
        raise pos.error(f"{name} {value!r} is not a valid id")
    return value


def _json_path(token: Token) -> tuple[str | int, ...]:
    text = token.text
    if not text.startswith("$"):
        raise token.pos.error(f"JSON path {token.describe()} must start with '$'")
    steps: list[str | int] = []
    i = 1
    while i < len(text):
        match = _JSON_PATH_STEP.match(text, i)
        if match is None:
            raise token.pos.error(f"cannot read JSON path {token.describe()} at character "
                                  f"{i + 1}")
        key, quoted, index = match.groups()
        if index is not None:
            steps.append(int(index))
        else:
            steps.append(key if key is not None else json.loads(f'"{quoted}"'))
        i = match.end()
    return tuple(steps)


def _coerce(field: str, kind: str, value: Scalar, pos: Position) -> Any:
    """Turn a SQL literal into the JSON value a CreateRunRequest field takes."""
    if value is None:
        return None
    if kind == "string":
        if not isinstance(value, str):
            raise pos.error(f"data__{field} must be a quoted string")
        return value
    if kind in ("number", "integer"):
        number: Any = value
        if isinstance(value, str):
            try:
                number = float(value) if kind == "number" else int(value)
            except ValueError:
                raise pos.error(f"data__{field} must be a{' whole' * (kind == 'integer')} "
                                f"number, got {value!r}") from None
        if isinstance(number, bool) or (kind == "integer" and not isinstance(number, int)):
            raise pos.error(f"data__{field} must be a whole number")
        return number
    if kind == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise pos.error(f"data__{field} must be true or false")
    if not isinstance(value, str):
        raise pos.error(f"data__{field} must be JSON text in quotes")
    if kind == "string|object" and not value.lstrip().startswith("{"):
        return value
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError as exc:
        raise pos.error(f"data__{field} is not valid JSON: {exc.msg} at character "
                        f"{exc.pos + 1}") from None
    wanted = dict if kind in ("object", "string|object") else list
    if not isinstance(parsed, wanted):
        raise pos.error(f"data__{field} must be a JSON {'object' if wanted is dict else 'array'}")
    if field == "metadata":
        assert isinstance(parsed, dict)
        bad = [k for k, v in parsed.items() if not isinstance(v, str)]
        if bad:
            raise pos.error(f"metadata values must be strings (key {bad[0]!r} is not)")
    return parsed


def _tool_outputs(params: dict[str, tuple[Scalar, Position]],
                  end: Position) -> tuple[tuple[tuple[str, str], ...], ...]:
    """The tool outputs of a submit, from ``@@json`` or ``@data__tool_outputs``."""
    if "@@json" in params and "@data__tool_outputs" in params:
        raise params["@data__tool_outputs"][1].error(
            "give the tool outputs once: @@json or @data__tool_outputs")
    if "@@json" in params:
        value, pos = params["@@json"]
        body = _coerce("tool_outputs", "object", value, pos)
        if not isinstance(body, dict) or "tool_outputs" not in body:
            raise pos.error('@@json must be an object with "tool_outputs": '
                            '{"tool_outputs": [{"tool_call_id": "…", "output": "…"}]}')
        outputs = body["tool_outputs"]
    elif "@data__tool_outputs" in params:
        value, pos = params["@data__tool_outputs"]
        outputs = _coerce("tool_outputs", "array", value, pos)
    else:
        raise end.error(f"{SUBMIT_METHOD} requires @@json='{{\"tool_outputs\": [...]}}'")
    if not isinstance(outputs, list) or not outputs:
        raise pos.error("tool_outputs must be a non-empty JSON array")
    result = []
    for n, item in enumerate(outputs, 1):
        if not isinstance(item, dict) or not isinstance(item.get("tool_call_id"), str):
            raise pos.error(f"tool output {n} needs a string \"tool_call_id\"")
        output = item.get("output", "")
        if not isinstance(output, str):
            output = json.dumps(output)
        result.append((("tool_call_id", item["tool_call_id"]), ("output", output)))
    return tuple(result)
