"""``reconciler query`` through the CLI: scripts with ``--file``, the three output formats, the
catalog statements against StackQL's page, the errors, and the lock a writing script holds."""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from typing import Any

import pytest

from reconciler.lock import LocalLock, new_holder
from tests.e2e.harness import KEY, THREAD_A, THREAD_B, Api, Workspace
from tests.fixtures import stackql_page_tables

pytestmark = pytest.mark.e2e

NOWHERE = "http://127.0.0.1:9/v1"  # nothing listens there: a request would fail the test


def documents(text: str) -> list[Any]:
    """The JSON documents printed one after another (one per statement of a script)."""
    decoder, found, at = json.JSONDecoder(), [], 0
    while at < len(text.rstrip()):
        value, at = decoder.raw_decode(text, at)
        found.append(value)
        while at < len(text) and text[at].isspace():
            at += 1
    return found


def test_a_file_of_statements_runs_in_order_as_json(env: object, ws: Workspace,
                                                     api: Api) -> None:
    for team in ("a", "b", "a"):
        api.create(THREAD_A, {"assistant_id": "asst_demo", "metadata": {"team": team}})
    ws.write("checks.sql", f"""\
        -- runs per team, then a new run, then the catalog
        SELECT json_extract(metadata, '$.team') AS team, COUNT(*) AS n
        FROM openai.assistants.runs WHERE thread_id = '{THREAD_A}'
        GROUP BY team ORDER BY team;

        INSERT INTO openai.assistants.runs (thread_id, data__assistant_id)
        VALUES ('{THREAD_B}', 'asst_demo');
        SHOW RESOURCES IN openai.assistants;
        """)

    result = ws.cli("query", "--file", str(ws.root / "checks.sql"), "--output", "json")

    assert result.code == 0, result.err
    teams, created, resources = documents(result.out)
    counts = Counter(r["metadata"]["team"] for r in api.runs(THREAD_A))
    assert teams == [{"team": t, "n": n} for t, n in sorted(counts.items())]
    assert [created[0]["id"]] == [r["id"] for r in api.runs(THREAD_B)]
    assert f"created run {created[0]['id']} on {THREAD_B}" in result.err
    assert {"name": "runs", "id": "openai.assistants.runs"} in resources
    assert KEY not in result.out + result.err


def test_table_and_csv_outputs(env: object, ws: Workspace, api: Api) -> None:
    for body in ({"model": "gpt-4o"}, {"model": "o3-mini"}, {"model": "gpt-4o"}):
        api.create(THREAD_A, {"assistant_id": "asst_demo", **body})
    sql = (f"SELECT model, COUNT(*) AS n FROM openai.assistants.runs "
           f"WHERE thread_id = '{THREAD_A}' GROUP BY model ORDER BY n DESC, model")
    expected = sorted(Counter(r["model"] for r in api.runs(THREAD_A)).items(),
                      key=lambda item: (-item[1], item[0]))

    as_csv = ws.cli("query", sql, "--output", "csv")
    as_table = ws.cli("query", sql)

    assert as_csv.code == 0 and as_table.code == 0, as_csv.err + as_table.err
    assert list(csv.reader(io.StringIO(as_csv.out))) == [
        ["model", "n"], *([m, str(n)] for m, n in expected)]
    lines = as_table.out.splitlines()
    assert lines[0].startswith("+-") and lines[1].split() == ["|", "model", "|", "n", "|"]
    assert [line.split()[1::2] for line in lines[3:-1]] == [[m, str(n)] for m, n in expected]


