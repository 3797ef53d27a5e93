"""Streaming runs with the official SDK's helpers over a real loopback socket.

The event order, the run the stream ends with and what it leaves on the thread are checked
against what the emulator answers to ordinary reads afterwards; the ``spec_checker`` fixture
checks every event of every stream against the spec (``validate_stream_event``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

import httpx
import openai
import pytest
from openai import AssistantEventHandler, OpenAI
from openai.types.beta.threads import Message, Text, TextDelta

from reconciler.emulator import BackgroundServer, RunTiming, parse_faults, parse_rate_limit
from reconciler.emulator.config import Latency
from tests.emulator.support import FakeClock, SpecChecker, asgi_client, make_config, sdk_client

LOOKUP: Any = {
    "type": "function",
    "function": {"name": "lookup_ticket",
                 "parameters": {"type": "object", "properties": {"id": {"type": "string"}}}},
}
OPENING = ["thread.run.created", "thread.run.queued", "thread.run.in_progress"]
REPLY_START = ["thread.run.step.created", "thread.run.step.in_progress",
               "thread.message.created", "thread.message.in_progress"]
REPLY_END = ["thread.message.completed", "thread.run.step.completed", "thread.run.completed"]


def squeeze(names: Sequence[str]) -> list[str]:
    """Event names with each run of repeated deltas folded into one ``…delta*``."""
    out: list[str] = []
    for name in names:
        folded = name + "*" if name.endswith(".delta") else name
        if not out or out[-1] != folded or not folded.endswith("*"):
            out.append(folded)
    return out


def data(event: Any) -> Any:
    """An event's data, untyped: each test knows which kind of event it holds."""
    return event.data


class Recorder(AssistantEventHandler):
    """An event handler that keeps every event name and the text deltas."""

    def __init__(self) -> None:
        super().__init__()
        self.names: list[str] = []
        self.pieces: list[str] = []
        self.done_texts: list[str] = []

    def on_event(self, event: Any) -> None:
        self.names.append(event.event)

    def on_text_delta(self, delta: TextDelta, snapshot: Text) -> None:
        self.pieces.append(delta.value or "")

    def on_message_done(self, message: Message) -> None:
        block = message.content[0]
        assert block.type == "text"
        self.done_texts.append(block.text.value)


def test_runs_stream_with_an_event_handler(client: OpenAI, spec_checker: SpecChecker) -> None:
    assistant = client.beta.assistants.create(model="gpt-4o", instructions="Be brief.")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
    handler = Recorder()
    with client.beta.threads.runs.stream(thread_id=thread.id, assistant_id=assistant.id,
                                         event_handler=handler, metadata={"k": "v"}) as stream:
        stream.until_done()
        final = stream.get_final_run()
        messages = stream.get_final_messages()
        steps = stream.get_final_run_steps()

    assert squeeze(handler.names) == [*OPENING, *REPLY_START, "thread.message.delta*",
                                      *REPLY_END]
    assert len(handler.pieces) >= 3  # the reply arrives in several chunks
    stored = client.beta.threads.runs.retrieve(final.id, thread_id=thread.id)
    assert final.status == stored.status == "completed"
    assert final.to_dict() == stored.to_dict()
    assert final.metadata == {"k": "v"} and final.usage is not None

    reply = client.beta.threads.messages.list(thread.id, order="asc").data[-1]
    text = reply.content[0].text.value  # type: ignore[union-attr]
    assert "".join(handler.pieces) == text == handler.done_texts[0]
    assert [m.to_dict() for m in messages] == [reply.to_dict()]
    assert reply.run_id == final.id and reply.status == "completed"
    listed = list(client.beta.threads.runs.steps.list(final.id, thread_id=thread.id))
    # the SDK's step snapshots stop at step.created (+ deltas); the ids must be the stored ones
    assert [s.id for s in steps] == [s.id for s in listed] and len(listed) == 1
    completed = [data for name, data in spec_checker.streams[0]
                 if name == "thread.run.step.completed"]
    assert completed == [listed[0].to_dict()]
    assert listed[0].step_details.message_creation.message_id == reply.id  # type: ignore[union-attr]
    assert spec_checker.streams and spec_checker.streams[0][-1] == ("done", "[DONE]")


