"""``reconciler export`` and ``reconciler query`` through the CLI, against the emulator."""

from __future__ import annotations

import json

import pytest

from tests.e2e.harness import KEY, THREAD_A, THREAD_B, Api, Workspace

pytestmark = pytest.mark.e2e


def test_export_adopt_then_plan_shows_no_changes(env: object, ws: Workspace, api: Api) -> None:
    made = api.create(THREAD_A, {"assistant_id": "asst_demo", "temperature": 0.3,
                                 "metadata": {"team": "ops"}})
    out = ws.root / "adopted.yaml"

    exported = ws.cli("export", "--thread", THREAD_A, "--out", str(out), "--adopt",
                      "--auto-approve")

    assert exported.code == 0, exported.err
    assert "Adopted 1 run(s) into project 'e2e'" in exported.err
    assert "Wrote 1 run to" in exported.err
    assert KEY not in exported.out + exported.err + out.read_text()
    tagged = api.runs(THREAD_A)[0]
    assert tagged["id"] == made["id"]
    assert tagged["metadata"]["reconciler.project"] == "e2e"
    assert tagged["metadata"]["team"] == "ops"
    planned = ws.cli("plan", "--detailed-exitcode", str(out))
    assert planned.code == 0, planned.out + planned.err
    assert "No changes" in planned.out


def test_export_without_adopt_changes_nothing_and_says_so(
    env: object, ws: Workspace, api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ws.root)  # the project comes from ./reconciler.toml
    api.create(THREAD_B, {"assistant_id": "asst_demo"})
    before = api.runs(THREAD_B)

    exported = ws.cli("export", "--thread", THREAD_B)

    assert exported.code == 0, exported.err
    assert f"thread_id: {THREAD_B}" in exported.out
    assert "rerun with --adopt" in exported.err
    assert api.runs(THREAD_B) == before


def test_export_adopt_needs_confirmation_without_a_terminal(
    env: object, ws: Workspace, api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ws.root)
    api.create(THREAD_B, {"assistant_id": "asst_demo"})
    before = api.runs(THREAD_B)

    exported = ws.cli("export", "--thread", THREAD_B, "--adopt")

    assert exported.code == 1
    assert "export --adopt needs confirmation" in exported.err
    assert "pass --auto-approve to adopt without asking" in exported.err
    assert api.runs(THREAD_B) == before


def test_export_of_a_missing_thread_is_a_located_error(env: object, ws: Workspace) -> None:
    exported = ws.cli("export", "--project", "e2e", "--thread", "thread_nope")

    assert exported.code == 1
    assert "thread_nope" in exported.err
    assert "Traceback" not in exported.err


def test_export_needs_a_project(env: object, ws: Workspace, api: Api) -> None:
    api.create(THREAD_B, {"assistant_id": "asst_demo"})

    exported = ws.cli("export", "--thread", THREAD_B)  # cwd has no reconciler.toml

    assert exported.code == 1
    assert "--project NAME" in exported.err


def test_query_select_as_json_and_csv(env: object, ws: Workspace, api: Api) -> None:
    made = api.create(THREAD_A, {"assistant_id": "asst_demo", "metadata": {"team": "qa"}})
    sql = (f"SELECT id, json_extract(metadata, '$.team') AS team FROM openai.assistants.runs "
           f"WHERE thread_id = '{THREAD_A}'")

    as_json = ws.cli("query", sql, "--output", "json")
    as_csv = ws.cli("query", sql, "--output", "csv")

    assert as_json.code == 0, as_json.err
    assert json.loads(as_json.out) == [{"id": made["id"], "team": "qa"}]
    assert as_csv.out.splitlines() == ["id,team", f"{made['id']},qa"]


def test_query_update_reports_what_it_did(env: object, ws: Workspace, api: Api) -> None:
    made = api.create(THREAD_A, {"assistant_id": "asst_demo"})

    updated = ws.cli("query", f"UPDATE openai.assistants.runs SET data__metadata = "
                              f"'{{\"team\": \"x\"}}' WHERE thread_id = '{THREAD_A}' "
                              f"AND run_id = '{made['id']}'")

    assert updated.code == 0, updated.err
    assert f"updated the metadata of run {made['id']}" in updated.err
    assert api.runs(THREAD_A)[0]["metadata"] == {"team": "x"}


def test_query_bad_sql_fails_before_any_request(ws: Workspace,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")  # nothing listens there
    result = ws.cli("query", "SELEKT * FROM openai.assistants.runs")

    assert result.code == 1
    assert "Error:" in result.err
    assert "Traceback" not in result.err


def test_describe_needs_no_key_and_no_server(ws: Workspace,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)

    described = ws.cli("query", "DESCRIBE openai.assistants.runs", "--output", "json")

    assert described.code == 0, described.err
    names = [row["name"] for row in json.loads(described.out)]
    assert {"id", "status", "required_action", "metadata"} <= set(names)


def test_export_of_a_run_with_unechoed_fields_offers_to_re_record_it(
    env: object, ws: Workspace, api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ws.root)
    ws.write("runs.yaml", f"""\
        apiVersion: reconciler/v1
        kind: Runs
        runs:
          - name: brief
            thread_id: {THREAD_A}
            assistant_id: asst_demo
            additional_instructions: Be brief.
        """)
    assert ws.cli("apply", "--auto-approve", "runs.yaml").code == 0

    exported = ws.cli("export", "--thread", THREAD_A, "--out", "exported.yaml")

    assert exported.code == 0, exported.err
    assert "1 managed run recorded a spec the export cannot reproduce" in exported.err
    assert "not managed by project" not in exported.err
    assert "additional_instructions" in (ws.root / "exported.yaml").read_text()  # the comment
    replaced = ws.cli("plan", "--detailed-exitcode", "exported.yaml")
    assert replaced.code == 2  # without re-recording, the export plans a replacement

    adopted = ws.cli("export", "--thread", THREAD_A, "--out", "exported.yaml", "--adopt",
                     "--auto-approve")

    assert adopted.code == 0, adopted.err
    assert f"will re-record {THREAD_A}/brief" in adopted.err
    assert ws.cli("plan", "--detailed-exitcode", "exported.yaml").code == 0
    assert len(api.managed(THREAD_A, "brief")) == 1
