"""The HTTP client against ``httpx.MockTransport``: headers, pagination, errors, retries."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from reconciler import errors
from reconciler.client import AssistantsClient, ClientSettings, error_from_response, retry_delay
from tests.fixtures import KEY, error, make_client


def run(coro: object) -> object:
    return asyncio.run(coro)  # type: ignore[arg-type]




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
            ClientSettings(base_url="http://127.0.0.1/v1", api_key=KEY),
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


# --- one way to say an HTTP error; capped hints; the new settings --------------------------


def fail_with(handler: Callable[[httpx.Request], httpx.Response], **settings: object) -> Exception:
    async def go() -> None:
        async with make_client(handler, **settings) as client:
            await client.list_runs("thread_x")

    with pytest.raises(errors.ApiError) as info:
        run(go())
    assert KEY not in str(info.value) and KEY not in repr(info.value)
    return info.value


def test_an_error_names_status_host_and_request_id_once() -> None:
    exc = fail_with(lambda request: error(403, "Forbidden by policy"))
    assert str(exc) == ("list runs of thread_x: Forbidden by policy "
                        "(HTTP 403 from api.example.test, request id req_123)")


def test_a_non_spec_error_body_keeps_the_servers_words() -> None:
    exc = fail_with(lambda request: httpx.Response(403, json={"detail": "Not authenticated"}))
    assert str(exc) == ("list runs of thread_x: Not authenticated "
                        "(HTTP 403 from api.example.test)")
    assert "HTTP 403 (HTTP 403)" not in str(exc)
    empty = fail_with(lambda request: httpx.Response(403))
    assert str(empty) == "list runs of thread_x: Forbidden (HTTP 403 from api.example.test)"


@pytest.mark.parametrize(
    ("message", "kind"),
    [("Thread thread_x already has an active run run_y.", errors.ThreadBusyError),
     ("Cannot cancel run with status 'completed'.", errors.RunNotCancellableError),
     ('Runs in status "expired" do not accept tool outputs.',
      errors.ToolOutputsNotAcceptedError),
     ("Something else.", errors.BadRequestError)],
)
def test_typed_400s_are_still_told_apart(message: str, kind: type[errors.ApiError]) -> None:
    exc = fail_with(lambda request: error(400, message))
    assert type(exc) is kind


def test_error_from_response_works_on_a_bare_response() -> None:
    response = httpx.Response(502, text="<html><title>Bad\nGateway</title></html>",
                              headers={"content-type": "text/html"})
    exc = error_from_response(response, "get run run_1", host="h.example")
    assert isinstance(exc, errors.ServerError)
    assert str(exc) == "get run run_1: Bad Gateway (HTTP 502 from h.example)"


def test_api_error_keeps_its_old_keywords_and_takes_a_host() -> None:
    assert str(errors.ApiError("m", status=404, operation="op")) == "op: m (HTTP 404)"
    assert str(errors.ApiError("m", status=404, request_id="r", operation="op",
                               host="h")) == "op: m (HTTP 404 from h, request id r)"
    assert str(errors.ApiError("m")) == "m"


def test_retry_delay_caps_server_hints_and_ignores_nonsense() -> None:
    assert retry_delay(httpx.Response(429, headers={"retry-after": "99999"}), 0, 8.0) == 60.0
    assert retry_delay(httpx.Response(429, headers={"retry-after": "99999"}), 0, 8.0,
                       max_wait=5.0) == 5.0
    for nonsense in ("inf", "nan", "-3", "later"):
        delay = retry_delay(httpx.Response(429, headers={"retry-after": nonsense}), 0, 8.0)
        assert 0.0 < delay <= 0.5


def test_new_settings_have_their_defaults() -> None:
    settings = ClientSettings()
    assert (settings.ca_bundle, settings.allow_insecure_http, settings.max_retry_wait,
            settings.max_retry_time, settings.max_response_bytes, settings.max_json_depth,
            settings.max_pages) == (None, False, 60.0, 300.0, 32 * 1024 * 1024, 128, 1000)
    assert ClientSettings.from_env({"SSL_CERT_FILE": "/ca.pem"}).ca_bundle == "/ca.pem"


@pytest.mark.parametrize(
    "overrides",
    [{"timeout": 0}, {"timeout": -1.0}, {"max_retry_wait": -1.0}, {"max_response_bytes": 0},
     {"max_json_depth": 0}, {"max_pages": 0}],
)
def test_nonsense_limits_are_a_config_error(overrides: dict[str, object]) -> None:
    with pytest.raises(errors.ConfigError):
        make_client(lambda request: httpx.Response(200), **overrides)


def test_ids_cannot_add_path_segments_or_a_query() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"id": "run_1"})

    async def go() -> None:
        async with make_client(handler) as client:
            await client.get_run("thread_a", "../../files?x=1#y")

    run(go())
    assert seen[0].url.raw_path == b"/v1/threads/thread_a/runs/..%2F..%2Ffiles%3Fx%3D1%23y"


def test_cookies_a_server_sets_are_sent_back_and_answers_without_them_cost_no_parsing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """httpx's cookie handling is kept (a gateway's affinity cookie comes back), but the
    cookie jar is only consulted for answers that carry ``Set-Cookie``."""
    import http.cookiejar

    parsed: list[int] = []
    original = http.cookiejar.CookieJar.extract_cookies

    def counting(self: http.cookiejar.CookieJar, response: Any, request: Any) -> None:
        parsed.append(1)
        original(self, response, request)

    monkeypatch.setattr(http.cookiejar.CookieJar, "extract_cookies", counting)
    sent: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request.headers.get("cookie"))
        headers = {"set-cookie": "affinity=node-3; Path=/"} if len(sent) == 1 else {}
        return httpx.Response(200, json={"id": "run_1", "status": "completed"},
                              headers=headers)

    async def go() -> None:
        async with make_client(handler) as client:
            for _ in range(3):
                await client.get_run("thread_a", "run_1")

    asyncio.run(go())
    assert sent == [None, "affinity=node-3", "affinity=node-3"]
    assert parsed == [1]
