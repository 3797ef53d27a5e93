"""``reconciler query``'s renderings of a result: aligned table, JSON, CSV. Plain values."""

from __future__ import annotations

import csv
import io
import json

import pytest

from reconciler.query import QueryError, QueryResult, render_result

# -- rendering --------------------------------------------------------------------------------

RESULT = QueryResult(
    ("id", "status", "temperature", "usage", "instructions", "parallel_tool_calls"),
    (("run_1", "completed", 0.5, '{"total_tokens":10}', "two\nlines", True),
     ("run_22", "queued", None, None, 'say "hi", then stop', False)),
)


def test_render_table_is_aligned_without_colour() -> None:
    text = render_result(RESULT, "table")
    assert "\x1b" not in text
    lines = text.splitlines()
    assert lines[0] == lines[2] == lines[-1]
    assert lines[0].startswith("+--")
    assert len({len(line) for line in lines}) == 1
    assert lines[1].split("|")[1:3] == [" id     ", " status    "]
    assert "| null " in lines[4] and "two\\nlines" in lines[3] and "| true " in lines[3]


def test_render_table_with_message_and_without_rows() -> None:
    text = render_result(QueryResult(("id",), (), "nothing"), "table")
    assert text == "+----+\n| id |\n+----+\nnothing\n"
    assert render_result(QueryResult((), (), "done"), "table") == "done\n"


def test_render_json_is_a_list_of_objects() -> None:
    parsed = json.loads(render_result(RESULT, "json"))
    assert parsed[0] == {"id": "run_1", "status": "completed", "temperature": 0.5,
                         "usage": '{"total_tokens":10}', "instructions": "two\nlines",
                         "parallel_tool_calls": True}
    assert parsed[1]["temperature"] is None
    assert json.loads(render_result(QueryResult(("id",), ()), "json")) == []


def test_render_csv_quotes_and_empty_nulls() -> None:
    text = render_result(RESULT, "csv")
    found = list(csv.reader(io.StringIO(text)))
    assert found[0] == list(RESULT.columns)
    assert found[1] == ["run_1", "completed", "0.5", '{"total_tokens":10}', "two\nlines", "true"]
    assert found[2] == ["run_22", "queued", "", "", 'say "hi", then stop', "false"]


def test_render_unknown_format() -> None:
    with pytest.raises(QueryError, match="unknown output format 'xml'"):
        render_result(RESULT, "xml")
