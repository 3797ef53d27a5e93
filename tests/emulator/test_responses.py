"""Every answer the emulator gives validates against the reference spec's response schemas.

Plain HTTP over a loopback socket, so what is checked is exactly what the emulator sent: the
200 body of each of the 23 operations and an error of each (404 for a missing object, 400 for
a bad body), the errors in front of them (401, invalid beta, unknown URL, 429, injected 500),
and every event of the three streaming operations. ``validate_response`` is jsonschema over
the spec's components with ``$ref``s resolved and OpenAPI 3.0's ``nullable`` honoured; the
last tests show it rejecting what the spec forbids.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from reconciler.emulator import (
    BackgroundServer,
    find_operation,
    operations,
    parse_faults,
    parse_rate_limit,
    validate_response,
    validate_stream_event,
)
from tests.emulator.support import API_KEY, BETA, SpecChecker, make_config

FN: Any = {"type": "function", "function": {"name": "lookup",
                                            "parameters": {"type": "object"}}}


class Recorder:
    """Checks each response against the spec and notes which operation answered how."""

    def __init__(self) -> None:
        self.checker = SpecChecker()
        self.answered: set[tuple[str, int]] = set()

    def hook(self, response: httpx.Response) -> None:
        self.checker.hook(response)
        found = find_operation(response.request.method, response.request.url.path)
        if found is not None:
            self.answered.add((found[0].operation_id, response.status_code))


def walk_every_operation(http: httpx.Client) -> None:
    """Each operation once successfully, once with the error it is most likely to give."""
    asst = http.post("/assistants", json={"model": "gpt-4o", "tools": [FN]}).json()["id"]
    http.post("/assistants", json={"model": 4})
    http.get("/assistants")
    http.get("/assistants", params={"limit": 0})
    http.get(f"/assistants/{asst}")
    http.get("/assistants/asst_nope")
    http.post(f"/assistants/{asst}", json={"metadata": {"a": "b"}})
    http.post("/assistants/asst_nope", json={})
    thread = http.post("/threads", json={"messages": [{"role": "user", "content": [
        {"type": "text", "text": "see"},
        {"type": "image_url", "image_url": {"url": "https://example.com/a.png", "detail": "low"}},
        {"type": "image_file", "image_file": {"file_id": "file_1"}}]}]}).json()["id"]
    http.post("/threads", json={"messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": ""}}]}]})
    http.get(f"/threads/{thread}")
    http.get("/threads/thread_nope")
    http.post(f"/threads/{thread}", json={"metadata": {"k": "v"}})
    http.post(f"/threads/{thread}", content=b"")
    message = http.post(f"/threads/{thread}/messages",
                        json={"role": "user", "content": "more"}).json()["id"]
    http.post(f"/threads/{thread}/messages", json={"role": "robot", "content": "x"})
    http.get(f"/threads/{thread}/messages")
    http.get("/threads/thread_nope/messages")
    http.get(f"/threads/{thread}/messages/{message}")
    http.get(f"/threads/{thread}/messages/msg_nope")
    http.post(f"/threads/{thread}/messages/{message}", json={"metadata": {"m": "1"}})
    http.post(f"/threads/{thread}/messages/msg_nope", json={})
    run = http.post(f"/threads/{thread}/runs", json={"assistant_id": asst}).json()
    http.post(f"/threads/{thread}/runs", json={"assistant_id": asst})  # already active
    http.get(f"/threads/{thread}/runs")
    http.get(f"/threads/{thread}/runs", params={"order": "sideways"})
    http.get(f"/threads/{thread}/runs/{run['id']}")
    http.get(f"/threads/{thread}/runs/run_nope")
    http.post(f"/threads/{thread}/runs/{run['id']}", json={"metadata": {"r": "1"}})
    http.post(f"/threads/{thread}/runs/run_nope", json={})
    calls = http.get(f"/threads/{thread}/runs/{run['id']}").json()[
        "required_action"]["submit_tool_outputs"]["tool_calls"]
    http.post(f"/threads/{thread}/runs/{run['id']}/submit_tool_outputs",
              json={"tool_outputs": [{"tool_call_id": "call_wrong", "output": "o"}]})
    http.post(f"/threads/{thread}/runs/{run['id']}/submit_tool_outputs",
              json={"tool_outputs": [{"tool_call_id": calls[0]["id"], "output": "o"}]})
    http.get(f"/threads/{thread}/runs/{run['id']}/steps")
    http.get(f"/threads/{thread}/runs/run_nope/steps")
    step = http.get(f"/threads/{thread}/runs/{run['id']}/steps").json()["data"][0]["id"]
    http.get(f"/threads/{thread}/runs/{run['id']}/steps/{step}")
    http.get(f"/threads/{thread}/runs/{run['id']}/steps/step_nope")
    http.post(f"/threads/{thread}/runs/{run['id']}/cancel")  # completed: 400
    late = http.post(f"/threads/{thread}/runs", json={"assistant_id": asst}).json()
    http.post(f"/threads/{thread}/runs/{late['id']}/cancel")
    http.post("/threads/runs", json={"assistant_id": asst, "tool_choice": "none"})
    http.post("/threads/runs", json={"assistant_id": "asst_nope"})
    walk_the_streams(http, asst)
    http.delete(f"/threads/{thread}/messages/{message}")
    http.delete(f"/threads/{thread}/messages/msg_nope")
    http.delete(f"/threads/{thread}")
    http.delete("/threads/thread_nope")
    http.delete(f"/assistants/{asst}")
    http.delete(f"/assistants/{asst}")


def walk_the_streams(http: httpx.Client, asst: str) -> None:
    """The three streaming operations, each to its end, through every kind of ending."""
    for marker in ("", "[emulator:fail]", "[emulator:incomplete]"):
        thread = http.post("/threads").json()["id"]
        http.post(f"/threads/{thread}/runs", json={
            "assistant_id": asst, "tools": [], "additional_instructions": marker,
            "stream": True})
    thread = http.post("/threads").json()["id"]
    http.post(f"/threads/{thread}/runs", json={"assistant_id": asst, "stream": True})
    run = http.get(f"/threads/{thread}/runs").json()["data"][0]
    call = run["required_action"]["submit_tool_outputs"]["tool_calls"][0]["id"]
    http.post(f"/threads/{thread}/runs/{run['id']}/submit_tool_outputs", json={
        "tool_outputs": [{"tool_call_id": call, "output": "o"}], "stream": True})
    http.post("/threads/runs", json={"assistant_id": asst, "tools": [], "stream": True})


def test_every_answer_of_every_operation_validates() -> None:
    recorder = Recorder()
    with BackgroundServer(make_config()) as srv, httpx.Client(
        base_url=srv.base_url, headers=BETA, event_hooks={"response": [recorder.hook]},
        timeout=10,
    ) as http:
        walk_every_operation(http)
    assert recorder.checker.problems == []
    every = {op.operation_id for op in operations()}
    assert {op for op, status in recorder.answered if status == 200} == every
    assert {op for op, status in recorder.answered if status in {400, 404}} == every
    names = {name for stream in recorder.checker.streams for name, _ in stream}
    assert {"thread.created", "thread.run.requires_action", "thread.run.failed",
            "thread.run.incomplete", "thread.message.incomplete", "thread.run.step.delta",
            "thread.message.delta", "done"} <= names
    assert len(recorder.checker.streams) == 6


def test_errors_in_front_of_the_operations_validate() -> None:
    config = make_config(rate_limit=parse_rate_limit("4/m"),
                         faults=parse_faults("500=1*1@getThread"))
    recorder = Recorder()
    with BackgroundServer(config) as srv, httpx.Client(
        base_url=srv.base_url, event_hooks={"response": [recorder.hook]}, timeout=10,
    ) as http:
        key = {"Authorization": f"Bearer {API_KEY}"}
        assert http.post("/threads", headers={"OpenAI-Beta": "assistants=v2"}).status_code == 401
        assert http.post("/threads", headers=key).status_code == 400  # no beta header
        thread = http.post("/threads", headers=BETA).json()["id"]
        assert http.get(f"/threads/{thread}", headers=BETA).status_code == 500
        assert http.get(f"/threads/{thread}", headers=BETA).status_code == 429
    assert recorder.checker.problems == []
    assert recorder.checker.seen == 5


def test_nullable_follows_openapi_3_0() -> None:
    run: dict[str, Any] = {
        "id": "run_1", "object": "thread.run", "created_at": 1, "thread_id": "t",
        "assistant_id": "a", "status": "queued", "required_action": None, "last_error": None,
        "expires_at": None, "started_at": None, "cancelled_at": None, "failed_at": None,
        "completed_at": None, "model": "gpt-4o", "instructions": "", "tools": [],
        "metadata": {}, "usage": None, "incomplete_details": None, "max_prompt_tokens": None,
        "max_completion_tokens": None, "truncation_strategy": None, "tool_choice": None,
        "parallel_tool_calls": True, "response_format": None, "temperature": None,
        "top_p": None,
    }
    path = "/v1/threads/t/runs/run_1"
    # `allOf: [$ref, {nullable: true}]` and `$ref` beside `nullable: true` both admit null
    assert validate_response("GET", path, 200, run) == []
    # a field the spec does not mark nullable does not
    assert validate_response("GET", path, 200, {**run, "model": None}) != []
    assert validate_response("GET", path, 200, {**run, "status": None}) != []
    assert validate_response("GET", path, 200, {**run, "status": "paused"}) != []


@pytest.mark.parametrize("part", [
    {"type": "image_url", "image_url": {"url": ""}},
    {"type": "image_url", "image_url": {"url": "not a url"}},
    {"type": "image_url", "image_url": {"url": "https://e.com/a.png", "detail": "ultra"}},
    {"type": "text", "text": "a plain string where an object belongs"},
    {"type": "video"},
])
def test_a_message_breaking_the_content_one_of_is_reported(part: dict[str, Any]) -> None:
    message = {
        "id": "msg_1", "object": "thread.message", "created_at": 1, "thread_id": "t",
        "status": "completed", "incomplete_details": None, "completed_at": 1,
        "incomplete_at": None, "role": "user", "content": [part], "assistant_id": None,
        "run_id": None, "attachments": [], "metadata": {},
    }
    good = {**message, "content": [{"type": "text", "text": {"value": "v", "annotations": []}}]}
    assert validate_response("GET", "/v1/threads/t/messages/msg_1", 200, good) == []
    problems = validate_response("GET", "/v1/threads/t/messages/msg_1", 200, message)
    assert problems and "content/0" in problems[0]


def test_stream_events_are_checked_by_kind() -> None:
    assert validate_stream_event("done", "[DONE]") == []
    assert validate_stream_event("done", {}) != []
    assert validate_stream_event("thread.run.paused", {}) != []
    delta = {"id": "msg_1", "object": "thread.message.delta", "delta": {"content": [
        {"index": 0, "type": "text", "text": {"value": "Hi"}}]}}
    assert validate_stream_event("thread.message.delta", delta) == []
    assert validate_stream_event("thread.message.delta", {**delta, "delta": {"content": [
        {"type": "text"}]}}) != []  # no index
    error = {"code": "server_error", "message": "m", "param": None, "type": "server_error"}
    assert validate_stream_event("error", error) == []
    assert validate_stream_event("error", {"error": error}) != []
