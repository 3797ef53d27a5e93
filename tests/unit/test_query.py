"""``reconciler query``: the parser, client-side filters and renderings, with plain values."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest

from reconciler.errors import ReconcilerError
from reconciler.query import (
    CancelRun,
    Column,
    Condition,
    Describe,
    Insert,
    Op,
    OrderBy,
    QueryError,
    QueryResult,
    Select,
    ShowMethods,
    SubmitToolOutputs,
    Update,
    parse,
    render_result,
)
from reconciler.query.catalog import FIELD_NAMES, METHODS
from reconciler.query.rows import matches, select_rows

# -- parsing: every statement kind ------------------------------------------------------------


def test_select_list_with_filters_order_and_limit() -> None:
    statement = parse(
        "SELECT id, status FROM openai.assistants.runs WHERE thread_id = 'thread_a' "
        "AND status != 'failed' AND created_at >= 100 ORDER BY created_at DESC LIMIT 5;"
    )
    assert statement == Select(
        columns=(Column("id", "id"), Column("status", "status")),
        thread_id="thread_a",
        where=(Condition("status", Op.NE, "failed"), Condition("created_at", Op.GE, 100)),
        order_by=OrderBy("created_at", descending=True),
        limit=5,
    )


def test_select_star_by_run_id_with_alias_and_lowercase_keywords() -> None:
    statement = parse("select * from runs where run_id = 'run_1' and thread_id = 'thread_a'")
    assert isinstance(statement, Select)
    assert statement.thread_id == "thread_a" and statement.run_id == "run_1"
    assert tuple(c.field for c in statement.columns) == FIELD_NAMES
    assert statement.where == () and statement.limit is None


def test_select_every_condition_kind() -> None:
    statement = parse(
        "SELECT id FROM runs WHERE thread_id = 't' AND model LIKE 'gpt-%' "
        "AND status NOT LIKE 'c%' AND status IN ('queued', 'completed') "
        "AND status NOT IN ('failed') AND usage IS NULL AND last_error IS NOT NULL "
        "AND temperature < 1.5 AND top_p > 0 AND max_prompt_tokens <= 1000 "
        "AND parallel_tool_calls = true AND instructions <> 'x' AND temperature > -0.5"
    )
    assert isinstance(statement, Select)
    assert [c.op for c in statement.where] == [
        Op.LIKE, Op.NOT_LIKE, Op.IN, Op.NOT_IN, Op.IS_NULL, Op.IS_NOT_NULL, Op.LT, Op.GT,
        Op.LE, Op.EQ, Op.NE, Op.GT,
    ]
    assert statement.where[-1].value == -0.5
    assert statement.where[2].values == ("queued", "completed")
    assert statement.where[6].value == 1.5
    assert statement.where[9].value is True


def test_select_json_extract() -> None:
    statement = parse(
        "SELECT id, json_extract(metadata, '$.team') AS team, "
        "JSON_EXTRACT(required_action, '$.submit_tool_outputs.tool_calls[0].id') "
        "FROM runs WHERE thread_id = 't'"
    )
    assert isinstance(statement, Select)
    assert statement.columns[1] == Column("metadata", "team", ("team",))
    assert statement.columns[2].json_path == ("submit_tool_outputs", "tool_calls", 0, "id")
    assert statement.columns[2].label.startswith("json_extract(required_action")


def test_insert_select_form_parses_json_columns() -> None:
    statement = parse(
        "INSERT INTO openai.assistants.runs (thread_id, data__assistant_id, data__model, "
        "data__tools, data__metadata, data__temperature, data__max_prompt_tokens, "
        "data__parallel_tool_calls, data__tool_choice, data__truncation_strategy, data__top_p) "
        "SELECT 'thread_a', 'asst_demo', 'gpt-4o', "
        "'[{\"type\": \"function\", \"function\": {\"name\": \"f\"}}]', '{\"team\": \"a\"}', "
        "'0.5', 1000, 'false', 'auto', '{\"type\": \"last_messages\", \"last_messages\": 3}', 1e-1;"
    )
    assert isinstance(statement, Insert)
    assert statement.thread_id == "thread_a"
    assert statement.body_dict() == {
        "assistant_id": "asst_demo",
        "model": "gpt-4o",
        "tools": [{"type": "function", "function": {"name": "f"}}],
        "metadata": {"team": "a"},
        "temperature": 0.5,
        "max_prompt_tokens": 1000,
        "parallel_tool_calls": False,
        "tool_choice": "auto",
        "truncation_strategy": {"type": "last_messages", "last_messages": 3},
        "top_p": 0.1,
    }


def test_insert_values_form_and_object_tool_choice() -> None:
    statement = parse(
        "insert into runs (thread_id, data__assistant_id, data__tool_choice) values "
        "('t', 'asst_demo', '{\"type\": \"function\", \"function\": {\"name\": \"f\"}}')"
    )
    assert isinstance(statement, Insert)
    assert statement.body_dict()["tool_choice"] == {"type": "function",
                                                    "function": {"name": "f"}}


def test_update_metadata() -> None:
    statement = parse(
        "UPDATE openai.assistants.runs SET data__metadata = '{\"k\": \"v\"}' "
        "WHERE thread_id = 't' AND run_id = 'run_1';"
    )
    assert statement == Update("t", "run_1", (("k", "v"),))


def test_exec_cancel_and_submit_both_spellings() -> None:
    assert parse("EXEC openai.assistants.runs.cancel_run @thread_id='t', @run_id='r';") == \
        CancelRun("t", "r")
    body = "{\"tool_outputs\": [{\"tool_call_id\": \"call_1\", \"output\": \"it''s ok\"}]}"
    for method in ("submit_tool_ouputs_to_run", "submit_tool_outputs_to_run"):
        statement = parse(f"exec openai.assistants.runs.{method} @thread_id='t', "
                          f"@run_id='r' @@json='{body}'")
        assert statement == SubmitToolOutputs("t", "r", ((("tool_call_id", "call_1"),
                                                          ("output", "it's ok")),))
    assert isinstance(statement, SubmitToolOutputs)
    assert statement.outputs_list() == [{"tool_call_id": "call_1", "output": "it's ok"}]


def test_describe_and_show_methods() -> None:
    assert parse("DESCRIBE openai.assistants.runs") == Describe(extended=False)
    assert parse("describe extended runs;") == Describe(extended=True)
    assert parse("SHOW METHODS IN openai.assistants.runs;") == ShowMethods()


def test_comments_quotes_and_newlines() -> None:
    statement = parse(
        "-- which runs?\nSELECT id -- the id\n  FROM runs\n"
        "WHERE thread_id = 't' AND instructions = 'it''s -- not a comment'"
    )
    assert isinstance(statement, Select)
    assert statement.where == (Condition("instructions", Op.EQ, "it's -- not a comment"),)


# -- parsing: errors name the position --------------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("SELECT id FORM openai.assistants.runs", "line 1, column 11: expected FROM, got 'FORM'"),
        ("SELECT id FROM runs WHERE status = 'x'",
         "line 1, column 16: WHERE thread_id = '…' is required: runs can only be listed per "
         "thread"),
        ("SELECT id FROM runs", "runs can only be listed per thread"),
        ("SELECT nope FROM runs WHERE thread_id = 't'", "line 1, column 8: unknown column 'nope'"),
        ("SELECT id FROM openai.assistants.threads WHERE thread_id = 't'",
         "line 1, column 16: unknown resource 'openai.assistants.threads'"),
        ("SELECT id\nFROM runs\nWHERE thread_id = 't' OR status = 'x'",
         "line 3, column 23: OR is not supported"),
        ("SELECT id FROM runs WHERE thread_id = 'unterminated",
         "line 1, column 39: unterminated string"),
        ("SELECT id FROM runs WHERE thread_id LIKE 't%'",
         "line 1, column 27: thread_id must be compared with '='"),
        ("SELECT id FROM runs WHERE thread_id = 't' LIMIT -1",
         "line 1, column 49: expected a whole number after LIMIT, got '-1'"),
        ("SELECT id FROM runs WHERE thread_id = 't' LIMIT 1.5",
         "line 1, column 49: expected a whole number after LIMIT, got '1.5'"),
        ("SELECT id FROM runs WHERE thread_id = 't' extra", "expected end of statement, got "
         "'extra'"),
        ("SELECT id FROM runs WHERE thread_id = 't' AND status ~ 'x'",
         "line 1, column 54: unexpected character '~'"),
        ("SELECT id FROM", "line 1, column 15: expected a resource name such as "
         "openai.assistants.runs, got end of input"),
        ("", "empty query"),
        ("DROP TABLE runs", "line 1, column 1: expected SELECT, INSERT, UPDATE, EXEC"),
        ("DELETE FROM openai.assistants.runs WHERE thread_id = 't'",
         "line 1, column 1: runs cannot be deleted"),
        ("REPLACE INTO runs (thread_id) SELECT 't'", "runs cannot be replaced"),
        ("INSERT INTO runs (thread_id, data__assistant_id) SELECT 't'",
         "INSERT names 2 column(s) but gives 1 value(s)"),
        ("INSERT INTO runs (thread_id, data__model) SELECT 't', 'gpt-4o'",
         "INSERT needs a data__assistant_id column"),
        ("INSERT INTO runs (data__assistant_id) SELECT 'a'", "INSERT needs a thread_id column"),
        ("INSERT INTO runs (thread_id, data__assistant_id, data__tools) SELECT 't', 'a', "
         "'[oops'", "line 1, column 80: data__tools is not valid JSON"),
        ("INSERT INTO runs (thread_id, data__assistant_id, data__tools) SELECT 't', 'a', "
         "'{}'", "data__tools must be a JSON array"),
        ("INSERT INTO runs (thread_id, data__assistant_id, data__temperature) SELECT 't', "
         "'a', 'hot'", "data__temperature must be a number, got 'hot'"),
        ("INSERT INTO runs (thread_id, data__assistant_id, status) SELECT 't', 'a', 'x'",
         "line 1, column 50: cannot insert column 'status'"),
        ("INSERT INTO runs (thread_id, data__assistant_id, data__stream) SELECT 't', 'a', "
         "true", "data__stream = true is not supported"),
        ("INSERT INTO runs (thread_id, data__assistant_id, data__metadata) SELECT 't', 'a', "
         "'{\"n\": 1}'", "metadata values must be strings"),
        ("UPDATE runs SET data__model = 'x' WHERE thread_id = 't' AND run_id = 'r'",
         "line 1, column 17: cannot update 'data__model': only data__metadata"),
        ("UPDATE runs SET data__metadata = '{}' WHERE thread_id = 't'",
         "WHERE run_id = '…' is required"),
        ("UPDATE runs SET data__metadata = '{}' WHERE thread_id = 't' AND run_id = 'r' "
         "AND status = 'x'", "line 1, column 82: UPDATE takes only thread_id and run_id"),
        ("UPDATE runs SET data__metadata = 'x' WHERE thread_id = 't' AND run_id = 'r'",
         "data__metadata is not valid JSON"),
        ("EXEC openai.assistants.runs.delete_run @thread_id='t', @run_id='r'",
         "line 1, column 29: unknown method 'delete_run'"),
        ("EXEC openai.assistants.runs.cancel_run @thread_id='t'",
         "line 1, column 54: cancel_run requires @run_id"),
        ("EXEC runs.cancel_run @thread_id='t', @run_id='r', @@json='{}'",
         "unknown parameter @@json for cancel_run"),
        ("EXEC runs.submit_tool_ouputs_to_run @thread_id='t', @run_id='r'",
         "submit_tool_ouputs_to_run requires @@json"),
        ("EXEC runs.submit_tool_ouputs_to_run @thread_id='t', @run_id='r' @@json='{\"x\": 1}'",
         "@@json must be an object with \"tool_outputs\""),
        ("EXEC runs.submit_tool_ouputs_to_run @thread_id='t', @run_id='r' "
         "@@json='{\"tool_outputs\": [{\"output\": \"x\"}]}'",
         "tool output 1 needs a string \"tool_call_id\""),
        ("SHOW TABLES", "expected METHODS"),
    ],
)
def test_errors_are_query_errors_with_positions(sql: str, message: str) -> None:
    with pytest.raises(QueryError) as caught:
        parse(sql)
    assert message in str(caught.value)
    assert isinstance(caught.value, ReconcilerError)


def test_error_carries_line_and_column() -> None:
    with pytest.raises(QueryError) as caught:
        parse("SELECT id\n  FORM runs")
    assert (caught.value.line, caught.value.column) == (2, 3)
    assert str(caught.value) == "line 2, column 3: expected FROM, got 'FORM'"


# -- client-side filters ----------------------------------------------------------------------

RUNS: list[dict[str, Any]] = [
    {"id": "run_1", "status": "completed", "created_at": 300, "model": "gpt-4o",
     "temperature": 0.2, "metadata": {"team": "a"}, "usage": {"total_tokens": 10},
     "parallel_tool_calls": True, "tools": []},
    {"id": "run_2", "status": "requires_action", "created_at": 100, "model": "GPT-4o-mini",
     "temperature": None, "metadata": {}, "usage": None, "parallel_tool_calls": False,
     "tools": [{"type": "function", "function": {"name": "f"}}]},
    {"id": "run_3", "status": "cancelled", "created_at": 200, "model": "o3",
     "temperature": 1.0, "metadata": {"team": "b"}, "usage": None,
     "parallel_tool_calls": True, "tools": []},
]


def ids(*conditions: Condition, order: OrderBy | None = None, limit: int | None = None) -> list[
        Any]:
    rows = select_rows(RUNS, conditions, order, limit, [Column("id", "id")])
    return [row[0] for row in rows]


def test_filters_compare_like_in_and_null() -> None:
    assert ids(Condition("status", Op.EQ, "completed")) == ["run_1"]
    assert ids(Condition("status", Op.NE, "completed")) == ["run_2", "run_3"]
    assert ids(Condition("created_at", Op.GT, 150)) == ["run_1", "run_3"]
    assert ids(Condition("created_at", Op.LE, "200")) == ["run_2", "run_3"]
    assert ids(Condition("model", Op.LIKE, "gpt-4o%")) == ["run_1", "run_2"]  # ASCII nocase
    assert ids(Condition("model", Op.NOT_LIKE, "gpt_4o")) == ["run_2", "run_3"]
    assert ids(Condition("status", Op.IN, values=("cancelled", "completed"))) == [
        "run_1", "run_3"]
    assert ids(Condition("status", Op.NOT_IN, values=("cancelled",))) == ["run_1", "run_2"]
    assert ids(Condition("usage", Op.IS_NULL)) == ["run_2", "run_3"]
    assert ids(Condition("usage", Op.IS_NOT_NULL)) == ["run_1"]
    assert ids(Condition("parallel_tool_calls", Op.EQ, False)) == ["run_2"]
    assert ids(Condition("parallel_tool_calls", Op.EQ, "true")) == ["run_1", "run_3"]
    assert ids(Condition("metadata", Op.LIKE, '%"team":"b"%')) == ["run_3"]
    assert ids(Condition("temperature", Op.EQ, 1)) == ["run_3"]


def test_null_never_matches_a_comparison() -> None:
    assert ids(Condition("temperature", Op.NE, 5)) == ["run_1", "run_3"]
    assert not matches(RUNS[1], Condition("temperature", Op.LT, 5))


def test_order_by_puts_nulls_last_and_limit_cuts() -> None:
    assert ids(order=OrderBy("created_at")) == ["run_2", "run_3", "run_1"]
    assert ids(order=OrderBy("created_at", descending=True), limit=2) == ["run_1", "run_3"]
    assert ids(order=OrderBy("temperature", descending=True)) == ["run_3", "run_1", "run_2"]
    assert ids(limit=0) == []


def test_projection_shows_objects_as_json_text_and_extracts_paths() -> None:
    columns = [Column("metadata", "metadata"), Column("tools", "tools"),
               Column("metadata", "team", ("team",)),
               Column("tools", "fn", (0, "function", "name")),
               Column("cancelled_at", "cancelled_at")]
    rows = select_rows(RUNS[:2], (), None, None, columns)
    assert rows[0] == ('{"team":"a"}', "[]", "a", None, None)
    assert rows[1] == ("{}", '[{"function":{"name":"f"},"type":"function"}]', None, "f", None)


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
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == list(RESULT.columns)
    assert rows[1] == ["run_1", "completed", "0.5", '{"total_tokens":10}', "two\nlines", "true"]
    assert rows[2] == ["run_22", "queued", "", "", 'say "hi", then stop', "false"]


def test_render_unknown_format() -> None:
    with pytest.raises(QueryError, match="unknown output format 'xml'"):
        render_result(RESULT, "xml")


# -- DESCRIBE / SHOW METHODS catalog ----------------------------------------------------------


def test_methods_match_the_stackql_page() -> None:
    assert [(m.name, m.required_params, m.sql_verb) for m in METHODS] == [
        ("get_run", "run_id, thread_id", "SELECT"),
        ("list_runs", "thread_id", "SELECT"),
        ("create_run", "thread_id, data__assistant_id", "INSERT"),
        ("modify_run", "run_id, thread_id", "UPDATE"),
        ("cancel_run", "run_id, thread_id", "EXEC"),
        ("submit_tool_ouputs_to_run", "run_id, thread_id, data__tool_outputs", "EXEC"),
    ]
    assert len(FIELD_NAMES) == 27 and FIELD_NAMES[0] == "id" and FIELD_NAMES[-1] == "usage"


VALID = [
    "SELECT id, json_extract(metadata, '$.k') AS k FROM runs WHERE thread_id = 't' "
    "AND status IN ('a', 'b') AND usage IS NOT NULL ORDER BY created_at DESC LIMIT 2;",
    "INSERT INTO runs (thread_id, data__assistant_id, data__tools) VALUES ('t', 'a', '[]');",
    "UPDATE runs SET data__metadata = '{\"k\": \"v\"}' WHERE thread_id = 't' AND run_id = 'r';",
    "EXEC runs.submit_tool_ouputs_to_run @thread_id='t', @run_id='r' "
    "@@json='{\"tool_outputs\": [{\"tool_call_id\": \"c\", \"output\": \"o\"}]}';",
]


@pytest.mark.parametrize("sql", VALID)
def test_any_prefix_parses_or_fails_with_a_query_error(sql: str) -> None:
    """Truncated input never escapes as anything but a QueryError (no traceback)."""
    for cut in range(len(sql)):
        try:
            parse(sql[:cut])
        except QueryError as exc:
            assert str(exc).startswith("line ")


def test_every_example_in_the_docs_parses() -> None:
    from pathlib import Path

    text = (Path(__file__).parents[2] / "docs" / "query.md").read_text("utf-8")
    blocks = [b.split("```", 1)[0] for b in text.split("```sql\n")[1:]]
    statements = [s for block in blocks for s in block.split(";") if s.strip().strip("-")]
    statements = [s for s in statements if any(not line.strip().startswith("--")
                                               for line in s.strip().splitlines())]
    assert len(statements) >= 10
    for sql in statements:
        parse(sql)