def test_create_stream_then_submit_tool_outputs_stream(client: OpenAI,
                                                       spec_checker: SpecChecker) -> None:
    assistant = client.beta.assistants.create(model="gpt-4o", tools=[LOOKUP])
    thread = client.beta.threads.create()
    events = list(client.beta.threads.runs.create(thread.id, assistant_id=assistant.id,
                                                  stream=True))
    names = [e.event for e in events]
    assert squeeze(names) == [*OPENING, "thread.run.step.created", "thread.run.step.in_progress",
                              "thread.run.step.delta*", "thread.run.requires_action"]
    assert spec_checker.streams[-1][-1] == ("done", "[DONE]")  # the stream ends there
    asked: Any = events[-1].data
    assert asked.status == "requires_action" and asked.required_action is not None
    call = asked.required_action.submit_tool_outputs.tool_calls[0]
    deltas: list[Any] = [data(e).delta.step_details for e in events
                         if e.event == "thread.run.step.delta"]
    arguments = "".join(d.tool_calls[0].function.arguments or "" for d in deltas)
    assert arguments == call.function.arguments
    assert client.beta.threads.runs.retrieve(asked.id, thread_id=thread.id).status == \
        "requires_action"

    handler = Recorder()
    with client.beta.threads.runs.submit_tool_outputs_stream(
        run_id=asked.id, thread_id=thread.id, event_handler=handler,
        tool_outputs=[{"tool_call_id": call.id, "output": '{"status": "open"}'}],
    ) as stream:
        stream.until_done()
        final = stream.get_final_run()
    assert squeeze(handler.names) == [
        "thread.run.step.completed", "thread.run.queued", "thread.run.in_progress",
        *REPLY_START, "thread.message.delta*", *REPLY_END]
    assert final.to_dict() == client.beta.threads.runs.retrieve(
        asked.id, thread_id=thread.id).to_dict()
    steps = list(client.beta.threads.runs.steps.list(asked.id, thread_id=thread.id, order="asc"))
    assert [s.type for s in steps] == ["tool_calls", "message_creation"]
    assert steps[0].step_details.tool_calls[0].function.output == '{"status": "open"}'  # type: ignore[union-attr]
    assert 'lookup_ticket returned {"status": "open"}' in handler.done_texts[0]


def test_create_and_run_stream(client: OpenAI) -> None:
    assistant = client.beta.assistants.create(model="gpt-4o")
    events = list(client.beta.threads.create_and_run(
        assistant_id=assistant.id, stream=True,
        thread={"messages": [{"role": "user", "content": "hello"}], "metadata": {"t": "1"}},
    ))
    names = [e.event for e in events]
    assert squeeze(names) == ["thread.created", *OPENING, *REPLY_START,
                              "thread.message.delta*", *REPLY_END]
    thread, final = data(events[0]), data(events[-1])
    assert client.beta.threads.retrieve(thread.id).to_dict() == thread.to_dict()
    texts = [m.content[0].text.value  # type: ignore[union-attr]
             for m in client.beta.threads.messages.list(thread.id, order="asc")]
    assert texts[0] == "hello" and final.id in texts[1]


@pytest.mark.parametrize(("marker", "tail"), [
    ("[emulator:fail]", ["thread.run.failed"]),
    ("[emulator:incomplete]", [*REPLY_START, "thread.message.delta*", "thread.message.incomplete",
                               "thread.run.step.completed", "thread.run.incomplete"]),
])
def test_stream_endings(client: OpenAI, marker: str, tail: list[str]) -> None:
    assistant = client.beta.assistants.create(model="gpt-4o")
    thread = client.beta.threads.create()
    events = list(client.beta.threads.runs.create(
        thread.id, assistant_id=assistant.id, additional_instructions=marker, stream=True))
    assert squeeze([e.event for e in events]) == [*OPENING, *tail]
    final = data(events[-1])
    assert final.to_dict() == client.beta.threads.runs.retrieve(
        final.id, thread_id=thread.id).to_dict()


