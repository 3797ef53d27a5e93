"""Run lifecycle in-process (httpx.ASGITransport, no lifespan events) with a fake clock."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from reconciler.emulator import RunTiming
from tests.emulator.support import FakeClock, SpecChecker, asgi_client, make_config

TIMING = RunTiming(queued=1.0, in_progress=2.0, cancelling=1.0, expires_after=600.0)
TOOL = {"type": "function", "function": {"name": "lookup", "parameters": {
    "type": "object", "properties": {"id": {"type": "string"}, "n": {"type": "integer"}}}}}
OTHER = {"type": "function", "function": {"name": "other"}}


def run(coro: Any) -> Any:
    return asyncio.run(coro)


async def setup(http: httpx.AsyncClient, **assistant: Any) -> tuple[str, str]:
    asst = (await http.post("/assistants", json={"model": "gpt-4o", **assistant})).json()
    thread = (await http.post("/threads")).json()
    return asst["id"], thread["id"]


async def status(http: httpx.AsyncClient, thread: str, run_id: str) -> dict[str, Any]:
    response = await http.get(f"/threads/{thread}/runs/{run_id}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_statuses_follow_the_clock(clock: FakeClock, spec_checker: SpecChecker) -> None:
    async def scenario() -> None:
        async with asgi_client(make_config(timing=TIMING, clock=clock), spec_checker) as http:
            asst, thread = await setup(http, instructions="Assistant says hi")
            created = (await http.post(f"/threads/{thread}/runs",
                                       json={"assistant_id": asst})).json()
            assert created["status"] == "queued"
            assert created["instructions"] == "Assistant says hi"
            assert created["expires_at"] == int(clock.now) + 600
            assert (await status(http, thread, created["id"]))["status"] == "queued"
            clock.advance(1.5)
            mid = await status(http, thread, created["id"])
            assert mid["status"] == "in_progress" and mid["started_at"] == int(clock.now - 0.5)
            assert mid["usage"] is None
            messages = (await http.get(f"/threads/{thread}/messages")).json()
            assert messages["data"] == []
            clock.advance(2)
            done = await status(http, thread, created["id"])
            assert done["status"] == "completed" and done["usage"]["total_tokens"] > 0
            messages = (await http.get(f"/threads/{thread}/messages")).json()["data"]
            assert [m["role"] for m in messages] == ["assistant"]
            assert messages[0]["run_id"] == created["id"]
            steps = (await http.get(f"/threads/{thread}/runs/{created['id']}/steps")).json()
            assert [s["type"] for s in steps["data"]] == ["message_creation"]
    run(scenario())


def test_tool_calls_parallel_and_single(clock: FakeClock, spec_checker: SpecChecker) -> None:
    async def scenario() -> None:
        config = make_config(timing=RunTiming.instant(), clock=clock)
        async with asgi_client(config, spec_checker) as http:
            asst, thread = await setup(http, tools=[TOOL, OTHER])
            first = (await http.post(f"/threads/{thread}/runs",
                                     json={"assistant_id": asst})).json()
            waiting = await status(http, thread, first["id"])
            calls = waiting["required_action"]["submit_tool_outputs"]["tool_calls"]
            assert [c["function"]["name"] for c in calls] == ["lookup", "other"]
            assert calls[0]["function"]["arguments"] == '{"id": "example", "n": 1}'
            partial = await http.post(
                f"/threads/{thread}/runs/{first['id']}/submit_tool_outputs",
                json={"tool_outputs": [{"tool_call_id": calls[0]["id"], "output": "1"}]})
            assert partial.status_code == 400
            assert partial.json()["error"]["param"] == "tool_outputs"
            answered = await http.post(
                f"/threads/{thread}/runs/{first['id']}/submit_tool_outputs",
                json={"tool_outputs": [{"tool_call_id": c["id"], "output": "ok"} for c in calls]})
            assert answered.json()["status"] == "queued"
            assert (await status(http, thread, first["id"]))["status"] == "completed"
            steps = (await http.get(f"/threads/{thread}/runs/{first['id']}/steps",
                                    params={"order": "asc"})).json()["data"]
            outputs = [c["function"]["output"] for c in steps[0]["step_details"]["tool_calls"]]
            assert outputs == ["ok", "ok"] and steps[0]["status"] == "completed"

            single = (await http.post(f"/threads/{thread}/runs", json={
                "assistant_id": asst, "parallel_tool_calls": False})).json()
            got = await status(http, thread, single["id"])
            assert len(got["required_action"]["submit_tool_outputs"]["tool_calls"]) == 1
            await http.post(f"/threads/{thread}/runs/{single['id']}/cancel")
            named = (await http.post(f"/threads/{thread}/runs", json={
                "assistant_id": asst,
                "tool_choice": {"type": "function", "function": {"name": "other"}}})).json()
            got = await status(http, thread, named["id"])
            names = [c["function"]["name"]
                     for c in got["required_action"]["submit_tool_outputs"]["tool_calls"]]
            assert names == ["other"]
            await http.post(f"/threads/{thread}/runs/{named['id']}/cancel")
            silent = (await http.post(f"/threads/{thread}/runs", json={
                "assistant_id": asst, "tool_choice": "none"})).json()
            assert (await status(http, thread, silent["id"]))["status"] == "completed"
    run(scenario())


def test_expiry_and_cancelling(clock: FakeClock, spec_checker: SpecChecker) -> None:
    async def scenario() -> None:
        async with asgi_client(make_config(timing=TIMING, clock=clock), spec_checker) as http:
            asst, thread = await setup(http, tools=[TOOL])
            first = (await http.post(f"/threads/{thread}/runs",
                                     json={"assistant_id": asst})).json()
            clock.advance(3)
            assert (await status(http, thread, first["id"]))["status"] == "requires_action"
            clock.advance(600)
            expired = await status(http, thread, first["id"])
            assert expired["status"] == "expired" and expired["required_action"] is None
            late = await http.post(f"/threads/{thread}/runs/{first['id']}/submit_tool_outputs",
                                   json={"tool_outputs": []})
            assert late.json()["error"]["message"] == (
                'Runs in status "expired" do not accept tool outputs.')

            second = (await http.post(f"/threads/{thread}/runs",
                                      json={"assistant_id": asst})).json()
            early = await http.post(f"/threads/{thread}/runs/{second['id']}/submit_tool_outputs",
                                    json={"tool_outputs": []})
            assert early.json()["error"]["message"] == (
                'Runs in status "queued" do not accept tool outputs.')
            cancelled = await http.post(f"/threads/{thread}/runs/{second['id']}/cancel")
            assert cancelled.json()["status"] == "cancelling"
            clock.advance(0.5)
            again = await http.post(f"/threads/{thread}/runs/{second['id']}/cancel")
            assert again.json()["error"]["message"] == (
                "Cannot cancel run with status 'cancelling'.")
            blocked = await http.post(f"/threads/{thread}/runs", json={"assistant_id": asst})
            assert blocked.status_code == 400
            clock.advance(0.5)
            final = await status(http, thread, second["id"])
            assert final["status"] == "cancelled" and final["cancelled_at"] is not None
            steps = (await http.get(f"/threads/{thread}/runs/{first['id']}/steps")).json()
            assert [s["status"] for s in steps["data"]] == ["expired"]
            ok = await http.post(f"/threads/{thread}/runs", json={"assistant_id": asst})
            assert ok.status_code == 200
    run(scenario())


def test_run_overrides_and_additional_messages(spec_checker: SpecChecker) -> None:
    async def scenario() -> None:
        async with asgi_client(make_config(), spec_checker) as http:
            asst, thread = await setup(http, instructions="base", temperature=0.5)
            created = (await http.post(f"/threads/{thread}/runs", json={
                "assistant_id": asst, "model": "gpt-4.1", "instructions": "override",
                "additional_messages": [{"role": "user", "content": "context"}],
                "max_prompt_tokens": 1000, "truncation_strategy": {"type": "last_messages",
                                                                   "last_messages": 3},
                "response_format": {"type": "json_object"}, "top_p": 0.5,
            })).json()
            assert created["model"] == "gpt-4.1" and created["instructions"] == "override"
            assert created["temperature"] == 0.5 and created["top_p"] == 0.5
            assert created["truncation_strategy"] == {"type": "last_messages", "last_messages": 3}
            texts = [m["content"][0]["text"]["value"] for m in
                     (await http.get(f"/threads/{thread}/messages",
                                     params={"order": "asc"})).json()["data"]]
            assert texts[0] == "context" and len(texts) == 2
            filtered = (await http.get(f"/threads/{thread}/messages",
                                       params={"run_id": created["id"]})).json()["data"]
            assert [m["role"] for m in filtered] == ["assistant"]
    run(scenario())


def test_in_process_app_needs_no_lifespan_and_refuses_bad_requests() -> None:
    async def scenario() -> None:
        async with asgi_client(make_config(), headers={}) as http:
            assert (await http.post("/threads")).status_code == 401
        async with asgi_client(make_config()) as http:
            bad_json = await http.post("/threads", content=b"{not json",
                                       headers={"content-type": "application/json"})
            assert bad_json.status_code == 400
            assert "could not parse the JSON body" in bad_json.json()["error"]["message"]
            bad_cursor = await http.get("/assistants", params={"after": "asst_unknown"})
            assert bad_cursor.status_code == 400 and bad_cursor.json()["error"]["param"] == (
                "after")
            stream = await http.post("/threads/runs", json={"assistant_id": "a", "stream": True})
            assert stream.status_code in {400, 404}
    run(scenario())


@pytest.mark.parametrize("order", ["asc", "desc"])
def test_before_and_after_cursors(order: str) -> None:
    async def scenario() -> None:
        async with asgi_client(make_config()) as http:
            ids = [(await http.post("/assistants", json={"model": "gpt-4o"})).json()["id"]
                   for _ in range(6)]
            listed = ids if order == "asc" else ids[::-1]
            page = (await http.get("/assistants", params={
                "order": order, "after": listed[1], "limit": 2})).json()
            assert [a["id"] for a in page["data"]] == listed[2:4] and page["has_more"]
            assert page["first_id"] == listed[2] and page["last_id"] == listed[3]
            page = (await http.get("/assistants", params={
                "order": order, "before": listed[4], "limit": 2})).json()
            assert [a["id"] for a in page["data"]] == listed[2:4] and page["has_more"]
            page = (await http.get("/assistants", params={
                "order": order, "after": listed[0], "before": listed[3]})).json()
            assert [a["id"] for a in page["data"]] == listed[1:3] and not page["has_more"]
            assert sorted(ids) == ids  # ids sort by creation
    run(scenario())
