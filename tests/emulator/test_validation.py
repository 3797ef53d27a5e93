"""Request validation worded like the service, the knob parsers, and validate_response itself."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from reconciler.emulator import (
    RunTiming,
    parse_faults,
    parse_latency,
    parse_rate_limit,
    parse_timing,
    validate_response,
)
from reconciler.emulator.config import FaultRule, Latency, RateLimit
from tests.emulator.support import asgi_client, make_config

FN = {"type": "function", "function": {"name": "ok"}}


def create_run(body: dict[str, Any]) -> dict[str, Any]:
    """POST a createRun body to a fresh thread; return the error object."""
    async def scenario() -> dict[str, Any]:
        async with asgi_client(make_config()) as http:
            asst = (await http.post("/assistants", json={"model": "gpt-4o"})).json()["id"]
            thread = (await http.post("/threads")).json()["id"]
            response = await http.post(f"/threads/{thread}/runs",
                                       json={"assistant_id": asst, **body})
            assert response.status_code == 400, response.text
            assert validate_response("POST", f"/v1/threads/{thread}/runs", 400,
                                     response.json()) == []
            error: dict[str, Any] = response.json()["error"]
            assert error["type"] == "invalid_request_error"
            return error
    result: dict[str, Any] = asyncio.run(scenario())
    return result


@pytest.mark.parametrize(("body", "param", "message"), [
    ({"foo": 1}, "foo", "Unrecognized request argument supplied: foo"),
    ({"temperature": "x"}, "temperature",
     "Invalid type for 'temperature': expected a decimal, but got a string instead."),
    ({"top_p": 1.5}, "top_p", "Expected a value <= 1, but got 1.5 instead."),
    ({"max_prompt_tokens": 255}, "max_prompt_tokens", "Expected a value >= 256"),
    ({"metadata": {f"k{i}": "v" for i in range(17)}}, "metadata", "at most 16 properties"),
    ({"metadata": {"k" * 65: "v"}}, "metadata", "maximum length 64"),
    ({"metadata": {"k": "v" * 513}}, "metadata.k", "maximum length 512"),
    ({"metadata": {"k": 1}}, "metadata.k", "expected a string, but got an integer"),
    ({"tools": [FN] * 21}, "tools", "maximum length 20"),
    ({"tools": [{"type": "function", "function": {"name": "has space"}}]},
     "tools[0].function.name", "does not match pattern"),
    ({"tools": [{"type": "function", "function": {"name": "n" * 65}}]},
     "tools[0].function.name", "does not match pattern"),
    ({"tools": [{"type": "function", "function": {"name": "x", "colour": 1}}]},
     "tools[0].function.colour", "Unknown parameter: 'tools[0].function.colour'."),
    ({"tool_choice": "always"}, "tool_choice", "Invalid value: 'always'."),
    ({"parallel_tool_calls": "yes"}, "parallel_tool_calls", "expected a boolean"),
    ({"additional_messages": [{"role": "robot", "content": "x"}]},
     "additional_messages[0].role", "Invalid value: 'robot'."),
    ({"additional_messages": [{"role": "user"}]}, "additional_messages[0].content",
     "Missing required parameter: 'additional_messages[0].content'."),
    ({"reasoning_effort": "extreme"}, "reasoning_effort", "Invalid value: 'extreme'."),
    ({"response_format": {"type": "json_schema", "json_schema": {"name": "bad name"}}},
     "response_format.json_schema.name", "does not match pattern"),
])
def test_bad_create_run_bodies(body: dict[str, Any], param: str, message: str) -> None:
    error = create_run(body)
    assert error["param"] == param
    assert message in error["message"]


def test_nullable_fields_accept_null() -> None:
    async def scenario() -> None:
        async with asgi_client(make_config()) as http:
            asst = (await http.post("/assistants", json={"model": "gpt-4o"})).json()["id"]
            thread = (await http.post("/threads")).json()["id"]
            nulls = {k: None for k in ("model", "instructions", "tools", "metadata",
                                       "temperature", "top_p", "max_prompt_tokens",
                                       "truncation_strategy", "tool_choice", "response_format",
                                       "additional_messages", "reasoning_effort")}
            response = await http.post(f"/threads/{thread}/runs",
                                       json={"assistant_id": asst, **nulls})
            assert response.status_code == 200, response.text
            assert response.json()["model"] == "gpt-4o"
    asyncio.run(scenario())


def test_validate_response_reports_a_broken_body() -> None:
    assert validate_response("GET", "/v1/threads/thread_x", 200, {"id": "thread_x"}) != []
    good = {"id": "t", "object": "thread", "created_at": 1, "tool_resources": None,
            "metadata": {}}
    assert validate_response("GET", "/v1/threads/t", 200, good) == []
    assert validate_response("GET", "/v1/nowhere", 200, {}) != []


def test_knob_parsers() -> None:
    assert parse_latency("50ms") == Latency("fixed", 0.05)
    assert parse_latency("0") is None
    assert parse_latency("normal:50ms,10ms") == Latency("normal", 0.05, 0.01)
    assert parse_latency("uniform:10ms..90ms") == Latency("uniform", 0.01, 0.09)
    assert parse_rate_limit("20/s") == RateLimit(20, 1.0)
    assert parse_rate_limit("600/m") == RateLimit(600, 60.0)
    assert parse_rate_limit("5/2s") == RateLimit(5, 2.0)
    assert parse_rate_limit("off") is None
    faults = parse_faults("500=0.1,drop=0.05@GET,lost_create=1*2@createRun|createThread")
    assert faults.rules == (
        FaultRule("500", 0.1),
        FaultRule("drop", 0.05, methods=frozenset({"GET"})),
        FaultRule("lost_create", 1.0, 2, operations=frozenset({"createRun", "createThread"})),
    )
    assert parse_timing("instant") == RunTiming.instant()


@pytest.mark.parametrize(("parser", "text", "fragment"), [
    (parse_latency, "fast", "not a duration"),
    (parse_latency, "gamma:1ms", "unknown distribution"),
    (parse_latency, "uniform:90ms..10ms", "upper bound"),
    (parse_latency, "normal:5ms", "MEAN,STDDEV"),
    (parse_rate_limit, "20", "REQUESTS/PERIOD"),
    (parse_rate_limit, "0/s", "must be positive"),
    (parse_faults, "500=2", "between 0 and 1"),
    (parse_faults, "timeout=0.1", "unknown kind"),
    (parse_faults, "500=0.1@createRuns", "neither an HTTP method nor an operationId"),
    (parse_faults, "500", "KIND=RATE"),
    (parse_timing, "slow", "instant, fast or realistic"),
])
def test_knob_parsers_refuse_bad_text(parser: Any, text: str, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        parser(text)
