"""``query`` writes and EXEC end to end: every method of StackQL's page reached through SQL,
under its StackQL name and the newer provider's, each checked against the raw HTTP API."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest

from reconciler.client import AssistantsClient, ClientSettings
from reconciler.emulator import BackgroundServer
from reconciler.query import QueryResult, execute, parse
from tests.e2e.harness import KEY, THREAD_A, THREAD_B, THREAD_C, Api
from tests.fixtures import stackql_page_tables

pytestmark = pytest.mark.e2e

FUNCTION = '[{"type": "function", "function": {"name": "lookup_ticket"}}]'
#: The client method each of the page's methods is: what a statement must end up calling.
CLIENT_METHOD = {"get_run": "get_run", "list_runs": "list_runs", "create_run": "create_run",
                 "modify_run": "modify_run", "cancel_run": "cancel_run",
                 "submit_tool_ouputs_to_run": "submit_tool_outputs"}


def run_sql(server: BackgroundServer, sql: str, called: list[str] | None = None) -> QueryResult:
    async def go() -> QueryResult:
        settings = ClientSettings(base_url=server.base_url, api_key=KEY, max_retries=0)
        async with AssistantsClient(settings) as client:
            if called is not None:
                for name in set(CLIENT_METHOD.values()):
                    setattr(client, name, _recording(getattr(client, name), name, called))
            return await execute(client, parse(sql))

    return asyncio.run(go())


def _recording(method: Callable[..., Any], name: str, called: list[str]) -> Callable[..., Any]:
    async def wrapper(*args: Any) -> Any:
        called.append(name)
        return await method(*args)

    return wrapper


def row(result: QueryResult) -> dict[str, Any]:
    assert len(result.rows) == 1
    return dict(zip(result.columns, result.rows[0], strict=True))


def new_thread(api: Api) -> str:
    response = api.http.post("threads", json={})
    response.raise_for_status()
    thread_id: str = response.json()["id"]
    return thread_id


def waiting_run(server: BackgroundServer, api: Api, thread: str) -> tuple[str, str]:
    """A run made by INSERT that calls a function: its id and the call id it waits on."""
    made = row(run_sql(server, f"INSERT INTO openai.assistants.runs (thread_id, "
                               f"data__assistant_id, data__tools) VALUES ('{thread}', "
                               f"'asst_demo', '{FUNCTION}')"))
    live = api.runs(thread)[0]
    assert live["id"] == made["id"] and live["status"] == "requires_action"
    return made["id"], live["required_action"]["submit_tool_outputs"]["tool_calls"][0]["id"]


def test_insert_values_and_select_forms_create_what_they_say(server: BackgroundServer,
                                                            api: Api) -> None:
    selected = row(run_sql(server, f"""
        INSERT /*+ AWAIT */ INTO openai.assistants.runs
            (thread_id, data__assistant_id, data__model, data__instructions, data__metadata,
             data__temperature, data__max_completion_tokens, data__parallel_tool_calls)
        SELECT '{THREAD_A}', 'asst_demo', 'gpt-4o-mini', 'Say it''s done.', '{{"team": "a"}}',
               '0.5', 512, false;"""))
    valued = row(run_sql(server, f"INSERT INTO runs (thread_id, data__assistant_id, top_p) "
                                 f"VALUES ('{THREAD_B}', 'asst_demo', 0.25)"))
    live_a, live_b = api.runs(THREAD_A), api.runs(THREAD_B)
    assert [r["id"] for r in live_a] == [selected["id"]]
    assert [r["id"] for r in live_b] == [valued["id"]]
    assert (live_a[0]["model"], live_a[0]["instructions"], live_a[0]["temperature"],
            live_a[0]["max_completion_tokens"], live_a[0]["parallel_tool_calls"],
            live_a[0]["metadata"]) == ("gpt-4o-mini", "Say it's done.", 0.5, 512, False,
                                       {"team": "a"})
    assert live_b[0]["top_p"] == 0.25 and live_b[0]["assistant_id"] == "asst_demo"
    assert json.loads(selected["metadata"]) == {"team": "a"}
    assert selected["parallel_tool_calls"] is False


def test_update_set_data_metadata(server: BackgroundServer, api: Api) -> None:
    made = api.create(THREAD_A, {"assistant_id": "asst_demo", "metadata": {"team": "a"}})
    result = run_sql(server, f"UPDATE openai.assistants.runs SET data__metadata = "
                             f"'{{\"team\": \"b\", \"env\": \"prod\"}}' WHERE run_id = "
                             f"'{made['id']}' AND thread_id = '{THREAD_A}'")
    assert json.loads(row(result)["metadata"]) == {"team": "b", "env": "prod"}
    assert api.runs(THREAD_A)[0]["metadata"] == {"team": "b", "env": "prod"}
    assert f"updated the metadata of run {made['id']}" in result.message


def test_exec_cancel_and_submit_tool_outputs_by_every_name(server: BackgroundServer,
                                                          api: Api) -> None:
    cancel_id, _ = waiting_run(server, api, THREAD_B)
    cancelled = run_sql(server, f"EXEC /*+ AWAIT */ openai.assistants.runs.cancel_run "
                                f"@thread_id='{THREAD_B}', @run_id='{cancel_id}';")
    assert row(cancelled)["status"] == "cancelling"
    assert api.runs(THREAD_B)[0]["status"] in ("cancelling", "cancelled")
    threads = [THREAD_C, new_thread(api), new_thread(api)]
    for thread, method in zip(threads, ("submit_tool_ouputs_to_run",
                                        "submit_tool_outputs_to_run", "submit_tool_outputs"),
                              strict=True):
        run_id, call_id = waiting_run(server, api, thread)
        body = json.dumps({"tool_outputs": [{"tool_call_id": call_id, "output": "open"}]})
        submitted = run_sql(server, f"EXEC openai.assistants.runs.{method} @thread_id = "
                                    f"'{thread}', @run_id = '{run_id}' @@json = '{body}'")
        assert "submitted 1 tool output to run" in submitted.message
        assert api.runs(thread)[0]["status"] == "completed", method
        steps = api.http.get(f"threads/{thread}/runs/{run_id}/steps").json()["data"]
        outputs = [call["function"]["output"] for step in steps
                   if step["step_details"]["type"] == "tool_calls"
                   for call in step["step_details"]["tool_calls"]]
        assert outputs == ["open"], method
    alias = new_thread(api)
    run_id, _ = waiting_run(server, api, alias)
    run_sql(server, f"EXEC openai.assistants.runs.cancel @thread_id='{alias}', "
                    f"@run_id='{run_id}'")
    assert api.runs(alias)[0]["status"] in ("cancelling", "cancelled")


def test_exec_reaches_the_select_insert_and_update_methods_too(server: BackgroundServer,
                                                              api: Api) -> None:
    created = row(run_sql(server, f"EXEC openai.assistants.runs.create @thread_id = "
                                  f"'{THREAD_A}' @@json = '{{\"assistant_id\": \"asst_demo\", "
                                  f"\"metadata\": {{\"via\": \"exec\"}}}}'"))
    live = api.runs(THREAD_A)
    assert [r["id"] for r in live] == [created["id"]] and live[0]["metadata"] == {"via": "exec"}
    run_sql(server, f"EXEC openai.assistants.runs.update @thread_id = '{THREAD_A}', "
                    f"@run_id = '{created['id']}' @@json = '{{\"metadata\": {{\"via\": "
                    f"\"update\"}}}}'")
    assert api.runs(THREAD_A)[0]["metadata"] == {"via": "update"}
    got = row(run_sql(server, f"EXEC openai.assistants.runs.get @thread_id = '{THREAD_A}', "
                              f"@run_id = '{created['id']}'"))
    assert got["id"] == created["id"] and json.loads(got["metadata"]) == {"via": "update"}
    listed = run_sql(server, f"EXEC openai.assistants.runs.list_runs @thread_id='{THREAD_A}'")
    assert [r[0] for r in listed.rows] == [r["id"] for r in api.runs(THREAD_A)]


def test_each_method_of_the_stackql_page_is_reached_through_sql(server: BackgroundServer,
                                                               api: Api) -> None:
    """One statement per method of the page (its Methods table, read from the page), under
    the SQL verb the page gives it; each calls exactly that API operation."""
    _, methods = stackql_page_tables()
    to_cancel, _ = waiting_run(server, api, THREAD_C)
    to_answer, call_id = waiting_run(server, api, answered := new_thread(api))
    done = api.create(THREAD_A, {"assistant_id": "asst_demo"})
    outputs = json.dumps({"tool_outputs": [{"tool_call_id": call_id, "output": "x"}]})
    statements = {
        "get_run": f"SELECT id FROM openai.assistants.runs WHERE thread_id = '{THREAD_A}' "
                   f"AND run_id = '{done['id']}'",
        "list_runs": f"SELECT id FROM openai.assistants.runs WHERE thread_id = '{THREAD_A}'",
        "create_run": f"INSERT INTO openai.assistants.runs (thread_id, data__assistant_id) "
                      f"SELECT '{THREAD_B}', 'asst_demo'",
        "modify_run": f"UPDATE openai.assistants.runs SET data__metadata = '{{\"k\": \"v\"}}' "
                      f"WHERE thread_id = '{THREAD_A}' AND run_id = '{done['id']}'",
        "cancel_run": f"EXEC openai.assistants.runs.cancel_run @thread_id = '{THREAD_C}', "
                      f"@run_id = '{to_cancel}'",
        "submit_tool_ouputs_to_run": f"EXEC openai.assistants.runs.submit_tool_ouputs_to_run "
                                     f"@thread_id = '{answered}', @run_id = '{to_answer}' "
                                     f"@@json = '{outputs}'",
    }
    assert sorted(statements) == sorted(name for name, _, _ in methods)
    reached = []
    for name, verb, _ in methods:
        sql = statements[name]
        assert sql.split()[0] == verb
        called: list[str] = []
        run_sql(server, sql, called)
        # an UPDATE reads the run first, to keep its reserved reconciler.* keys
        assert called == ["get_run"] * (name == "modify_run") + [CLIENT_METHOD[name]], name
        reached.append(name)
    assert reached == [name for name, _, _ in methods]
    assert api.runs(THREAD_A)[0]["metadata"] == {"k": "v"}
    assert len(api.runs(THREAD_B)) == 1
    assert api.runs(THREAD_C)[0]["status"] in ("cancelling", "cancelled")
    assert api.runs(answered)[0]["status"] == "completed"
