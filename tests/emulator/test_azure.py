"""Azure-style mode: an ``api-key`` header, an ``api-version`` query parameter, a path prefix.

The gateway's answers are Azure OpenAI's own (401 "Access denied due to invalid subscription
key or wrong API endpoint. …", 404 "Resource not found", both ``{"error": {code, message}}``),
and the official SDK's ``AzureOpenAI`` client works against it unchanged, streams included.
"""

from __future__ import annotations

import asyncio
import warnings
from typing import Any

import httpx
import openai
import pytest
from openai import AzureOpenAI

from reconciler.emulator import BackgroundServer, create_app, parse_path_prefix
from reconciler.emulator.app import AZURE_DENIED
from tests.emulator.support import API_KEY, SpecChecker, asgi_client, make_config

VERSION = "2024-05-01-preview"
DENIED = {"error": {"code": "401", "message": (
    "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide "
    "a valid key for an active subscription and use a correct regional API endpoint for your "
    "resource.")}}
NOT_FOUND = {"error": {"code": "404", "message": "Resource not found"}}


def azure(**changes: Any) -> Any:
    return make_config(auth="azure", path_prefix="/openai", **changes)


def answers(requests: list[tuple[str, str, dict[str, str], dict[str, str]]]
            ) -> list[tuple[int, Any]]:
    """(status, body) for each (method, path, headers, query) against an Azure-mode app."""
    async def scenario() -> list[tuple[int, Any]]:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=_app()), base_url="http://emulator",
        ) as http:
            out = []
            for method, path, headers, query in requests:
                response = await http.request(method, path, headers=headers, params=query)
                out.append((response.status_code, response.json()))
            return out
    return asyncio.run(scenario())


def _app() -> Any:
    return create_app(azure())


KEY = {"api-key": API_KEY}
V = {"api-version": VERSION}


def test_the_gateway_answers_as_azure_does() -> None:
    got = answers([
        ("POST", "/openai/threads", {}, V),  # no api-key
        ("POST", "/openai/threads", {"api-key": "wrong"}, V),
        ("POST", "/openai/threads", {"Authorization": f"Bearer {API_KEY}"}, V),  # not Azure's
        ("POST", "/openai/threads", KEY, {}),  # no api-version
        ("POST", "/openai/threads", KEY, {"api-version": ""}),
        ("GET", "/openai/nowhere", KEY, V),
        ("POST", "/v1/threads", KEY, V),  # not under the prefix
        ("POST", "/openai/threads", KEY, V),  # no OpenAI-Beta needed: Azure did not ask
    ])
    assert got[:3] == [(401, DENIED)] * 3
    assert got[3:7] == [(404, NOT_FOUND)] * 4
    assert got[7][0] == 200 and got[7][1]["object"] == "thread"
    assert DENIED["error"]["message"] == AZURE_DENIED
    assert all(API_KEY not in str(body) for _, body in got)


def test_a_configured_prefix_without_azure_keeps_openai_answers() -> None:
    async def scenario() -> tuple[httpx.Response, httpx.Response]:
        config = make_config(path_prefix="/api/v2")
        async with asgi_client(config) as http:
            inside = await http.post("http://emulator/api/v2/threads")
            outside = await http.post("http://emulator/v1/threads")
            return inside, outside
    inside, outside = asyncio.run(scenario())
    assert inside.status_code == 200
    assert outside.status_code == 404
    assert outside.json()["error"]["message"] == "Invalid URL (POST /v1/threads)"


@pytest.mark.parametrize(("text", "prefix"), [
    ("/openai", "/openai"), ("openai/", "/openai"), ("/", ""), ("/a/b", "/a/b"),
])
def test_path_prefixes(text: str, prefix: str) -> None:
    assert parse_path_prefix(text) == prefix


def test_a_bad_path_prefix_is_refused() -> None:
    with pytest.raises(ValueError, match="not a plain path segment"):
        parse_path_prefix("/open ai")


def test_the_official_azure_client_works_unchanged() -> None:
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    checker = SpecChecker(prefix="/openai")
    with BackgroundServer(azure()) as srv:
        http = httpx.Client(event_hooks={"response": [checker.hook]}, timeout=10)
        client = AzureOpenAI(api_key=API_KEY, api_version=VERSION, max_retries=0,
                             azure_endpoint=f"http://{srv.host}:{srv.port}", http_client=http,
                             _strict_response_validation=True)
        assistant = client.beta.assistants.create(model="gpt-4o", name="az")
        thread = client.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
        run = client.beta.threads.runs.create_and_poll(thread_id=thread.id,
                                                       assistant_id=assistant.id)
        assert run.status == "completed"
        with client.beta.threads.runs.stream(thread_id=thread.id,
                                             assistant_id=assistant.id) as stream:
            stream.until_done()
            final = stream.get_final_run()
        assert final.status == "completed"
        assert len(client.beta.threads.messages.list(thread.id).data) == 3
        wrong = AzureOpenAI(api_key="wrong", api_version=VERSION, max_retries=0,
                            azure_endpoint=f"http://{srv.host}:{srv.port}")
        with pytest.raises(openai.AuthenticationError) as denied:
            wrong.beta.threads.create()
    assert denied.value.status_code == 401
    assert "Access denied due to invalid subscription key" in str(denied.value)
    assert checker.problems == [] and checker.seen > 5 and checker.streams
