"""Settled runs answered from their cached encoding: never stale, byte for byte as before.

The cache (``reconciler.emulator.encoded``) is checked where a stale answer could come from:
the status machine moving a run, a modify, a cancel, a rolled-back write, and another
emulator — another process — writing the same ``--state`` file. Request bodies passed by
jsonschema-rs must be ones jsonschema passes too.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.responses import JSONResponse

from reconciler.emulator.config import RunTiming
from reconciler.emulator.encoded import Encoded, RenderCache, dumps, plain
from reconciler.emulator.service import Emulator
from reconciler.emulator.spec import request_passes, validator
from tests.emulator.support import FakeClock, asgi_client, make_config

TIMING = RunTiming(queued=1.0, in_progress=2.0, cancelling=0.5, expires_after=600.0)
FUNCTION = {"type": "function", "function": {"name": "lookup", "parameters": {
    "type": "object", "properties": {"q": {"type": "string"}}}}}


def _emulator(clock: FakeClock, state: Path | None = None) -> Emulator:
    config = make_config(timing=TIMING, clock=clock,
                         state_path=str(state) if state is not None else None)
    return Emulator(config)


def _setup(emulator: Emulator, **run: Any) -> tuple[str, str]:
    assistant = emulator.handle("createAssistant", {}, {}, {"model": "gpt-4o", "tools": [FUNCTION]})
    thread = emulator.handle("createThread", {}, {}, {})["id"]
    created = emulator.handle("createRun", {"thread_id": thread}, {},
                              {"assistant_id": assistant["id"], **run})
    return thread, created["id"]


def _listed(emulator: Emulator, thread: str) -> list[Any]:
    """The runs of a thread as the app answers them, and as a client decodes them."""
    answer = emulator.answer("listRuns", {"thread_id": thread}, {"limit": "100"}, {})
    decoded = plain(answer)
    assert JSONResponse(decoded).body == dumps(answer)  # what the app sends is unchanged
    assert decoded == emulator.handle("listRuns", {"thread_id": thread}, {"limit": "100"}, {})
    runs: list[Any] = decoded["data"]
    return runs


def test_a_moving_run_is_listed_as_it_moves_then_served_from_the_cache(
        clock: FakeClock) -> None:
    emulator = _emulator(clock)
    thread, _ = _setup(emulator, tool_choice="none")
    seen = []
    for _ in range(4):
        seen.append(_listed(emulator, thread)[0]["status"])
        clock.advance(1.0)
    assert seen == ["queued", "in_progress", "in_progress", "completed"]
    answer = emulator.answer("listRuns", {"thread_id": thread}, {}, {})
    again = emulator.answer("listRuns", {"thread_id": thread}, {}, {})
    assert isinstance(answer["data"][0], Encoded)
    assert again["data"][0] is answer["data"][0]  # the second list decoded nothing
    assert plain(answer)["data"][0]["status"] == "completed"


def test_modify_and_cancel_are_seen_by_the_next_list(clock: FakeClock) -> None:
    emulator = _emulator(clock)
    thread, run = _setup(emulator)
    clock.advance(3.5)
    assert _listed(emulator, thread)[0]["status"] == "requires_action"
    emulator.handle("cancelRun", {"thread_id": thread, "run_id": run}, {}, {})
    assert _listed(emulator, thread)[0]["status"] == "cancelling"
    clock.advance(1.0)
    assert _listed(emulator, thread)[0]["status"] == "cancelled"  # settled now: cached
    assert _listed(emulator, thread)[0]["status"] == "cancelled"
    emulator.handle("modifyRun", {"thread_id": thread, "run_id": run}, {},
                    {"metadata": {"colour": "blue ✓"}})
    listed = _listed(emulator, thread)[0]
    assert listed["metadata"] == {"colour": "blue ✓"} and listed["status"] == "cancelled"
    assert listed == emulator.handle("getRun", {"thread_id": thread, "run_id": run}, {}, {})


def test_a_modified_settled_run_is_answered_encoded_and_listed_from_that(
        clock: FakeClock) -> None:
    emulator = _emulator(clock)
    thread, run = _setup(emulator, tool_choice="none")
    clock.advance(5.0)
    ids = {"thread_id": thread, "run_id": run}
    modified = emulator.answer("modifyRun", ids, {}, {"metadata": {"n": "1"}})
    assert isinstance(modified, Encoded) and modified.object == "thread.run"
    assert emulator.answer("listRuns", {"thread_id": thread}, {}, {})["data"] == [modified]
    assert emulator.answer("getRun", ids, {}, {}) is modified
    got = emulator.handle("getRun", ids, {}, {})
    assert got["metadata"] == {"n": "1"} and got["status"] == "completed"


def test_runs_answered_encoded_keep_the_poll_header(clock: FakeClock) -> None:
    async def scenario() -> list[httpx.Response]:
        async with asgi_client(make_config(timing=TIMING, clock=clock)) as http:
            assistant = (await http.post("assistants", json={"model": "gpt-4o"})).json()
            thread = (await http.post("threads", json={})).json()["id"]
            run = (await http.post(f"threads/{thread}/runs",
                                   json={"assistant_id": assistant["id"]})).json()["id"]
            clock.advance(5.0)
            return [await http.get(f"threads/{thread}/runs/{run}"),
                    await http.post(f"threads/{thread}/runs/{run}", json={"metadata": {}}),
                    await http.get(f"threads/{thread}/runs/{run}")]

    for answer in asyncio.run(scenario()):
        assert answer.status_code == 200 and answer.json()["status"] == "completed"
        assert answer.headers["openai-poll-after-ms"] == "500"
        assert answer.headers["content-type"] == "application/json"
        assert answer.content == bytes(JSONResponse(answer.json()).body)


def test_a_rolled_back_write_is_never_served(clock: FakeClock) -> None:
    emulator = _emulator(clock)
    thread, run = _setup(emulator, tool_choice="none")
    clock.advance(5.0)
    before = _listed(emulator, thread)
    record = emulator.store.get("runs", run)
    assert record is not None
    with pytest.raises(RuntimeError), emulator.store.transaction():
        emulator.store.update("runs", run, {**record, "run": {**record["run"],
                                                              "metadata": {"gone": "soon"}}})
        assert _listed(emulator, thread)[0]["metadata"] == {"gone": "soon"}  # cached, then
        raise RuntimeError("roll back")
    assert _listed(emulator, thread) == before


_WRITER = textwrap.dedent("""\
    import sys
    from reconciler.emulator.config import EmulatorConfig, RunTiming
    from reconciler.emulator.service import Emulator
    state, thread, run = sys.argv[1:]
    emulator = Emulator(EmulatorConfig(state_path=state, timing=RunTiming.instant()))
    emulator.handle("modifyRun", {"thread_id": thread, "run_id": run}, {},
                    {"metadata": {"by": "another process"}})
    emulator.close()
