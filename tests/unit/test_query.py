"""``reconciler query``: the compiler and the SQLite engine, with plain values.

Expected rows are computed here in plain Python from the runs the test builds; the SQL runs
through sqlglot and SQLite. DESCRIBE and SHOW METHODS are compared with StackQL's own page.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from reconciler.errors import ReconcilerError
from reconciler.query import (
    CancelRun,
    Describe,
    Insert,
    QueryError,
    Select,
    ShowMethods,
    ShowResources,
    SubmitToolOutputs,
    Update,
    catalog_result,
    parse,
    parse_script,
)
from reconciler.query.catalog import FIELD_NAMES
from reconciler.query.engine import run_select
from tests.fixtures import stackql_page_tables

# -- the runs the engine tests read -----------------------------------------------------------

RUNS: list[dict[str, Any]] = [
    {"id": "run_1", "thread_id": "t", "status": "completed", "created_at": 300,
     "model": "gpt-4o", "temperature": 0.2, "metadata": {"team": "a"},
     "usage": {"total_tokens": 10}, "parallel_tool_calls": True, "tools": [],
     "last_error": None},
    {"id": "run_2", "thread_id": "t", "status": "requires_action", "created_at": 100,
     "model": "GPT-4o-mini", "temperature": None, "metadata": {}, "usage": None,
     "parallel_tool_calls": False, "last_error": None,
     "tools": [{"type": "function", "function": {"name": "f"}}]},
    {"id": "run_3", "thread_id": "t", "status": "failed", "created_at": 200, "model": "o3",
     "temperature": 1.0, "metadata": {"team": "b"}, "usage": {"total_tokens": 5},
     "parallel_tool_calls": True, "tools": [], "last_error": {"code": "server_error"}},
    {"id": "run_4", "thread_id": "t", "status": "completed", "created_at": 200, "model": "o3",
     "temperature": 0.7, "metadata": {"team": "a"}, "usage": {"total_tokens": 7},
     "parallel_tool_calls": True, "tools": [], "last_error": None},
]


def rows(sql: str) -> list[tuple[Any, ...]]:
    statement = parse(sql)
    assert isinstance(statement, Select)
    return list(run_select(statement, RUNS).rows)


def ids(where: str, tail: str = "") -> list[str]:
    return [row[0] for row in rows(f"SELECT id FROM runs WHERE thread_id = 't' AND ({where})"
                                   f" {tail}")]


def test_where_and_or_not_parentheses_in_like_comparisons_null() -> None:
    assert ids("status = 'failed' OR status = 'requires_action'") == ["run_2", "run_3"]
    assert ids("NOT (status = 'completed')") == ["run_2", "run_3"]
    assert ids("status = 'completed' AND (created_at > 250 OR model = 'o3')") == [
        "run_1", "run_4"]
    assert ids("status IN ('failed', 'completed')") == ["run_1", "run_3", "run_4"]
    assert ids("status NOT IN ('failed', 'completed')") == ["run_2"]
    assert ids("model LIKE 'gpt-4o%'") == ["run_1", "run_2"]  # ASCII case-insensitive
    assert ids("model NOT LIKE 'gpt_4o'") == ["run_2", "run_3", "run_4"]
    assert ids("created_at >= '200'") == ["run_1", "run_3", "run_4"]  # INTEGER affinity
    assert ids("created_at <> 200 AND created_at != 100") == ["run_1"]
    assert ids("temperature < 0.5") == ["run_1"]  # NULL matches no comparison
    assert ids("temperature IS NULL") == ["run_2"]
    assert ids("last_error IS NOT NULL") == ["run_3"]
    assert ids("parallel_tool_calls = false") == ["run_2"]
    assert ids("metadata LIKE '%\"team\":\"b\"%'") == ["run_3"]  # objects are compact JSON


def test_json_extract_in_select_and_where() -> None:
    found = rows("SELECT id, json_extract(metadata, '$.team') AS team, "
                 "JSON_EXTRACT(tools, '$[0].function.name') FROM runs WHERE thread_id = 't' "
                 "AND json_extract(usage, '$.total_tokens') >= 7 ORDER BY id")
    assert found == [("run_1", "a", None), ("run_4", "a", None)]
    assert rows("SELECT json_extract(tools, '$[0].function.name') FROM runs "
                "WHERE thread_id = 't' AND id = 'run_2'") == [("f",)]


def test_distinct_aggregates_group_by_having() -> None:
    assert rows("SELECT DISTINCT model FROM runs WHERE thread_id = 't' ORDER BY model") == [
        ("GPT-4o-mini",), ("gpt-4o",), ("o3",)]  # BINARY collation: capitals first
    grouped = rows("SELECT status, COUNT(*) AS n, SUM(json_extract(usage, '$.total_tokens')) "
                   "AS tokens, MIN(created_at), MAX(temperature), AVG(temperature) FROM runs "
                   "WHERE thread_id = 't' GROUP BY status HAVING COUNT(*) >= 1 "
                   "ORDER BY n DESC, status")
    assert grouped == [("completed", 2, 17, 200, 0.7, pytest.approx(0.45)),
                       ("failed", 1, 5, 200, 1.0, 1.0),
                       ("requires_action", 1, None, 100, None, None)]
    assert rows("SELECT COUNT(*), COUNT(temperature), total(created_at) FROM runs "
                "WHERE thread_id = 't'") == [(4, 3, 800.0)]


def test_order_by_several_keys_limit_offset() -> None:
    assert ids("1 = 1", "ORDER BY created_at DESC, id DESC") == [
        "run_1", "run_4", "run_3", "run_2"]
    assert ids("1 = 1", "ORDER BY model, created_at LIMIT 2 OFFSET 1") == ["run_1", "run_3"]
    assert ids("1 = 1", "ORDER BY temperature DESC LIMIT 1") == ["run_3"]
    assert ids("1 = 1", "LIMIT 0") == []


def test_star_is_every_column_of_the_page_and_booleans_stay_booleans() -> None:
    statement = parse("SELECT * FROM openai.assistants.runs WHERE thread_id = 't'")
    assert isinstance(statement, Select)
    result = run_select(statement, RUNS[:2])
    assert result.columns == FIELD_NAMES
    first = dict(zip(result.columns, result.rows[0], strict=True))
    assert first["parallel_tool_calls"] is True and first["metadata"] == '{"team":"a"}'
    assert first["usage"] == '{"total_tokens":10}' and first["tools"] == "[]"
    assert first["cancelled_at"] is None and first["temperature"] == 0.2
    negated = rows("SELECT parallel_tool_calls AS p, NOT parallel_tool_calls FROM runs "
                   "WHERE thread_id = 't' AND id = 'run_2'")
    assert negated == [(False, 1)]  # a field stays boolean, an expression is SQLite's 0/1


def test_aliases_and_qualified_columns() -> None:
    assert rows("SELECT r.id AS ident FROM openai.assistants.runs AS r WHERE r.thread_id = 't' "
                "AND r.status = 'failed' ORDER BY ident") == [("run_3",)]
    assert rows("SELECT runs.id FROM runs WHERE runs.thread_id = 't' AND runs.run_id = 'run_4'"
                ) == [("run_4",)]


# -- required parameters, found in the WHERE whatever its shape -------------------------------


@pytest.mark.parametrize(("where", "threads", "runs"), [
    ("thread_id = 'a'", ("a",), None),
    ("'a' = thread_id AND status = 'x'", ("a",), None),
    ("thread_id IN ('a', 'b', 'a')", ("a", "b"), None),
    ("thread_id = 'a' OR thread_id = 'b'", ("a", "b"), None),
    ("(thread_id = 'a' AND status = 'x') OR (thread_id = 'b')", ("a", "b"), None),
    ("thread_id IN ('a', 'b') AND thread_id = 'b'", ("b",), None),
    ("thread_id = 'a' AND thread_id = 'b'", (), None),
    ("thread_id = 'a' AND run_id = 'r'", ("a",), ("r",)),
    ("run_id IN ('r', 's') AND (thread_id = 'a')", ("a",), ("r", "s")),
    ("thread_id IN ('a', 'b') AND run_id = 'r'", ("a", "b"), None),  # listed, then filtered
])
def test_required_parameters_from_any_where(where: str, threads: tuple[str, ...],
                                            runs: tuple[str, ...] | None) -> None:
    statement = parse(f"SELECT id FROM runs WHERE {where}")
    assert isinstance(statement, Select)
    assert (statement.thread_ids, statement.run_ids) == (threads, runs)


def test_select_loads_only_the_columns_it_reads() -> None:
    statement = parse("SELECT status, COUNT(*) FROM runs WHERE thread_id = 't' "
                      "AND json_extract(metadata, '$.a') = 'x' GROUP BY status")
    assert isinstance(statement, Select)
    assert statement.fields == ("metadata", "status", "thread_id")


# -- writes and EXEC: the one request each makes ----------------------------------------------


def test_insert_select_form_parses_json_columns() -> None:
    statement = parse(
        "INSERT /*+ AWAIT */ INTO openai.assistants.runs (thread_id, data__assistant_id, "
        "data__model, data__tools, data__metadata, data__temperature, data__max_prompt_tokens,"
        " data__parallel_tool_calls, data__tool_choice, data__truncation_strategy, top_p) "
        "SELECT 'thread_a', 'asst_demo', 'gpt-4o', "
        "'[{\"type\": \"function\", \"function\": {\"name\": \"f\"}}]', '{\"team\": \"a\"}', "
        "'0.5', 1000, 'false', 'auto', '{\"type\": \"last_messages\", \"last_messages\": 3}', 1e-1;"
    )
    assert isinstance(statement, Insert) and statement.thread_id == "thread_a"
    assert statement.body_dict() == {
        "assistant_id": "asst_demo", "model": "gpt-4o",
        "tools": [{"type": "function", "function": {"name": "f"}}],
        "metadata": {"team": "a"}, "temperature": 0.5, "max_prompt_tokens": 1000,
        "parallel_tool_calls": False, "tool_choice": "auto",
        "truncation_strategy": {"type": "last_messages", "last_messages": 3}, "top_p": 0.1,
    }


def test_insert_values_form_and_object_tool_choice() -> None:
    statement = parse(
        "insert into runs (thread_id, data__assistant_id, data__tool_choice, data__temperature)"
        " values ('t', 'asst_demo', '{\"type\": \"function\", \"function\": {\"name\": \"f\"}}',"
        " -0.5)"
    )
    assert isinstance(statement, Insert)
    assert statement.body_dict() == {"assistant_id": "asst_demo", "temperature": -0.5,
                                     "tool_choice": {"type": "function",
                                                     "function": {"name": "f"}}}


def test_update_metadata() -> None:
    assert parse("UPDATE openai.assistants.runs SET data__metadata = '{\"k\": \"v\"}' "
                 "WHERE (run_id = 'run_1') AND thread_id = 't';") == Update("t", "run_1",
                                                                           (("k", "v"),))


def test_exec_every_method_by_every_name() -> None:
    body = "{\"tool_outputs\": [{\"tool_call_id\": \"call_1\", \"output\": \"it''s ok\"}]}"
    submit = SubmitToolOutputs("t", "r", ((("tool_call_id", "call_1"), ("output", "it's ok")),))
    for method in ("submit_tool_ouputs_to_run", "submit_tool_outputs_to_run",
                   "submit_tool_outputs"):
        assert parse(f"exec openai.assistants.runs.{method} @thread_id='t', @run_id='r' "
                     f"@@json='{body}'") == submit
    for method in ("cancel_run", "cancel", "CANCEL"):
        assert parse(f"EXEC /*+ AWAIT */ runs.{method} @thread_id='t', @run_id='r';") == \
            CancelRun("t", "r")
    for method in ("get_run", "get"):
        got = parse(f"EXEC openai.assistants.runs.{method} @thread_id = 't', @run_id = 'r'")
        assert isinstance(got, Select) and (got.thread_ids, got.run_ids) == (("t",), ("r",))
    for method in ("list_runs", "list"):
        got = parse(f"EXEC assistants.runs.{method} @thread_id = 't'")
        assert isinstance(got, Select) and (got.thread_ids, got.run_ids) == (("t",), None)
    for method in ("create_run", "create"):
        assert parse(f"EXEC runs.{method} @thread_id = 't' @@json = '{{\"assistant_id\": "
                     f"\"a\", \"temperature\": 0.5}}'") == Insert(
            "t", (("assistant_id", "a"), ("temperature", 0.5)))
    assert parse("EXEC runs.create @thread_id = 't', @data__assistant_id = 'a'") == Insert(
        "t", (("assistant_id", "a"),))
    for method in ("modify_run", "update"):
        assert parse(f"EXEC runs.{method} @thread_id='t' @run_id='r' "
                     f"@@json='{{\"metadata\": {{\"k\": \"v\"}}}}'") == Update(
            "t", "r", (("k", "v"),))


def test_describe_show_and_scripts() -> None:
    assert parse("DESCRIBE openai.assistants.runs") == Describe(extended=False)
    assert parse("describe extended runs;") == Describe(extended=True)
    assert parse("DESC openai.assistants.runs") == Describe(extended=False)
    assert parse("SHOW METHODS IN openai.assistants.runs;") == ShowMethods()
    assert parse("SHOW EXTENDED METHODS IN runs LIKE '%run%'") == ShowMethods(True, "%run%")
    assert parse("SHOW EXTENDED RESOURCES IN openai.assistants") == ShowResources(True)
    script = parse_script("-- two statements\nDESCRIBE runs;\n\nSHOW METHODS IN runs;\n;")
    assert script == (Describe(), ShowMethods())


def test_comments_quotes_and_newlines() -> None:
    statement = parse("-- which runs?\nSELECT id -- the id\n  FROM runs\n"
                      "WHERE thread_id = 't' AND instructions = 'it''s -- not a comment'")
    assert isinstance(statement, Select)
    assert "it''s -- not a comment" in statement.sql


# -- errors: one sentence, located ------------------------------------------------------------

STACKQL_MISSING = ("cannot find matching operation, possible causes include missing required "
                   "parameters or an unsupported method for the resource, to find required "
                   "parameters for supported methods run SHOW METHODS IN "
                   "openai.assistants.runs: no appropriate method = 'select' for resource = "
                   "'runs'")


@pytest.mark.parametrize(("sql", "message"), [
    ("SELECT id FORM openai.assistants.runs",
     "line 1, column 11: syntax error near 'FORM': did you mean FROM?"),
    ("SELECT id\n  FROM runs\n WHERE thread_id = 't' ORDR BY id",
     "line 3, column 24: syntax error near 'ORDR': did you mean ORDER?"),
    ("SELECT id FROM runs WHERE (status = 'x'",
     "line 1, column 37: syntax error near 'x': expecting )"),
    ("SELECT id FROM runs WHERE thread_id = 'unterminated",
     "line 1, column 39: unterminated string: the closing ' is missing"),
    ("SELECT id FROM runs WHERE thread_id = 't' AND status ~ 'x'",
     "line 1, column 54: syntax error near '~'"),
    ("SELECT id FROM", "line 1, column 11: syntax error near 'FROM'"),
    ("DROP TABLE runs", "DROP statements are not supported"),
    ("SELEKT * FROM runs", "line 1, column 1: syntax error near 'SELEKT': did you mean SELECT?"),
    ("", "empty query"),
    ("SELECT id FROM runs WHERE status = 'x'", f"line 1, column 16: {STACKQL_MISSING}"),
    ("SELECT id FROM runs", "list_runs needs thread_id in the WHERE clause"),
    ("SELECT id FROM runs WHERE thread_id LIKE 't%'", STACKQL_MISSING),
    ("SELECT id FROM runs WHERE NOT thread_id = 't'", STACKQL_MISSING),
    ("SELECT id FROM runs WHERE thread_id = 't' OR status = 'x'", STACKQL_MISSING),
    ("SELECT id FROM runs WHERE thread_id = 5", "line 1, column 39: thread_id must be a quoted"),
    ("SELECT nope FROM runs WHERE thread_id = 't'",
     "line 1, column 8: unknown column 'nope' of openai.assistants.runs (DESCRIBE"),
    ("SELECT id FROM runs WHERE thread_id = 't'\n  AND stauts = 'x'",
     "line 2, column 7: unknown column 'stauts' of openai.assistants.runs (did you mean "
     "'status'?)"),
    ("SELECT id FROM runs WHERE thread_id = 't' AND status = \"failed\"",
     "unknown column 'failed' of openai.assistants.runs (strings take single quotes: 'failed')"),
    ("SELECT run_id FROM runs WHERE thread_id = 't'", "run_id is a parameter"),
    ("SELECT x.id FROM runs WHERE thread_id = 't'", "line 1, column 8: unknown table 'x'"),
    ("SELECT id FROM openai.assistants.threads WHERE thread_id = 't'",
     "line 1, column 16: unknown resource 'openai.assistants.threads': StackQL's openai "
     "provider has it, but reconciler serves only openai.assistants.runs"),
    ("SELECT id FROM openai.assistant.runs WHERE thread_id = 't'",
     "unknown resource 'openai.assistant.runs' (did you mean 'openai.assistants.runs'?)"),
    ("SELECT id FROM runs WHERE thread_id = 't' LIMIT -1", "LIMIT takes a whole number"),
    ("SELECT id FROM runs WHERE thread_id = 't' LIMIT 1.5", "LIMIT takes a whole number"),
    ("SELECT nosuch(id) FROM runs WHERE thread_id = 't'", "no such function: NOSUCH"),
    ("SELECT id FROM runs, runs WHERE thread_id = 't'", "joins are not supported"),
    ("SELECT id FROM runs WHERE thread_id = 't' AND id IN (SELECT id FROM runs)",
     "line 1, column 61: subqueries are not supported"),
    ("SELECT id FROM runs WHERE thread_id = 't' UNION SELECT id FROM runs "
     "WHERE thread_id = 'u'", "UNION is not supported"),
    ("DELETE FROM openai.assistants.runs WHERE thread_id = 't'", "runs cannot be deleted"),
    ("REPLACE INTO runs (thread_id) SELECT 't'", "runs cannot be replaced"),
    ("INSERT INTO runs (thread_id, data__assistant_id) SELECT 't'",
     "INSERT names 2 column(s) but gives 1 value(s)"),
    ("INSERT INTO runs (thread_id, data__model) SELECT 't', 'gpt-4o'",
     "no appropriate method = 'insert' for resource = 'runs'; create_run needs"),
    ("INSERT INTO runs (thread_id, data__assistant_id, data__tools) SELECT 't', 'a', "
     "'[oops'", "line 1, column 80: data__tools is not valid JSON"),
    ("INSERT INTO runs (thread_id, data__assistant_id, data__tools) SELECT 't', 'a', '{}'",
     "data__tools must be a JSON array"),
    ("INSERT INTO runs (thread_id, data__assistant_id, data__temperature) SELECT 't', "
     "'a', 'hot'", "data__temperature must be a number, got 'hot'"),
    ("INSERT INTO runs (thread_id, data__assistant_id, status) SELECT 't', 'a', 'x'",
     "line 1, column 50: cannot insert column 'status'"),
    ("INSERT INTO runs (thread_id, data__assistant_id, data__stream) SELECT 't', 'a', true",
     "data__stream = true is not supported"),
    ("INSERT INTO runs (thread_id, data__assistant_id, data__metadata) SELECT 't', 'a', "
     "'{\"n\": 1}'", "metadata values must be strings"),
    ("INSERT INTO runs (thread_id, data__assistant_id) VALUES ('t', 'a'), ('t', 'b')",
     "INSERT creates one run"),
    ("INSERT INTO runs (thread_id, data__assistant_id) SELECT 't', lower('A')",
     "expected a value"),
    ("UPDATE runs SET data__model = 'x' WHERE thread_id = 't' AND run_id = 'r'",
     "line 1, column 17: cannot update 'data__model': only data__metadata"),
    ("UPDATE runs SET data__metadata = '{}' WHERE thread_id = 't'",
     "no appropriate method = 'update' for resource = 'runs'; modify_run needs"),
    ("UPDATE runs SET data__metadata = '{}' WHERE thread_id = 't' AND run_id = 'r' "
     "AND status = 'x'", "line 1, column 82: UPDATE takes only thread_id"),
    ("UPDATE runs SET data__metadata = 'x' WHERE thread_id = 't' AND run_id = 'r'",
     "data__metadata is not valid JSON"),
    ("EXEC openai.assistants.runs.delete_run @thread_id='t', @run_id='r'",
     "line 1, column 29: unknown method 'delete_run' of openai.assistants.runs"),
    ("EXEC openai.assistants.runs.cancel_run @thread_id='t'", "cancel_run requires @run_id"),
    ("EXEC openai.assistants.threads.cancel_run @thread_id='t'",
     "unknown resource 'openai.assistants.threads'"),
    ("EXEC runs.cancel_run @thread_id='t', @run_id='r', @@json='{}'",
     "unknown parameter @@json for cancel_run"),
    ("EXEC runs.cancel_run @thread_id='t', @thread_id='u', @run_id='r'",
     "parameter @thread_id is given twice"),
    ("EXEC runs.submit_tool_ouputs_to_run @thread_id='t', @run_id='r'",
     "submit_tool_ouputs_to_run requires @@json"),
    ("EXEC runs.submit_tool_ouputs_to_run @thread_id='t', @run_id='r' @@json='{\"x\": 1}'",
     "@@json must be an object with \"tool_outputs\""),
    ("EXEC runs.submit_tool_ouputs_to_run @thread_id='t', @run_id='r' "
     "@@json='{\"tool_outputs\": [{\"output\": \"x\"}]}'",
     "tool output 1 needs a string \"tool_call_id\""),
    ("EXEC runs.create @thread_id='t' @@json='{\"assistant\": \"a\"}'",
     "@@json has 'assistant', not a CreateRunRequest field (did you mean 'assistant_id'?)"),
    ("EXEC runs.update @thread_id='t' @run_id='r' @@json='{\"model\": \"x\"}'",
     "only the metadata of a run can change"),
    ("EXEC runs.cancel_run @thread_id", "expected '=' after @thread_id"),
    ("SHOW TABLES", "expected METHODS or RESOURCES after SHOW"),
    ("SHOW METHODS IN openai.assistants.messages", "unknown resource"),
    ("SHOW RESOURCES IN openai", "unknown service 'openai'"),
    ("SELECT id FROM runs WHERE thread_id = 't'; SELECT id FROM runs",
     "line 1, column 59: cannot find matching operation"),
    ("SELECT id FROM runs WHERE thread_id = 't'; DESCRIBE runs",
     "2 statements given where one is expected"),
])
def test_errors_are_query_errors_with_positions(sql: str, message: str) -> None:
    with pytest.raises(QueryError) as caught:
        parse(sql)
    assert message in str(caught.value)
    assert isinstance(caught.value, ReconcilerError)


def test_error_carries_line_and_column() -> None:
    with pytest.raises(QueryError) as caught:
        parse("SELECT id\n  FORM runs")
    assert (caught.value.line, caught.value.column) == (2, 3)
    assert str(caught.value) == "line 2, column 3: syntax error near 'FORM': did you mean FROM?"


VALID = [
    "SELECT id, json_extract(metadata, '$.k') AS k FROM runs WHERE thread_id = 't' "
    "AND status IN ('a', 'b') AND usage IS NOT NULL ORDER BY created_at DESC LIMIT 2;",
    "INSERT INTO runs (thread_id, data__assistant_id, data__tools) VALUES ('t', 'a', '[]');",
    "UPDATE runs SET data__metadata = '{\"k\": \"v\"}' WHERE thread_id = 't' AND run_id = 'r';",
    "EXEC runs.submit_tool_ouputs_to_run @thread_id='t', @run_id='r' "
    "@@json='{\"tool_outputs\": [{\"tool_call_id\": \"c\", \"output\": \"o\"}]}';",
    "SHOW EXTENDED METHODS IN openai.assistants.runs LIKE 'get%';",
]


@pytest.mark.parametrize("sql", VALID)
def test_any_prefix_parses_or_fails_with_a_query_error(sql: str) -> None:
    """Truncated input never escapes as anything but a QueryError (no traceback)."""
    for cut in range(len(sql)):
        try:
            parse(sql[:cut])
        except QueryError as exc:
            assert str(exc).startswith(("line ", "empty query"))


def test_every_example_in_the_docs_parses() -> None:
    text = (Path(__file__).parents[2] / "docs" / "query.md").read_text("utf-8")
    blocks = [b.split("```", 1)[0] for b in text.split("```sql\n")[1:]]
    statements = [s for block in blocks for s in parse_script(block)]
    assert len(statements) >= 20


# -- DESCRIBE / SHOW: equal to StackQL's page --------------------------------------------------


def test_describe_and_show_methods_equal_the_stackql_page() -> None:
    fields, methods = stackql_page_tables()
    extended = catalog_result(Describe(extended=True))
    plain = catalog_result(Describe())
    shown = catalog_result(ShowMethods())
    assert extended is not None and plain is not None and shown is not None
    assert extended.columns == ("name", "type", "description")
    assert list(extended.rows) == fields
    assert list(plain.rows) == [(name, kind) for name, kind, _ in fields]
    assert shown.columns == ("MethodName", "RequiredParams", "SQLVerb")
    assert list(shown.rows) == [(name, params, verb) for name, verb, params in methods]


def test_show_extended_methods_and_resources_with_like() -> None:
    shown = catalog_result(ShowMethods(extended=True, like="%RUN"))
    assert shown is not None
    assert shown.columns == ("MethodName", "RequiredParams", "SQLVerb", "description")
    assert [row[0] for row in shown.rows] == ["get_run", "create_run", "modify_run",
                                              "cancel_run", "submit_tool_ouputs_to_run"]
    assert shown.rows[0][3] == "Retrieves a run."
    resources = catalog_result(ShowResources())
    assert resources is not None and resources.columns == ("name", "id")
    assert ("runs", "openai.assistants.runs") in resources.rows
    assert [r[0] for r in resources.rows] == ["assistants", "messages", "run_steps", "runs",
                                              "threads"]
    only = catalog_result(ShowResources(extended=True, like="run_s%"))  # _ is any one
    assert only is not None and [r[:2] for r in only.rows] == [
        ("run_steps", "openai.assistants.run_steps")]
