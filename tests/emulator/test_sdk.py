"""The official openai SDK (strict response validation) against the emulator on a real socket.

Every one of the spec's 23 operations is called, lists are walked with auto-pagination, and
each documented error is checked by the SDK exception type and the message. The
``spec_checker`` fixture fails the test if any response body breaks the spec's schema.
"""

from __future__ import annotations

import re
from typing import Any

import httpx
import openai
import pytest
from openai import OpenAI

from reconciler.emulator import BackgroundServer, operations
from tests.emulator.support import API_KEY, SpecChecker, make_config, sdk_client

LOOKUP: Any = {
    "type": "function",
    "function": {
        "name": "lookup_ticket",
        "parameters": {"type": "object", "properties": {"id": {"type": "string"}}},
    },
}


def test_every_operation_of_the_spec(client: OpenAI, spec_checker: SpecChecker) -> None:
    called: set[str] = set()
    beta = client.beta

    assistant = beta.assistants.create(model="gpt-4o", name="Helper", instructions="Be brief.")
    called.add("createAssistant")
    assert beta.assistants.retrieve(assistant.id).name == "Helper"
    called.add("getAssistant")
    updated = beta.assistants.update(assistant.id, metadata={"team": "qa"}, tools=[LOOKUP])
    called.add("modifyAssistant")
    assert updated.metadata == {"team": "qa"} and updated.tools[0].type == "function"
    assert assistant.id in [a.id for a in beta.assistants.list()]
    called.add("listAssistants")

    thread = beta.threads.create(
        messages=[{"role": "user", "content": "hello"}], metadata={"k": "v"}
    )
    called.add("createThread")
    assert beta.threads.retrieve(thread.id).metadata == {"k": "v"}
    called.add("getThread")
    assert beta.threads.update(thread.id, metadata={"k": "w"}).metadata == {"k": "w"}
    called.add("modifyThread")

    message = beta.threads.messages.create(thread.id, role="user", content="second")
    called.add("createMessage")
    got = beta.threads.messages.retrieve(message.id, thread_id=thread.id)
    called.add("getMessage")
    assert got.content[0].type == "text" and got.content[0].text.value == "second"
    assert beta.threads.messages.update(
        message.id, thread_id=thread.id, metadata={"m": "1"}
    ).metadata == {"m": "1"}
    called.add("modifyMessage")
    texts = [
        m.content[0].text.value
        for m in beta.threads.messages.list(thread.id, order="asc")
        if m.content[0].type == "text"
    ]
    called.add("listMessages")
    assert texts == ["hello", "second"]

    run = beta.threads.runs.create(thread.id, assistant_id=assistant.id, metadata={"r": "1"})
    called.add("createRun")
    assert run.status == "queued" and run.model == "gpt-4o" and run.instructions == "Be brief."
    assert run.tools[0].type == "function"  # copied from the assistant
    run = beta.threads.runs.retrieve(run.id, thread_id=thread.id)
    called.add("getRun")
    assert run.status == "requires_action"
    assert run.required_action is not None
    calls = run.required_action.submit_tool_outputs.tool_calls
    assert [c.function.name for c in calls] == ["lookup_ticket"]
    assert calls[0].id.startswith("call_")
    assert beta.threads.runs.update(run.id, thread_id=thread.id, metadata={"r": "2"}).metadata == {
        "r": "2"
    }
    called.add("modifyRun")
    run = beta.threads.runs.submit_tool_outputs(
        run.id,
        thread_id=thread.id,
        tool_outputs=[{"tool_call_id": calls[0].id, "output": '{"status": "open"}'}],
    )
    called.add("submitToolOuputsToRun")
    assert run.status == "queued"
    run = beta.threads.runs.retrieve(run.id, thread_id=thread.id)
    assert run.status == "completed" and run.usage is not None and run.completed_at is not None
    assert [r.id for r in beta.threads.runs.list(thread.id)] == [run.id]
    called.add("listRuns")

    steps = list(beta.threads.runs.steps.list(run.id, thread_id=thread.id, order="asc"))
    called.add("listRunSteps")
    assert [s.type for s in steps] == ["tool_calls", "message_creation"]
    step = beta.threads.runs.steps.retrieve(steps[1].id, thread_id=thread.id, run_id=run.id)
    called.add("getRunStep")
    reply_id = step.step_details.message_creation.message_id  # type: ignore[union-attr]
    reply = beta.threads.messages.retrieve(reply_id, thread_id=thread.id)
    assert reply.role == "assistant" and reply.run_id == run.id

    second = beta.threads.runs.create(thread.id, assistant_id=assistant.id, tool_choice="none")
    assert beta.threads.runs.retrieve(second.id, thread_id=thread.id).status == "completed"
    third = beta.threads.runs.create(thread.id, assistant_id=assistant.id)
    assert beta.threads.runs.cancel(third.id, thread_id=thread.id).status == "cancelling"
    called.add("cancelRun")

    deleted = beta.threads.messages.delete(message.id, thread_id=thread.id)
    called.add("deleteMessage")
    assert deleted.deleted

    both = beta.threads.create_and_run(
        assistant_id=assistant.id,
        tool_choice="none",
        thread={"messages": [{"role": "user", "content": "x"}]},
    )
    called.add("createThreadAndRun")
    assert both.thread_id != thread.id
    assert beta.threads.runs.retrieve(both.id, thread_id=both.thread_id).status == "completed"

    assert beta.threads.delete(thread.id).deleted
    called.add("deleteThread")
    with pytest.raises(
        openai.NotFoundError, match=re.escape(f"No thread found with id '{thread.id}'.")
    ):
        beta.threads.retrieve(thread.id)
    assert beta.assistants.delete(assistant.id).deleted
    called.add("deleteAssistant")

    assert called == {op.operation_id for op in operations()}
    assert len(called) == 23
    assert spec_checker.seen > 25