""")


def test_a_write_by_another_emulator_on_the_same_state_file_is_seen(
        tmp_path: Path, clock: FakeClock) -> None:
    state = tmp_path / "state.sqlite"
    first = _emulator(clock, state)
    thread, run = _setup(first, tool_choice="none")
    clock.advance(5.0)
    assert _listed(first, thread)[0]["metadata"] == {}
    second = _emulator(clock, state)  # a second emulator on the same file, in this process
    second.handle("modifyRun", {"thread_id": thread, "run_id": run}, {},
                  {"metadata": {"by": "second"}})
    assert _listed(first, thread)[0]["metadata"] == {"by": "second"}
    second.close()
    subprocess.run([sys.executable, "-c", _WRITER, str(state), thread, run], check=True,
                   timeout=60)
    assert _listed(first, thread)[0]["metadata"] == {"by": "another process"}
    first.close()


def test_the_cache_keeps_one_entry_per_run_and_drops_the_oldest() -> None:
    cache = RenderCache(capacity=2)
    kept = cache.keep("run_a", "stored a", {"id": "run_a", "n": 1})
    assert cache.cached("run_a", "stored a") is kept and kept.text == '{"id":"run_a","n":1}'
    assert cache.cached("run_a", "stored a, changed") is None
    cache.keep("run_b", "stored b", {"id": "run_b"})
    cache.keep("run_a", "stored a2", {"id": "run_a", "n": 2})  # replaces, and is newest now
    cache.keep("run_c", "stored c", {"id": "run_c"})
    assert len(cache) == 2
    assert cache.cached("run_b", "stored b") is None
    assert cache.cached("run_a", "stored a") is None
    assert cache.cached("run_a", "stored a2") is not None
    assert cache.cached("run_c", "stored c") is not None


@pytest.mark.parametrize("body", [
    {"object": "list", "data": [], "first_id": "", "last_id": "", "has_more": False},
    {"object": "list", "data": [{"id": "x", "v": [1.5, None, True, "é ✓ \u2028 \"q\""]}],
     "first_id": "x", "last_id": "x", "has_more": True},
    {"id": "run_1", "metadata": {"k": "v"}, "nested": [{"a": [1, 2]}]},
])
def test_spliced_responses_are_what_jsonresponse_writes(body: dict[str, Any]) -> None:
    expected = JSONResponse(body).body
    assert dumps(body) == expected
    spliced = {k: [Encoded(i["id"], None, bytes(JSONResponse(i).body).decode()) for i in v]
               if k == "data" else v for k, v in body.items()}
    assert dumps(spliced) == expected
    assert plain(spliced) == body


_RUN = {"assistant_id": "asst_a"}


@pytest.mark.parametrize(("operation", "body"), [
    ("modifyRun", {"metadata": {"k": "v"}}),
    ("modifyRun", {"metadata": None}),
    ("modifyRun", {"metadata": {"k" * 65: "v"}}),
    ("modifyRun", {"metadata": {str(n): "v" for n in range(17)}}),
    ("modifyRun", {"metadata": {"k": "v" * 513}}),
    ("modifyRun", {"metadata": {"k": 1}}),
    ("modifyRun", {"colour": "red"}),
    ("createRun", {**_RUN, "tools": [{"type": "function", "function": {"name": "ok"}}]}),
    ("createRun", {**_RUN, "tools": [{"type": "function", "function": {"name": "ok\n"}}]}),
    ("createRun", {**_RUN, "tools": [{"type": "function", "function": {"name": "é"}}]}),
    ("createRun", {**_RUN, "temperature": float("nan")}),
    ("createRun", {**_RUN, "temperature": 10**40}),
    ("createRun", {**_RUN, "max_prompt_tokens": 255}),
    ("createRun", {**_RUN, "max_prompt_tokens": 256.0}),
    ("createRun", {**_RUN, "metadata": {"k": "\ud800"}}),
    ("createRun", {**_RUN, "tool_choice": {"type": "function", "function": {"name": "x"}}}),
    *[("createRun", {**_RUN, "additional_messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": url}}]}]})
      for url in ("https://example.com/a.png", "ftp://example.com/a.png", "https:///a.png",
                  "data:image/png;base64,AAAA", "data:nocomma", "http://a b/c.png", "")],
])
def test_a_body_jsonschema_rs_passes_is_one_jsonschema_passes(
        operation: str, body: dict[str, Any]) -> None:
    if request_passes(operation)(body):
        assert validator(f"request:{operation}").is_valid(body)


def test_jsonschema_rs_passes_ordinary_bodies() -> None:
    """The fast path is taken for what clients send every time (else it saves nothing)."""
    assert request_passes("modifyRun")({"metadata": {"reconciler.name": "run-1"}})
    assert request_passes("createRun")({**_RUN, "metadata": {"k": "v"}, "tools": [FUNCTION]})
    assert not request_passes("modifyRun")({"colour": "red"})
