"""Azure-style hosts chosen by flags and environment, for every command, against the emulator
behind a gateway that speaks as Azure OpenAI does: the key in ``api-key``, ``?api-version=``
on every request, ``Authorization`` refused (so a fallback to Bearer fails loudly)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest

from tests.e2e.gateway import Gateway, _error_body, _Incoming, _json_reply, _Reply
from tests.e2e.harness import KEY, THREAD_A, BackgroundServer, Workspace, start_server

pytestmark = pytest.mark.e2e

VERSION = "2024-05-01-preview"
RUN = f"""\
    apiVersion: reconciler/v1
    kind: Runs
    runs:
      - name: report
        thread_id: {THREAD_A}
        assistant_id: asst_demo
"""


class AzureGateway(Gateway):
    """Azure OpenAI's front door before the emulator (served under ``/openai``)."""

    def __init__(self, upstream: str, key: str, api_version: str) -> None:
        super().__init__(upstream)
        self.key = key
        self.api_version = api_version

    def refusal(self, incoming: _Incoming) -> str | None:
        headers = {name.decode().lower(): value.decode() for name, value in incoming.headers}
        query = parse_qs(incoming.target.partition("?")[2])
        if "authorization" in headers:
            return "Authorization is not accepted here: send the key as api-key"
        if headers.get("api-key") != self.key:  # a careless host quotes what it was sent
            return f"Access denied: invalid subscription key {headers.get('api-key')!r}"
        if query.get("api-version") != [self.api_version]:
            return f"api-version must be {self.api_version}, got {query.get('api-version')}"
        return None

    async def _respond(self, incoming: _Incoming) -> _Reply:
        problem = self.refusal(incoming)
        if problem is not None:
            return _json_reply(401, _error_body(problem, "invalid_request_error"))
        headers = [(name, value) for name, value in incoming.headers
                   if name.lower() != b"api-key"]
        headers.append((b"authorization", f"Bearer {self.key}".encode()))
        return await super()._respond(
            _Incoming(incoming.method, incoming.target, headers, incoming.body))


@pytest.fixture
def emulator() -> Iterator[BackgroundServer]:
    with start_server(path_prefix="/openai") as server:
        yield server


@pytest.fixture
def azure(emulator: BackgroundServer) -> Iterator[AzureGateway]:
    with AzureGateway(emulator.base_url, KEY, VERSION) as gateway:
        yield gateway


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_API_VERSION",
                 "AZURE_OPENAI_API_KEY", "AZURE_OPENAI_ENDPOINT", "NO_COLOR"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def create_run(emulator: BackgroundServer, thread_id: str) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {KEY}", "OpenAI-Beta": "assistants=v2"}
    response = httpx.post(f"{emulator.base_url}/threads/{thread_id}/runs", headers=headers,
                          json={"assistant_id": "asst_demo"})
    response.raise_for_status()
    run: dict[str, Any] = response.json()
    return run


def assert_spoke_azure(gateway: AzureGateway) -> None:
    seen = gateway.requests
    assert seen, "nothing reached the gateway"
    for request in seen:
        assert "authorization" not in request.headers, request
        assert request.headers["api-key"] == KEY, request.path
        assert parse_qs(request.query)["api-version"] == [VERSION], request.path
        assert request.path.startswith("/openai/threads/"), request.path


def test_query_and_export_outside_any_project_speak_azure_from_the_environment(
    clean_env: pytest.MonkeyPatch, emulator: BackgroundServer, azure: AzureGateway,
    ws: Workspace, tmp_path_factory: pytest.TempPathFactory,
) -> None:
    made = create_run(emulator, THREAD_A)
    clean_env.chdir(tmp_path_factory.mktemp("no-config"))  # no reconciler.toml here or above
    clean_env.setenv("AZURE_OPENAI_ENDPOINT", f"http://127.0.0.1:{azure.port}/")
    clean_env.setenv("AZURE_OPENAI_API_KEY", KEY)
    clean_env.setenv("OPENAI_API_VERSION", VERSION)

    queried = ws.cli("query", f"SELECT id FROM openai.assistants.runs WHERE thread_id = "
                              f"'{THREAD_A}'", "--output", "json")
    exported = ws.cli("export", "--project", "e2e", "--thread", THREAD_A)

    assert queried.code == 0, queried.err
    assert [row["id"] for row in json.loads(queried.out)] == [made["id"]]
    assert exported.code == 0, exported.err
    assert f"thread_id: {THREAD_A}" in exported.out
    assert_spoke_azure(azure)
    assert KEY not in queried.out + queried.err + exported.out + exported.err