def test_cancel_during_a_stream_ends_it_cancelled(spec_checker: SpecChecker) -> None:
    timing = RunTiming(queued=0.05, in_progress=8.0, cancelling=0.1)
    with BackgroundServer(make_config(timing=timing)) as srv:
        client = sdk_client(srv.base_url, spec_checker)
        assistant = client.beta.assistants.create(model="gpt-4o")
        thread = client.beta.threads.create()
        names: list[str] = []
        for event in client.beta.threads.runs.create(thread.id, assistant_id=assistant.id,
                                                     stream=True):
            names.append(event.event)
            if event.event == "thread.message.created":
                client.beta.threads.runs.cancel(data(event).run_id, thread_id=thread.id)
        assert names[-2:] == ["thread.run.cancelling", "thread.run.cancelled"]
        assert "thread.run.completed" not in names
        run = client.beta.threads.runs.list(thread.id).data[0]
        assert run.status == "cancelled"
        assert [m.role for m in client.beta.threads.messages.list(thread.id)] == []


def test_events_are_paced_by_the_run_timing(spec_checker: SpecChecker) -> None:
    """No event can arrive before the server sends it: lower bounds from the request's start
    show the pacing; the first event arriving long before the end shows it is not held back."""
    timing = RunTiming(queued=0.3, in_progress=1.2, cancelling=0.0)
    with BackgroundServer(make_config(timing=timing)) as srv:
        client = sdk_client(srv.base_url, spec_checker)
        assistant = client.beta.assistants.create(model="gpt-4o")
        thread = client.beta.threads.create()
        start = time.monotonic()
        arrived: dict[str, float] = {}
        deltas: list[float] = []
        for event in client.beta.threads.runs.create(thread.id, assistant_id=assistant.id,
                                                     stream=True):
            arrived.setdefault(event.event, time.monotonic() - start)
            if event.event == "thread.message.delta":
                deltas.append(time.monotonic() - start)
    assert arrived["thread.run.queued"] < 0.8
    assert arrived["thread.run.in_progress"] >= 0.29
    assert arrived["thread.run.completed"] >= 1.49
    spread = 1.2 * (len(deltas) - 1) / len(deltas)
    assert deltas[-1] >= 0.29 + spread - 0.02  # the words trickle in across the progress
    assert deltas[0] < deltas[-1] - 0.5


def test_a_seeded_fault_cuts_the_stream_midway(spec_checker: SpecChecker) -> None:
    def received(seed: int) -> tuple[int, str]:
        config = make_config(faults=parse_faults("cut=1*1@createRun"), seed=seed)
        with BackgroundServer(config) as srv:
            client = sdk_client(srv.base_url, spec_checker)
            assistant = client.beta.assistants.create(model="gpt-4o")
            thread = client.beta.threads.create()
            got: list[str] = []
            with pytest.raises(httpx.RemoteProtocolError):
                for event in client.beta.threads.runs.create(thread.id, assistant_id=assistant.id,
                                                             stream=True):
                    got.append(event.event)
            run = client.beta.threads.runs.list(thread.id).data[0]  # it was created: it runs on
            assert client.beta.threads.runs.retrieve(run.id, thread_id=thread.id).status == \
                "completed"
            again = list(client.beta.threads.runs.create(  # the rule fired once, as it said
                thread.id, assistant_id=assistant.id, stream=True))
            assert again[-1].event == "thread.run.completed"
            return len(got), run.id

    count, _ = received(seed=3)
    assert 1 <= count <= 5
    assert received(seed=3)[0] == count  # the same seed cuts at the same event


def test_a_stream_error_fault_sends_an_error_event(server: BackgroundServer,
                                                   spec_checker: SpecChecker) -> None:
    config = make_config(faults=parse_faults("stream_error=1*1"))
    with BackgroundServer(config) as srv:
        client = sdk_client(srv.base_url, spec_checker)
        assistant = client.beta.assistants.create(model="gpt-4o")
        thread = client.beta.threads.create()
        events = list(client.beta.threads.runs.create(thread.id, assistant_id=assistant.id,
                                                      stream=True))
    assert events[-1].event == "error"
    assert data(events[-1]).code == "server_error"
    assert data(events[-1]).message.startswith("The server had an error")
    assert 2 <= len(events) <= 6 and events[0].event == "thread.run.created"
    assert spec_checker.streams[-1][-1][0] == "error"  # no done after it


