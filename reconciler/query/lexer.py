"""Tokenizer for the SQL subset: words, quoted strings, numbers, @params and punctuation."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from reconciler.query.statements import Position


class Kind(enum.Enum):
    WORD = "word"  # keyword or identifier (keywords are matched case-insensitively)
    QUOTED = "quoted identifier"
    STRING = "string"
    NUMBER = "number"
    PARAM = "parameter"  # @name or @@name (text keeps the leading @s)
    SYMBOL = "symbol"
    END = "end of input"


@dataclass(frozen=True)
class Token:
    kind: Kind
    text: str
    pos: Position

    def describe(self) -> str:
        """How an error message names this token."""
        if self.kind is Kind.END:
            return "end of input"
        if self.kind is Kind.STRING:
            return "'" + self.text.replace("'", "''") + "'"
        return f"'{self.text}'"


_SYMBOLS = ("<>", "!=", "<=", ">=", "=", "<", ">", ",", "(", ")", ";", "*", ".")


def tokenize(sql: str) -> list[Token]:
    """Split ``sql`` into tokens ending with an END token; comments and blanks are dropped."""
    tokens: list[Token] = []
    i, line, line_start = 0, 1, 0
    n = len(sql)

    def here(at: int) -> Position:
        return Position(line, at - line_start + 1)

    while i < n:
        ch = sql[i]
        if ch == "\n":
            i += 1
            line, line_start = line + 1, i
        elif ch.isspace():
            i += 1
        elif sql.startswith("--", i):
            while i < n and sql[i] != "\n":
                i += 1
        elif sql.startswith("/*", i):
            start = here(i)
            end = sql.find("*/", i + 2)
            if end < 0:
                raise start.error("unterminated comment")
            for j in range(i, end):
                if sql[j] == "\n":
                    line, line_start = line + 1, j + 1
            i = end + 2
        elif ch == "'":
            start = here(i)
            i += 1
            parts: list[str] = []
            while True:
                if i >= n:
                    raise start.error("unterminated string")
                if sql[i] == "'":
                    if i + 1 < n and sql[i + 1] == "'":
                        parts.append("'")
                        i += 2
                        continue
                    i += 1
                    break
                if sql[i] == "\n":
                    line, line_start = line + 1, i + 1
                parts.append(sql[i])
                i += 1
            tokens.append(Token(Kind.STRING, "".join(parts), start))
        elif ch in "\"`":
            start = here(i)
            end = sql.find(ch, i + 1)
            if end < 0 or "\n" in sql[i:end]:
                raise start.error("unterminated quoted identifier")
            tokens.append(Token(Kind.QUOTED, sql[i + 1:end], start))
            i = end + 1
        elif ch.isdigit() or (ch in "-+" and i + 1 < n and sql[i + 1].isdigit()
                              and _number_may_start(tokens)):
            start = here(i)
            j = i + 1
            while j < n and (sql[j].isdigit() or sql[j] == "."):
                j += 1
            if j < n and sql[j] in "eE":
                k = j + 1
                if k < n and sql[k] in "+-":
                    k += 1
                if k < n and sql[k].isdigit():
                    j = k
                    while j < n and sql[j].isdigit():
                        j += 1
            text = sql[i:j]
            if text.count(".") > 1 or (j < n and (sql[j].isalpha() or sql[j] == "_")):
                raise start.error(f"malformed number {sql[i:j + 1]!r}")
            tokens.append(Token(Kind.NUMBER, text, start))
            i = j
        elif ch.isalpha() or ch == "_":
            start = here(i)
            j = i
            while j < n and (sql[j].isalnum() or sql[j] in "_$"):
                j += 1
            tokens.append(Token(Kind.WORD, sql[i:j], start))
            i = j
        elif ch == "@":
            start = here(i)
            j = i + (2 if sql.startswith("@@", i) else 1)
            k = j
            while k < n and (sql[k].isalnum() or sql[k] == "_"):
                k += 1
            if k == j:
                raise start.error("expected a parameter name after '@'")
            tokens.append(Token(Kind.PARAM, sql[i:k], start))
            i = k
        else:
            start = here(i)
            for symbol in _SYMBOLS:
                if sql.startswith(symbol, i):
                    tokens.append(Token(Kind.SYMBOL, symbol, start))
                    i += len(symbol)
                    break
            else:
                raise start.error(f"unexpected character {ch!r}")
    tokens.append(Token(Kind.END, "", here(i)))
    return tokens


def _number_may_start(tokens: list[Token]) -> bool:
    """A sign starts a number unless it follows a value (there is no arithmetic to mean)."""
    if not tokens:
        return True
    last = tokens[-1]
    if last.kind in (Kind.NUMBER, Kind.STRING, Kind.QUOTED):
        return False
    return not (last.kind is Kind.SYMBOL and last.text in (")", "*"))