def test_flags_choose_azure_and_a_saved_plan_keeps_it(
    clean_env: pytest.MonkeyPatch, azure: AzureGateway, ws: Workspace,
) -> None:
    clean_env.setenv("OPENAI_API_KEY", KEY)  # azure auth takes OpenAI's key when no Azure one
    ws.write("runs.yaml", RUN)
    planfile = str(ws.root / "plan.json")
    where = ["--auth", "azure", "--api-version", VERSION, "--base-url", azure.base_url]

    planned = ws.cli("plan", ws.path, *where, "--out", planfile)
    assert planned.code == 0, planned.err
    assert json.loads(Path(planfile).read_text())["backend"] == {
        "base_url": azure.base_url, "auth": "azure", "api_version": VERSION,
    }
    sent = len(azure.requests)

    bearer = ws.cli("apply", planfile, "--auth", "bearer")
    other = ws.cli("apply", planfile, "--api-version", "2025-01-01")
    assert bearer.code == 1 and other.code == 1
    assert (f"computed against {azure.base_url} (azure auth, api-version {VERSION}), but --auth "
            f"points at {azure.base_url} (bearer auth)") in bearer.err
    assert "--api-version points at" in other.err and "api-version 2025-01-01" in other.err
    assert len(azure.requests) == sent  # refused before anything was sent

    applied = ws.cli("--verbose", "apply", planfile)
    assert applied.code == 0, applied.err
    assert "Apply complete: 1 applied, 0 failed, 0 not attempted." in applied.out
    assert (f"POST /openai/threads/{THREAD_A}/runs?api-version={VERSION} → 200 in "
            in applied.err)
    assert KEY not in applied.out + applied.err
    assert_spoke_azure(azure)


def test_azure_without_an_api_version_is_one_sentence_and_sends_nothing(
    clean_env: pytest.MonkeyPatch, azure: AzureGateway, ws: Workspace,
) -> None:
    clean_env.setenv("AZURE_OPENAI_ENDPOINT", f"http://127.0.0.1:{azure.port}")
    clean_env.setenv("AZURE_OPENAI_API_KEY", KEY)

    result = ws.cli("query", f"SELECT id FROM openai.assistants.runs WHERE thread_id = "
                             f"'{THREAD_A}'")

    assert result.code == 1
    assert result.err.strip().splitlines() == [
        "Error: azure auth (AZURE_OPENAI_ENDPOINT is set) needs an api-version: pass "
        "--api-version, set OPENAI_API_VERSION, or api_version in reconciler.toml"
    ]
    assert azure.requests == []


def test_an_azure_key_a_host_echoes_back_is_masked_even_with_debug(
    clean_env: pytest.MonkeyPatch, azure: AzureGateway, ws: Workspace,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    wrong = "azure-key-the-host-refuses-0123456789"
    clean_env.chdir(tmp_path_factory.mktemp("no-config"))
    clean_env.setenv("AZURE_OPENAI_ENDPOINT", f"http://127.0.0.1:{azure.port}")
    clean_env.setenv("AZURE_OPENAI_API_KEY", wrong)  # and no OPENAI_API_KEY at all
    clean_env.setenv("OPENAI_API_VERSION", VERSION)

    result = ws.cli("--debug", "--verbose", "query",
                    f"SELECT id FROM openai.assistants.runs WHERE thread_id = '{THREAD_A}'")

    assert result.code == 1
    assert azure.requests[0].headers["api-key"] == wrong  # the host did receive it
    assert "invalid subscription key '***'" in result.err
    assert wrong not in result.out + result.err