def test_rate_limit_and_latency_apply_to_streams(spec_checker: SpecChecker) -> None:
    config = make_config(rate_limit=parse_rate_limit("3/m"), latency=Latency("fixed", 0.3))
    with BackgroundServer(config) as srv:
        client = sdk_client(srv.base_url, spec_checker)
        assistant = client.beta.assistants.create(model="gpt-4o")
        thread = client.beta.threads.create()
        start = time.monotonic()
        stream = client.beta.threads.runs.create(thread.id, assistant_id=assistant.id,
                                                 stream=True)
        first = next(iter(stream))
        assert first.event == "thread.run.created"
        assert time.monotonic() - start >= 0.3
        stream.close()
        with pytest.raises(openai.RateLimitError) as limited:
            client.beta.threads.runs.create(thread.id, assistant_id=assistant.id, stream=True)
    assert limited.value.code == "rate_limit_exceeded"


def test_request_errors_come_before_the_stream_as_json(client: OpenAI) -> None:
    assistant = client.beta.assistants.create(model="gpt-4o", tools=[LOOKUP])
    thread = client.beta.threads.create()
    with pytest.raises(openai.BadRequestError, match="Expected a value <= 2"):
        client.beta.threads.runs.create(thread.id, assistant_id=assistant.id, temperature=3,
                                        stream=True)
    busy = client.beta.threads.runs.create(thread.id, assistant_id=assistant.id)
    with pytest.raises(openai.BadRequestError, match="already has an active run"):
        client.beta.threads.runs.create(thread.id, assistant_id=assistant.id, stream=True)
    client.beta.threads.runs.cancel(busy.id, thread_id=thread.id)
    with pytest.raises(openai.BadRequestError, match='Runs in status "cancelled"'), \
            client.beta.threads.runs.submit_tool_outputs_stream(
                run_id=busy.id, thread_id=thread.id,
                tool_outputs=[{"tool_call_id": "call_x", "output": "o"}]) as stream:
        stream.until_done()


def test_a_client_that_leaves_early_does_not_stop_the_run(client: OpenAI) -> None:
    assistant = client.beta.assistants.create(model="gpt-4o")
    thread = client.beta.threads.create()
    stream = client.beta.threads.runs.create(thread.id, assistant_id=assistant.id, stream=True)
    first = next(iter(stream))
    stream.close()
    run_id = data(first).id
    assert client.beta.threads.runs.retrieve(run_id, thread_id=thread.id).status == "completed"
    again = [e.event for e in client.beta.threads.runs.create(  # the next stream is whole
        thread.id, assistant_id=assistant.id, stream=True)]
    assert again[0] == "thread.run.created" and again[-1] == "thread.run.completed"


def test_a_stream_leaves_the_state_polling_leaves() -> None:
    """The same requests, streamed or not, on a fake clock and one seed: the same state."""

    async def scenario(stream: bool) -> dict[str, Any]:
        config = make_config(clock=FakeClock(), seed=5)
        async with asgi_client(config) as http:
            asst = (await http.post("/assistants", json={"model": "gpt-4o",
                                                         "tools": [LOOKUP]})).json()["id"]
            thread = (await http.post("/threads", json={"messages": [
                {"role": "user", "content": "hi"}]})).json()["id"]
            created = await http.post(f"/threads/{thread}/runs",
                                      json={"assistant_id": asst, "stream": stream})
            kind = created.headers["content-type"].split(";")[0]
            assert kind == ("text/event-stream" if stream else "application/json")
            run_id = (await http.get(f"/threads/{thread}/runs")).json()["data"][0]["id"]
            run = (await http.get(f"/threads/{thread}/runs/{run_id}")).json()
            calls = run["required_action"]["submit_tool_outputs"]["tool_calls"]
            await http.post(f"/threads/{thread}/runs/{run_id}/submit_tool_outputs", json={
                "tool_outputs": [{"tool_call_id": calls[0]["id"], "output": "42"}],
                "stream": stream})
            return {
                "run": (await http.get(f"/threads/{thread}/runs/{run_id}")).json(),
                "steps": (await http.get(f"/threads/{thread}/runs/{run_id}/steps")).json(),
                "messages": (await http.get(f"/threads/{thread}/messages")).json(),
            }

    polled = asyncio.run(scenario(stream=False))
    streamed = asyncio.run(scenario(stream=True))
    assert polled["run"]["status"] == "completed" and len(polled["messages"]["data"]) == 2
    assert streamed == polled