def test_auto_pagination_walks_every_page(client: OpenAI) -> None:
    assistant = client.beta.assistants.create(model="gpt-4o")
    thread = client.beta.threads.create()
    created = [
        client.beta.threads.runs.create(thread.id, assistant_id=assistant.id).id for _ in range(7)
    ]
    page = client.beta.threads.runs.list(thread.id, limit=3, order="asc")
    assert page.has_more and len(page.data) == 3
    assert [r.id for r in page] == created  # iterating follows `after` through every page
    newest_first = [r.id for r in client.beta.threads.runs.list(thread.id, limit=2)]
    assert newest_first == created[::-1]
    before = client.beta.threads.runs.list(thread.id, limit=2, order="asc", before=created[4])
    assert [r.id for r in before.data] == created[2:4]
    for _ in range(4):
        client.beta.threads.messages.create(thread.id, role="user", content="m")
    assert len(list(client.beta.threads.messages.list(thread.id, limit=1))) == 4 + 7


def test_documented_errors(client: OpenAI) -> None:
    beta = client.beta
    assistant = beta.assistants.create(model="gpt-4o", tools=[LOOKUP])
    thread = beta.threads.create()
    run = beta.threads.runs.create(thread.id, assistant_id=assistant.id)

    with pytest.raises(
        openai.BadRequestError,
        match=re.escape(f"Thread {thread.id} already has an active run {run.id}."),
    ):
        beta.threads.runs.create(thread.id, assistant_id=assistant.id)
    with pytest.raises(
        openai.BadRequestError,
        match=re.escape(f"Can't add messages to {thread.id} while a run {run.id} is active."),
    ):
        beta.threads.messages.create(thread.id, role="user", content="late")
    with pytest.raises(openai.BadRequestError) as wrong_call:
        beta.threads.runs.submit_tool_outputs(
            run.id, thread_id=thread.id, tool_outputs=[{"tool_call_id": "call_x", "output": ""}]
        )
    assert wrong_call.value.param == "tool_outputs"

    cancelling = beta.threads.runs.cancel(run.id, thread_id=thread.id)
    assert cancelling.status == "cancelling"
    cancelled = beta.threads.runs.retrieve(run.id, thread_id=thread.id)
    assert cancelled.status == "cancelled" and cancelled.cancelled_at is not None
    with pytest.raises(
        openai.BadRequestError, match=re.escape("Cannot cancel run with status 'cancelled'.")
    ):
        beta.threads.runs.cancel(run.id, thread_id=thread.id)
    with pytest.raises(
        openai.BadRequestError,
        match=re.escape('Runs in status "cancelled" do not accept tool outputs.'),
    ):
        beta.threads.runs.submit_tool_outputs(
            run.id, thread_id=thread.id, tool_outputs=[{"tool_call_id": "c", "output": "o"}]
        )

    with pytest.raises(
        openai.NotFoundError, match=re.escape("No run found with id 'run_missing'.")
    ):
        beta.threads.runs.retrieve("run_missing", thread_id=thread.id)
    with pytest.raises(
        openai.NotFoundError, match=re.escape("No thread found with id 'thread_nope'.")
    ):
        beta.threads.runs.list("thread_nope")
    with pytest.raises(
        openai.NotFoundError, match=re.escape("No assistant found with id 'asst_nope'.")
    ):
        beta.threads.runs.create(thread.id, assistant_id="asst_nope")
    with pytest.raises(
        openai.NotFoundError, match=re.escape("No message found with id 'msg_nope'.")
    ):
        beta.threads.messages.retrieve("msg_nope", thread_id=thread.id)
    with pytest.raises(openai.NotFoundError, match=re.escape("No step found with id 'step_nope'.")):
        beta.threads.runs.steps.retrieve("step_nope", thread_id=thread.id, run_id=run.id)

    with pytest.raises(
        openai.BadRequestError, match=re.escape("Unrecognized request argument supplied: colour")
    ) as unknown:
        beta.threads.runs.create(thread.id, assistant_id=assistant.id, extra_body={"colour": 1})
    assert unknown.value.param == "colour"
    assert unknown.value.type == "invalid_request_error"
    with pytest.raises(
        openai.BadRequestError,
        match=re.escape(
            "Invalid type for 'temperature': expected a decimal, but got a string instead."
        ),
    ) as wrong_type:
        beta.threads.runs.create(thread.id, assistant_id=assistant.id, temperature="hot")  # type: ignore[call-overload]
    assert wrong_type.value.param == "temperature"
    with pytest.raises(
        openai.BadRequestError, match=re.escape("Expected a value <= 2, but got 3")
    ) as high:
        beta.threads.runs.create(thread.id, assistant_id=assistant.id, temperature=3)
    assert high.value.param == "temperature"
    with pytest.raises(openai.BadRequestError) as too_low:
        beta.threads.runs.list(thread.id, limit=0)
    assert too_low.value.param == "limit"
    with pytest.raises(openai.BadRequestError) as too_high:
        beta.threads.runs.list(thread.id, limit=101)
    assert too_high.value.param == "limit"


