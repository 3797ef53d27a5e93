"""``query`` end to end: SQL through the real client to the emulator over a loopback socket."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from reconciler.client import AssistantsClient, ClientSettings
from reconciler.emulator import BackgroundServer
from reconciler.errors import NotFoundError
from reconciler.query import QueryResult, execute, parse, render_result
from tests.e2e.harness import KEY, THREAD_A, THREAD_B, THREAD_C, Api

FUNCTION_TOOLS = '[{"type": "function", "function": {"name": "lookup_ticket"}}]'


def query(server: BackgroundServer, sql: str) -> QueryResult:
    async def go() -> QueryResult:
        settings = ClientSettings(base_url=server.base_url, api_key=KEY, max_retries=0)
        async with AssistantsClient(settings) as client:
            return await execute(client, parse(sql))

    return asyncio.run(go())


def as_dicts(result: QueryResult) -> list[dict[str, Any]]:
    return [dict(zip(result.columns, row, strict=True)) for row in result.rows]


def insert(server: BackgroundServer, thread: str, *, tools: str = "[]",
           team: str = "a") -> dict[str, Any]:
    result = query(server, f"""
        INSERT INTO openai.assistants.runs
            (thread_id, data__assistant_id, data__model, data__instructions, data__tools,
             data__metadata, data__temperature)
        SELECT '{thread}', 'asst_demo', 'gpt-4o', 'Say it''s done.', '{tools}',
               '{{"team": "{team}"}}', 0.5;
    """)
    assert len(result.rows) == 1 and "created run" in result.message
    return as_dicts(result)[0]


def test_insert_select_update(server: BackgroundServer, api: Api) -> None:
    created = insert(server, THREAD_A)
    live = api.runs(THREAD_A)
    assert [r["id"] for r in live] == [created["id"]]
    assert live[0]["instructions"] == "Say it's done."
    assert live[0]["temperature"] == 0.5 and live[0]["metadata"] == {"team": "a"}
    assert json.loads(created["metadata"]) == {"team": "a"}

    listed = query(server, f"select id, status, json_extract(metadata, '$.team') as team "
                           f"from runs where thread_id = '{THREAD_A}' and model like 'GPT%'")
    assert listed.columns == ("id", "status", "team")
    assert listed.rows == ((created["id"], live[0]["status"], "a"),)
    none = query(server, f"SELECT id FROM runs WHERE thread_id = '{THREAD_A}' "
                         "AND status = 'no-such-status'")
    assert none.rows == ()

    got = query(server, f"SELECT * FROM openai.assistants.runs WHERE thread_id = '{THREAD_A}' "
                        f"AND run_id = '{created['id']}'")
    row = as_dicts(got)[0]
    assert row["id"] == created["id"] and row["thread_id"] == THREAD_A
    assert row["assistant_id"] == "asst_demo" and row["object"] == "thread.run"

    updated = query(server, f"""UPDATE openai.assistants.runs
        SET data__metadata = '{{"team": "b", "env": "prod"}}'
        WHERE thread_id = '{THREAD_A}' AND run_id = '{created["id"]}';""")
    assert json.loads(as_dicts(updated)[0]["metadata"]) == {"team": "b", "env": "prod"}
    assert api.runs(THREAD_A)[0]["metadata"] == {"team": "b", "env": "prod"}

    text = render_result(got, "table")
    assert created["id"] in text and KEY not in text


def test_exec_cancel_and_submit_tool_outputs(server: BackgroundServer, api: Api) -> None:
    to_cancel = insert(server, THREAD_B, tools=FUNCTION_TOOLS)
    to_answer = insert(server, THREAD_C, tools=FUNCTION_TOOLS)
    assert api.runs(THREAD_B)[0]["status"] == "requires_action"
    waiting = api.runs(THREAD_C)[0]
    assert waiting["status"] == "requires_action"
    call_id = waiting["required_action"]["submit_tool_outputs"]["tool_calls"][0]["id"]

    calls = query(server, f"SELECT json_extract(required_action, "
                          f"'$.submit_tool_outputs.tool_calls[0].id') AS call FROM runs "
                          f"WHERE thread_id = '{THREAD_C}' AND required_action IS NOT NULL")
    assert calls.rows == ((call_id,),)

    cancelled = query(server, f"EXEC openai.assistants.runs.cancel_run "
                              f"@thread_id='{THREAD_B}', @run_id='{to_cancel['id']}';")
    assert as_dicts(cancelled)[0]["status"] in ("cancelling", "cancelled")
    assert api.runs(THREAD_B)[0]["status"] in ("cancelling", "cancelled")

    body = json.dumps({"tool_outputs": [{"tool_call_id": call_id, "output": "ticket open"}]})
    submitted = query(server, f"EXEC openai.assistants.runs.submit_tool_ouputs_to_run "
                              f"@thread_id='{THREAD_C}', @run_id='{to_answer['id']}' "
                              f"@@json='{body}';")
    assert "submitted 1 tool output" in submitted.message
    assert api.runs(THREAD_C)[0]["status"] != "requires_action"


def test_describe_and_show_methods_need_no_server(server: BackgroundServer) -> None:
    described = query(server, "DESCRIBE EXTENDED openai.assistants.runs")
    assert described.columns == ("name", "type", "description") and len(described.rows) == 27
    methods = query(server, "SHOW METHODS IN openai.assistants.runs")
    assert [row[0] for row in methods.rows][-1] == "submit_tool_ouputs_to_run"


def test_api_errors_are_typed(server: BackgroundServer) -> None:
    with pytest.raises(NotFoundError) as caught:
        query(server, f"SELECT id FROM runs WHERE thread_id = '{THREAD_A}' "
                      "AND run_id = 'run_missing'")
    assert KEY not in str(caught.value)
