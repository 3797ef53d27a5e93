"""StackQL's SQL as sqlglot reads it: SQLite's dialect plus ``EXEC`` and ``SHOW``.

SQLite is StackQL's own default backend, so its grammar (quoting, ``LIKE``, ``JSON_EXTRACT``)
is what StackQL users write. Two statements are StackQL's own and are added here: ``EXEC
method @param = value … @@json = '…'`` (commas between parameters optional, as in StackQL) and
``SHOW [EXTENDED] METHODS|RESOURCES IN name [LIKE 'pattern']``. ``/*+ … */`` hints are
comments in SQLite's tokenizer, so they are accepted and ignored. Syntax errors become one
:class:`QueryError` with the line and column; nothing here falls back to sqlglot's
"Command" (which would log a warning and accept anything).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from sqlglot import exp
from sqlglot.dialects.sqlite import SQLite
from sqlglot.errors import ParseError, TokenError
from sqlglot.parsers.sqlite import SQLiteParser
from sqlglot.tokenizer_core import Token, TokenType

from reconciler.query.statements import QueryError

_MISSING_QUOTE = re.compile(r"Missing (\S+) from (\d+):(\d+)")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
STATEMENTS = "SELECT, INSERT, UPDATE, EXEC, DESCRIBE or SHOW"
_KEYWORDS = ("SELECT", "FROM", "WHERE", "GROUP", "ORDER", "HAVING", "LIMIT", "OFFSET", "AND",
             "DISTINCT", "VALUES", "INTO", "INSERT", "UPDATE", "SET", "LIKE", "NULL", "DESCRIBE")
_PLAIN = {"Invalid expression / Unexpected token": "unexpected token"}


def table_of(parts: Sequence[exp.Expr]) -> exp.Table:
    """The table sqlglot itself would build for the dotted name ``parts``."""
    if len(parts) > 3:
        return exp.Table(this=exp.Dot.build(parts[2:]), db=parts[1], catalog=parts[0])
    table = exp.Table(this=parts[-1])
    if len(parts) > 1:
        table.set("db", parts[-2])
    if len(parts) > 2:
        table.set("catalog", parts[-3])
    return table


class StackQL(SQLite):
    """The dialect ``reconciler query`` reads; it writes plain SQLite for the engine."""

    class Tokenizer(SQLite.Tokenizer):
        KEYWORDS: ClassVar[dict[str, TokenType]] = {**SQLite.Tokenizer.KEYWORDS,
                                                    "EXEC": TokenType.EXECUTE}
        # EXEC, SHOW and REPLACE are statements here, not text swallowed whole as a command.
        COMMANDS = SQLite.Tokenizer.COMMANDS - {TokenType.EXECUTE, TokenType.SHOW,
                                               TokenType.REPLACE}

    class Parser(SQLiteParser):
        STATEMENT_PARSERS: ClassVar[dict[TokenType, Callable[..., Any]]] = {
            **SQLiteParser.STATEMENT_PARSERS,
            TokenType.EXECUTE: lambda self: self._parse_stackql_exec(),
            TokenType.SHOW: lambda self: self._parse_stackql_show(),
            TokenType.REPLACE: lambda self: self._refuse_replace(),
        }
        # literals keep their position, for located errors
        PRIMARY_PARSERS: ClassVar[dict[TokenType, Callable[..., Any]]] = {
            **SQLiteParser.PRIMARY_PARSERS,
            TokenType.NULL: lambda self, token: self.expression(exp.Null(), token),
            TokenType.TRUE: lambda self, token: self.expression(exp.Boolean(this=True), token),
            TokenType.FALSE: lambda self, token: self.expression(exp.Boolean(this=False), token),
        }

        def _parse_statement(self) -> exp.Expr | None:
            token = self._curr
            if token and token.token_type not in self.STATEMENT_PARSERS and token.token_type \
                    not in (TokenType.SELECT, TokenType.WITH, TokenType.L_PAREN):
                self.raise_error(f"Expected {STATEMENTS}", token)
            return super()._parse_statement()

        def _parse_dotted_name(self, what: str) -> exp.Table:
            """``a.b.c.d`` of any words (a method may be called ``update`` or ``create``)."""
            parts: list[exp.Identifier] = []
            while True:
                token = self._curr
                if not token or not (
                    token.token_type == TokenType.IDENTIFIER
                    or (token.token_type != TokenType.STRING and _WORD.fullmatch(token.text))
                ):
                    self.raise_error(f"Expected {what}")
                    return exp.Table(this=exp.to_identifier("?"))
                self._advance()
                quoted = token.token_type == TokenType.IDENTIFIER
                parts.append(exp.to_identifier(token.text, quoted=quoted).update_positions(token))
                if not self._match(TokenType.DOT):
                    break
            return table_of(parts)

        def _parse_stackql_exec(self) -> exp.Execute:
            method = self._parse_dotted_name("a method such as openai.assistants.runs.cancel_run")
            params: list[exp.Expr] = []
            while self._match(TokenType.PARAMETER):
                at = self._prev
                session = self._match(TokenType.PARAMETER)
                name = self._parse_var(any_token=True)
                if name is None:
                    self.raise_error("Expected a parameter name after '@'")
                text = name.name if name is not None else ""
                key: exp.Expr = exp.Var(this=f"{'@@' if session else '@'}{text}")
                key.update_positions(at)
                if not self._match(TokenType.EQ):
                    self.raise_error(f"Expected '=' after {key.name}")
                value = self._parse_bitwise()
                if value is None:
                    self.raise_error(f"Expected a value for {key.name}")
                params.append(self.expression(exp.EQ(this=key, expression=value)))
                self._match(TokenType.COMMA)
            return self.expression(exp.Execute(this=method, expressions=params))

        def _parse_stackql_show(self) -> exp.Show:
            extended = self._match_text_seq("EXTENDED")
            if not self._match_texts(("METHODS", "RESOURCES")):
                self.raise_error("Expected METHODS or RESOURCES after SHOW")
            kind = self._prev.text.upper()
            if not self._match_set((TokenType.IN, TokenType.FROM)):
                self.raise_error(f"Expected IN after SHOW {kind}")
            target = self._parse_dotted_name("a name such as openai.assistants.runs")
            like = self._parse_string() if self._match(TokenType.LIKE) else None
            return self.expression(exp.Show(this=kind, target=target, like=like,
                                            full=extended))

        def _refuse_replace(self) -> exp.Expr:
            self.raise_error("Runs cannot be replaced: the API has no replace method for runs "
                             "(INSERT a new run instead)", self._prev)
            return exp.Null()

        def _warn_unsupported(self) -> None:
            """sqlglot would log a warning and keep the text as a "Command": refuse it."""
            start = self._tokens[0] if self._tokens else None
            self.raise_error(f"Expected {STATEMENTS}", start or self._curr)


DIALECT = StackQL()


@dataclass(frozen=True)
class Source:
    """The SQL text, to turn a node's offset into the line and column an error names;
    ``start`` is where the statement being compiled begins (for nodes without a place)."""

    text: str
    start: int = 0

    def position(self, offset: int) -> tuple[int, int]:
        """1-based line and column of a 0-based character offset."""
        offset = max(0, min(offset, len(self.text)))
        line = self.text.count("\n", 0, offset) + 1
        return line, offset - (self.text.rfind("\n", 0, offset) + 1) + 1

    def error(self, node: exp.Expr | None, message: str) -> QueryError:
        """A :class:`QueryError` at ``node`` (or the first of its parts that has a place)."""
        offset = _offset(node) if node is not None else None
        line, column = self.position(self.start if offset is None else offset)
        return QueryError(message, line=line, column=column)


def _offset(node: exp.Expr) -> int | None:
    """Where ``node`` starts: its own place, else the earliest place among its parts."""
    start = node.meta.get("start") if node.meta else None
    if isinstance(start, int):
        return start
    found = [n.meta["start"] for n in node.walk() if n.meta and "start" in n.meta]
    return min(found) if found else None


def parse_sql(text: str) -> list[tuple[exp.Expr, int]]:
    """Every statement of ``text`` (``;``-separated) and the offset it starts at, empty ones
    left out; pure."""
    try:
        tokens = DIALECT.tokenize(text)
        nodes = DIALECT.parser().parse(tokens, text)
    except ParseError as exc:
        raise _syntax_error(text, exc) from None
    except TokenError as exc:
        raise _token_error(text, exc) from None
    return [(node, start) for node, start in zip(nodes, _chunk_starts(tokens), strict=True)
            if node is not None and not isinstance(node, exp.Semicolon)]


def _chunk_starts(tokens: list[Token]) -> list[int]:
    """Where each statement sqlglot parses starts: it splits the tokens at every ``;`` (and a
    ``;`` that carries comments is a statement of its own)."""
    chunks: list[list[Token]] = [[]]
    for i, token in enumerate(tokens):
        if token.token_type == TokenType.SEMICOLON:
            if token.comments:
                chunks.append([token])
            if i < len(tokens) - 1:
                chunks.append([])
        else:
            chunks[-1].append(token)
    return [chunk[0].start if chunk else 0 for chunk in chunks]


def _syntax_error(text: str, exc: ParseError) -> QueryError:
    detail: dict[str, Any] = exc.errors[0] if exc.errors else {}
    description = str(detail.get("description") or "invalid syntax")
    description = description.split(". Line ")[0].split(" but got <Token")[0]
    description = _PLAIN.get(description, description)
    if description.startswith("Required keyword:"):
        description = "the expression is incomplete"
    highlight = str(detail.get("highlight") or "")
    line, col = detail.get("line"), detail.get("col")
    if not isinstance(line, int) or not isinstance(col, int):
        return QueryError(f"syntax error: {description}")
    if highlight and "\n" not in highlight:
        col = max(1, col - len(highlight) + 1)  # sqlglot names the token's last character
    typo = _misspelt_keyword(text, line, col)
    if typo is not None:
        token, keyword = typo
        return QueryError(f"syntax error near '{token.text}': did you mean {keyword}?",
                          line=token.line, column=token.col - len(token.text) + 1)
    quoted = highlight[:1] in ("'", '"', "`")
    near = f" near {highlight if quoted else repr(highlight)}" if highlight else ""
    return QueryError(f"syntax error{near}: {description[:1].lower()}{description[1:]}",
                      line=line, column=col)


def _misspelt_keyword(text: str, line: int, col: int) -> tuple[Token, str] | None:
    """The word just before a syntax error when it is a keyword misspelt (``FORM``)."""
    offset = sum(len(row) + 1 for row in text.split("\n")[: line - 1]) + col - 1
    before = [t for t in DIALECT.tokenize(text) if t.start <= offset]
    for token in before[-2:]:
        if token.token_type == TokenType.VAR:
            close = difflib.get_close_matches(token.text.upper(), _KEYWORDS, n=1, cutoff=0.75)
            if close and close[0] != token.text.upper():
                return token, close[0]
    return None


def _token_error(text: str, exc: TokenError) -> QueryError:
    """An unterminated string or quoted name, located where it starts."""
    match = _MISSING_QUOTE.search(str(exc.__cause__ or exc))
    if match is None:  # the text stops right after an opening quote, or worse
        line, column = Source(text).position(len(text.rstrip()) - 1)
        return QueryError("syntax error: the SQL cannot be read from here (a string or a "
                          "quoted name left open?)", line=line, column=column)
    quote, offset = match.group(1), int(match.group(3))
    what = "string" if quote == "'" else "quoted name"
    line, column = Source(text).position(offset)
    return QueryError(f"unterminated {what}: the closing {quote} is missing", line=line,
                      column=column)