def test_beta_header_and_api_key(server: BackgroundServer, spec_checker: SpecChecker) -> None:
    client = sdk_client(server.base_url, spec_checker)
    with pytest.raises(
        openai.BadRequestError, match=re.escape("'OpenAI-Beta: assistants=v2'")
    ) as beta:
        client.beta.threads.create(extra_headers={"OpenAI-Beta": openai.Omit()})
    assert beta.value.code == "invalid_beta"

    wrong = sdk_client(server.base_url, spec_checker, api_key="sk-wrong")
    with pytest.raises(openai.AuthenticationError) as denied:
        wrong.beta.threads.create()
    assert denied.value.code == "invalid_api_key"
    assert API_KEY not in denied.value.response.text

    missing = httpx.post(f"{server.base_url}/threads", headers={"OpenAI-Beta": "assistants=v2"})
    assert missing.status_code == 401
    assert missing.json()["error"]["code"] == "invalid_api_key"
    assert API_KEY not in missing.text


def test_response_headers(server: BackgroundServer) -> None:
    with httpx.Client(base_url=server.base_url) as http:
        response = http.post(
            "/threads",
            headers={"OpenAI-Beta": "assistants=v2", "Authorization": f"Bearer {API_KEY}"},
        )
        other = http.get("/nowhere", headers={"Authorization": f"Bearer {API_KEY}"})
    assert response.status_code == 200
    for headers in (response.headers, other.headers):
        assert headers["x-request-id"].startswith("req_")
        assert int(headers["openai-processing-ms"]) >= 0
        assert headers["openai-version"] == "2020-10-01"
        for name in ("limit", "remaining", "reset"):
            assert f"x-ratelimit-{name}-requests" in headers
            assert f"x-ratelimit-{name}-tokens" in headers
    assert response.headers["x-request-id"] != other.headers["x-request-id"]
    assert other.status_code == 404
    assert other.json()["error"]["message"] == "Invalid URL (GET /v1/nowhere)"


def test_failure_markers_end_runs_failed_or_incomplete(client: OpenAI) -> None:
    assistant = client.beta.assistants.create(model="gpt-4o")
    thread = client.beta.threads.create()
    failed = client.beta.threads.runs.create(
        thread.id, assistant_id=assistant.id, additional_instructions="[emulator:fail]"
    )
    failed = client.beta.threads.runs.retrieve(failed.id, thread_id=thread.id)
    assert failed.status == "failed" and failed.failed_at is not None
    assert failed.last_error is not None and failed.last_error.code == "server_error"
    incomplete = client.beta.threads.runs.create(
        thread.id,
        assistant_id=assistant.id,
        max_completion_tokens=256,
        additional_instructions="please [emulator:incomplete] now",
    )
    incomplete = client.beta.threads.runs.retrieve(incomplete.id, thread_id=thread.id)
    assert incomplete.status == "incomplete"
    assert incomplete.incomplete_details is not None
    assert incomplete.incomplete_details.reason == "max_completion_tokens"


def test_sdk_poll_helper_finishes(spec_checker: SpecChecker) -> None:
    with BackgroundServer(make_config()) as srv:
        client = sdk_client(srv.base_url, spec_checker)
        assistant = client.beta.assistants.create(model="gpt-4o")
        thread = client.beta.threads.create()
        run = client.beta.threads.runs.create_and_poll(
            thread_id=thread.id, assistant_id=assistant.id
        )
        assert run.status == "completed"
