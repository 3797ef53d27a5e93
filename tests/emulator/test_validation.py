"""Request validation worded like the service, the knob parsers, and validate_response itself."""

from __future__ import annotations

import asyncio
import json
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
from reconciler.emulator.validation import UNPARSABLE_BODY
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


def first_error(method: str, path: str, body: Any = None, raw: bytes | None = None
                ) -> dict[str, Any]:
    """One request to a fresh emulator (``{thread}``/``{assistant}`` filled in); its 400 error."""
    async def scenario() -> dict[str, Any]:
        async with asgi_client(make_config()) as http:
            asst = (await http.post("/assistants", json={"model": "gpt-4o"})).json()["id"]
            thread = (await http.post("/threads", json={"messages": [
                {"role": "user", "content": "x"}]})).json()["id"]
            message = (await http.get(f"/threads/{thread}/messages")).json()["data"][0]["id"]
            run = (await http.post(f"/threads/{thread}/runs", json={
                "assistant_id": asst, "tool_choice": "none"})).json()["id"]
            url = path.format(thread=thread, assistant=asst, message=message, run=run)
            if raw is not None:
                response = await http.request(method, url, content=raw)
            else:
                response = await http.request(method, url, json=body)
            assert response.status_code == 400, response.text
            assert validate_response(method, "/v1" + url, 400, response.json()) == []
            error: dict[str, Any] = response.json()["error"]
            assert error["type"] == "invalid_request_error"
            return error
    result: dict[str, Any] = asyncio.run(scenario())
    return result


URL = "https://example.com/chart.png"


@pytest.mark.parametrize(("part", "param", "code", "message"), [
    ({"type": "text", "text": "hi", "colour": "red"}, "content[0].colour", "unknown_parameter",
     "Unknown parameter: 'content[0].colour'."),
    ({"type": "image_url", "image_url": {"url": URL, "size": 3}}, "content[0].image_url.size",
     "unknown_parameter", "Unknown parameter: 'content[0].image_url.size'."),
    ({"type": "image_file", "image_file": {"file_id": "file_1"}, "x": 1}, "content[0].x",
     "unknown_parameter", "Unknown parameter: 'content[0].x'."),
    ({"type": "image_url", "image_url": {"url": ""}}, "content[0].image_url.url", "empty_string",
     "Invalid 'content[0].image_url.url': empty string. Expected a string with minimum length "
     "1, but got an empty string instead."),
    ({"type": "image_file", "image_file": {"file_id": ""}}, "content[0].image_file.file_id",
     "empty_string", "Invalid 'content[0].image_file.file_id': empty string. Expected a string "
     "with minimum length 1, but got an empty string instead."),
    ({"type": "image_url", "image_url": {"url": "chart.png"}}, "content[0].image_url.url",
     "invalid_value", "Invalid 'content[0].image_url.url'. Expected a valid URL, but got a "
     "value with an invalid format."),
    ({"type": "image_url", "image_url": {"url": "https://"}}, "content[0].image_url.url",
     "invalid_value", "Expected a valid URL, but got a value with an invalid format."),
    ({"type": "image_url", "image_url": {"url": "ftp://example.com/a.png"}},
     "content[0].image_url.url", "invalid_value", "Expected a valid URL"),
    ({"type": "image_url", "image_url": {"url": URL, "detail": "ultra"}},
     "content[0].image_url.detail", "invalid_value",
     "Invalid value: 'ultra'. Supported values are: 'auto', 'low', and 'high'."),
    ({"type": "image_file", "image_file": {"file_id": "f", "detail": "max"}},
     "content[0].image_file.detail", "invalid_value", "Invalid value: 'max'."),
    ({"type": "video", "video": {}}, "content[0].type", "invalid_value",
     "Invalid value: 'video'. Supported values are: 'image_file', 'image_url', and 'text'."),
    ({"type": "image_url"}, "content[0].image_url", "missing_required_parameter",
     "Missing required parameter: 'content[0].image_url'."),
])
def test_content_parts_the_spec_forbids(part: dict[str, Any], param: str, code: str,
                                        message: str) -> None:
    error = first_error("POST", "/threads/{thread}/messages",
                        {"role": "user", "content": [{"type": "text", "text": "ok"}, part]})
    shifted = param.replace("content[0]", "content[1]")
    assert (error["param"], error["code"]) == (shifted, code)
    assert message.replace("content[0]", "content[1]") in error["message"]