def test_describe_and_show_answer_the_stackql_page_without_a_server(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", NOWHERE)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    fields, methods = stackql_page_tables()
    ws.write("catalog.sql", """\
        DESCRIBE EXTENDED openai.assistants.runs;
        DESC openai.assistants.runs;
        SHOW METHODS IN openai.assistants.runs;
        SHOW EXTENDED METHODS IN openai.assistants.runs;
        SHOW EXTENDED RESOURCES IN openai.assistants LIKE 'r%';
        """)

    result = ws.cli("query", "--file", str(ws.root / "catalog.sql"), "--output", "json")

    assert result.code == 0, result.err
    extended, plain, shown, shown_extended, resources = documents(result.out)
    assert extended == [{"name": n, "type": t, "description": d} for n, t, d in fields]
    assert plain == [{"name": n, "type": t} for n, t, _ in fields]
    assert shown == [{"MethodName": n, "RequiredParams": p, "SQLVerb": v}
                     for n, v, p in methods]
    assert [{k: m[k] for k in ("MethodName", "RequiredParams", "SQLVerb")}
            for m in shown_extended] == shown
    assert shown_extended[0]["description"] == "Retrieves a run."
    assert [r["id"] for r in resources] == ["openai.assistants.run_steps",
                                            "openai.assistants.runs"]


@pytest.mark.parametrize(("sql", "message"), [
    ("SELECT id, status FROM openai.assistants.runs WHERE status = 'failed'",
     "Error: line 1, column 24: cannot find matching operation, possible causes include "
     "missing required parameters or an unsupported method for the resource, to find "
     "required parameters for supported methods run SHOW METHODS IN openai.assistants.runs: "
     "no appropriate method = 'select' for resource = 'runs'; list_runs needs thread_id"),
    ("SELECT id, stauts FROM openai.assistants.runs WHERE thread_id = 'thread_x'",
     "Error: line 1, column 12: unknown column 'stauts' of openai.assistants.runs "
     "(did you mean 'status'?)"),
    ("SELECT id FROM openai.assistants.run WHERE thread_id = 'thread_x'",
     "Error: line 1, column 16: unknown resource 'openai.assistants.run' (did you mean "
     "'openai.assistants.runs'?)"),
    ("SELECT id\nFROM openai.assistants.runs\nWHERE thread_id = 'thread_x' AND (status = 'x'",
     "Error: line 3, column 44: syntax error near 'x': expecting )"),
    ("SELECT id FROM openai.assistants.runs WHERE thread_id = 'thread_x' GRUOP BY status",
     "Error: line 1, column 68: syntax error near 'GRUOP': did you mean GROUP?"),
])
def test_errors_are_one_located_sentence_before_any_request(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch, sql: str, message: str,
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", NOWHERE)
    monkeypatch.setenv("OPENAI_API_KEY", KEY)

    result = ws.cli("query", sql)

    assert result.code == 1
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(message), result.err
    assert result.out == ""


def test_an_error_in_a_file_names_the_file_and_nothing_runs(
    env: object, ws: Workspace, api: Api,
) -> None:
    script = ws.write("bad.sql", f"""\
        INSERT INTO openai.assistants.runs (thread_id, data__assistant_id)
        VALUES ('{THREAD_A}', 'asst_demo');
        SELECT nope FROM openai.assistants.runs WHERE thread_id = '{THREAD_A}';
        """)

    result = ws.cli("query", "--file", str(script))

    assert result.code == 1
    assert f"Error: {script}: line 3, column 8: unknown column 'nope'" in result.err
    assert api.runs(THREAD_A) == []  # the INSERT before it was not run either


def test_sql_and_file_are_one_or_the_other(ws: Workspace) -> None:
    neither = ws.cli("query")
    both = ws.cli("query", "DESCRIBE runs", "--file", "x.sql")
    missing = ws.cli("query", "--file", str(ws.root / "missing.sql"))

    assert neither.code == both.code == missing.code == 1
    assert "give the SQL as an argument or with --file FILE" in neither.err + both.err
    assert f"Error: cannot read {ws.root / 'missing.sql'}: No such file or directory" in \
        missing.err


def test_a_writing_script_holds_the_project_lock(
    env: object, ws: Workspace, api: Api, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(ws.root)  # the project comes from ./reconciler.toml
    api.create(THREAD_A, {"assistant_id": "asst_demo"})
    ws.write("write.sql", f"""\
        SELECT id FROM openai.assistants.runs WHERE thread_id = '{THREAD_A}';
        INSERT INTO openai.assistants.runs (thread_id, data__assistant_id)
        SELECT '{THREAD_B}', 'asst_demo';
        """)
    ws.write("read.sql", f"SELECT id FROM runs WHERE thread_id = '{THREAD_A}';\n"
                         "SHOW METHODS IN runs;\n")
    holder = new_holder("e2e", "reconciler apply . --auto-approve")
    with LocalLock(ws.root / ".reconciler", holder):
        refused = ws.cli("query", "--file", "write.sql")
        reads = ws.cli("query", "--file", "read.sql", "--output", "json")
    assert refused.code == 1 and "the project 'e2e' is locked by" in refused.err
    assert api.runs(THREAD_B) == []
    assert reads.code == 0, reads.err
    assert documents(reads.out)[0] == [{"id": r["id"]} for r in api.runs(THREAD_A)]
    allowed = ws.cli("query", "--file", "write.sql")
    assert allowed.code == 0, allowed.err
    assert len(api.runs(THREAD_B)) == 1
