"""The HTTP client against ``httpx.MockTransport``: headers, pagination, errors, retries."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import httpx
import pytest

from reconciler import errors
from reconciler.client import AssistantsClient, ClientSettings, retry_delay

KEY = "sk-test-secret-0123456789abcdef"


async def _no_sleep(_: float) -> None:
    return None


def make_client(
    handler: Callable[[httpx.Request], httpx.Response], **settings: object
) -> AssistantsClient:
    base = {"base_url": "https://api.example.test/v1", "api_key": KEY, "max_retries": 3}
    base.update(settings)
    return AssistantsClient(
        ClientSettings(**base),  # type: ignore[arg-type]
        transport=httpx.MockTransport(handler),
        sleep=_no_sleep,
    )


def run(coro: object) -> object:
    return asyncio.run(coro)  # type: ignore[arg-type]


def error(status: int, message: str, **headers: str) -> httpx.Response:
    body = {"error": {"message": message, "type": "invalid_request_error", "param": None,
                      "code": None}}
    return httpx.Response(status, json=body, headers={"x-request-id": "req_123", **headers})


def test_sends_auth_beta_org_and_project_headers() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"id": "run_1", "status": "queued"})

    async def go() -> None:
        async with make_client(handler, organization="org_1", project="proj_1") as client:
            await client.get_run("thread_a", "run_1")

    run(go())
    request = seen[0]
    assert request.headers["Authorization"] == f"Bearer {KEY}"
    assert request.headers["OpenAI-Beta"] == "assistants=v2"
    assert request.headers["OpenAI-Organization"] == "org_1"
    assert request.headers["OpenAI-Project"] == "proj_1"
    assert request.url.path == "/v1/threads/thread_a/runs/run_1"


def test_azure_style_sends_api_key_header_and_version() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"id": "run_1", "status": "queued"})

    async def go() -> None:
        async with make_client(handler, auth="azure", api_version="2024-05-01") as client:
            await client.get_run("thread_a", "run_1")

    run(go())
    assert seen[0].headers["api-key"] == KEY
    assert "Authorization" not in seen[0].headers
    assert seen[0].url.params["api-version"] == "2024-05-01"


def test_from_env_reads_the_sdk_variables() -> None:
    settings = ClientSettings.from_env(
        {"OPENAI_BASE_URL": "http://h/v1", "OPENAI_API_KEY": KEY, "OPENAI_ORG_ID": "o",
         "OPENAI_PROJECT_ID": "p"}
    )
    assert (settings.base_url, settings.organization, settings.project) == ("http://h/v1", "o", "p")
    assert KEY not in repr(settings)


def test_list_runs_follows_pagination() -> None:
    pages = {
        None: {"data": [{"id": "run_3"}, {"id": "run_2"}], "has_more": True, "last_id": "run_2",
               "first_id": "run_3", "object": "list"},
        "run_2": {"data": [{"id": "run_1"}], "has_more": False, "last_id": "run_1",
                  "first_id": "run_1", "object": "list"},
    }
    afters: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        after = request.url.params.get("after")
        afters.append(after)
        assert request.url.params["limit"] == "100"
        return httpx.Response(200, json=pages[after])

    async def go() -> list[dict[str, object]]:
        async with make_client(handler) as client:
            return await client.list_runs("thread_a")

    runs = asyncio.run(go())
    assert [r["id"] for r in runs] == ["run_3", "run_2", "run_1"]
    assert afters == [None, "run_2"]


@pytest.mark.parametrize(
    ("status", "exc_type"),
    [
        (400, errors.BadRequestError),
        (401, errors.AuthenticationError),
        (403, errors.PermissionDeniedError),
        (404, errors.NotFoundError),
        (409, errors.ConflictError),
    ],
)
def test_error_statuses_map_to_typed_exceptions(
    status: int, exc_type: type[errors.ApiError]
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return error(status, "No run found with id 'run_x'.")

    async def go() -> None:
        async with make_client(handler) as client:
            await client.get_run("thread_a", "run_x")

    with pytest.raises(exc_type) as info:
        run(go())
    assert info.value.request_id == "req_123"
    assert info.value.status == status
    assert "No run found with id 'run_x'." in str(info.value)
    assert "req_123" in str(info.value)


def test_reads_retry_429_honouring_retry_after_ms() -> None:
    calls: list[int] = []
    slept: list[float] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        if len(calls) == 1:
            return error(429, "Rate limit reached", **{"retry-after-ms": "250"})
        return httpx.Response(200, json={"id": "run_1", "status": "queued"})

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    async def go() -> None:
        client = AssistantsClient(
            ClientSettings(base_url="http://h/v1", api_key=KEY),
            transport=httpx.MockTransport(handler), sleep=sleep,
        )
        async with client:
            await client.get_run("thread_a", "run_1")

    run(go())
    assert len(calls) == 2
    assert slept and slept[0] == pytest.approx(0.25)


def test_reads_retry_server_errors_and_connection_faults_then_give_up() -> None:
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        if len(calls) % 2:
            raise httpx.ReadError("connection reset")
        return error(500, "The server had an error")

    async def go() -> None:
        async with make_client(handler, max_retries=3) as client:
            await client.get_run("thread_a", "run_1")

    with pytest.raises(errors.ServerError):
        run(go())
    assert len(calls) == 4  # first try + 3 retries


def test_create_is_not_retried_after_a_lost_answer() -> None:
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        raise httpx.RemoteProtocolError("peer closed connection")

    async def go() -> None:
        async with make_client(handler) as client:
            await client.create_run("thread_a", {"assistant_id": "asst_1"})

    with pytest.raises(errors.AmbiguousResultError):
        run(go())
    assert len(calls) == 1


def test_create_500_is_ambiguous_but_429_and_connect_errors_are_retried() -> None:
    answers: list[httpx.Response | Exception] = [
        httpx.ConnectError("refused"),
        error(429, "slow down", **{"retry-after": "1"}),
        httpx.Response(200, json={"id": "run_9", "status": "queued"}),
    ]

    def handler(request: httpx.Request) -> httpx.Response:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    async def go() -> dict[str, object]:
        async with make_client(handler) as client:
            return await client.create_run("thread_a", {"assistant_id": "asst_1"})

    assert run(go())["id"] == "run_9"  # type: ignore[index]

    def fail(request: httpx.Request) -> httpx.Response:
        return error(500, "server error")

    async def go500() -> None:
        async with make_client(fail) as client:
            await client.create_run("thread_a", {"assistant_id": "asst_1"})

    with pytest.raises(errors.AmbiguousResultError):
        run(go500())


def test_non_json_answer_is_a_clear_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text="<html>gateway</html>", headers={"x-request-id": "req_9"})

    async def go() -> None:
        async with make_client(handler) as client:
            await client.get_run("thread_a", "run_1")

    with pytest.raises(errors.ApiError, match="not JSON"):
        run(go())


def test_error_messages_never_carry_the_key() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return error(401, "Incorrect API key provided")

    async def go() -> None:
        async with make_client(handler) as client:
            await client.get_run("thread_a", "run_1")

    with pytest.raises(errors.AuthenticationError) as info:
        run(go())
    assert KEY not in str(info.value)
    assert KEY not in repr(info.value.__dict__)


def test_retry_delay_prefers_server_hints() -> None:
    response = httpx.Response(429, headers={"retry-after": "3"})
    assert retry_delay(response, 0, 8.0) == 3.0
    assert 0.0 < retry_delay(None, 10, 8.0) <= 8.0


def test_submit_sends_outputs_in_one_request() -> None:
    bodies: list[object] = []

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(json.loads(request.content))
        return httpx.Response(200, json={"id": "run_1", "status": "queued"})

    async def go() -> None:
        async with make_client(handler) as client:
            await client.submit_tool_outputs(
                "thread_a", "run_1", [{"tool_call_id": "call_1", "output": "x"}]
            )

    run(go())
    assert bodies == [{"tool_outputs": [{"tool_call_id": "call_1", "output": "x"}]}]