@pytest.mark.parametrize(("path", "body", "param", "message"), [
    ("/threads", {"messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": ""}}]}]},
     "messages[0].content[0].image_url.url", "empty string"),
    ("/threads/{thread}/runs", {"assistant_id": "{assistant}", "additional_messages": [
        {"role": "user", "content": [{"type": "text", "text": "t", "extra": 1}]}]},
     "additional_messages[0].content[0].extra",
     "Unknown parameter: 'additional_messages[0].content[0].extra'."),
    ("/threads/{thread}/runs", {"assistant_id": "{assistant}", "truncation_strategy": {
        "type": "auto", "keep": 2}}, "truncation_strategy.keep",
     "Unknown parameter: 'truncation_strategy.keep'."),
    ("/assistants", {"model": "gpt-4o", "tools": [{"type": "code_interpreter", "x": 1}]},
     "tools[0].x", "Unknown parameter: 'tools[0].x'."),
    ("/threads/{thread}/messages", {"role": "user", "content": "x", "attachments": [
        {"file_id": "f", "tools": [{"type": "file_search"}], "pages": 3}]},
     "attachments[0].pages", "Unknown parameter: 'attachments[0].pages'."),
])
def test_nested_keys_and_values_the_spec_forbids(path: str, body: dict[str, Any], param: str,
                                                  message: str) -> None:
    error = _post_with_ids(path, json.dumps(body))
    assert error["param"] == param
    assert message in error["message"]


def _post_with_ids(path: str, body_text: str) -> dict[str, Any]:
    """``first_error`` for a body that names the fresh assistant as ``{assistant}``."""
    async def scenario() -> dict[str, Any]:
        async with asgi_client(make_config()) as http:
            asst = (await http.post("/assistants", json={"model": "gpt-4o"})).json()["id"]
            thread = (await http.post("/threads")).json()["id"]
            url = path.format(thread=thread)
            response = await http.post(url, content=body_text.replace("{assistant}", asst))
            assert response.status_code == 400, response.text
            assert validate_response("POST", "/v1" + url, 400, response.json()) == []
            error: dict[str, Any] = response.json()["error"]
            return error
    result: dict[str, Any] = asyncio.run(scenario())
    return result


@pytest.mark.parametrize("path", [
    "/assistants/{assistant}", "/threads/{thread}", "/threads/{thread}/messages/{message}",
    "/threads/{thread}/runs/{run}", "/assistants", "/threads/{thread}/messages",
    "/threads/{thread}/runs", "/threads/runs", "/threads/{thread}/runs/{run}/submit_tool_outputs",
])
def test_no_body_where_the_spec_requires_one(path: str) -> None:
    error = first_error("POST", path, raw=b"")
    assert error["message"] == UNPARSABLE_BODY
    assert error["message"].startswith("We could not parse the JSON body of your request.")
    assert (error["param"], error["code"]) == (None, None)


def test_no_body_where_the_spec_allows_none() -> None:
    async def scenario() -> None:
        async with asgi_client(make_config()) as http:
            created = await http.post("/threads", content=b"")
            assert created.status_code == 200 and created.json()["object"] == "thread"
            thread = created.json()["id"]
            asst = (await http.post("/assistants", json={"model": "gpt-4o"})).json()["id"]
            run = (await http.post(f"/threads/{thread}/runs", json={
                "assistant_id": asst, "tools": [{"type": "function",
                                                 "function": {"name": "f"}}]})).json()
            cancel = await http.post(f"/threads/{thread}/runs/{run['id']}/cancel", content=b"")
            assert cancel.status_code == 200 and cancel.json()["status"] == "cancelling"
    asyncio.run(scenario())
