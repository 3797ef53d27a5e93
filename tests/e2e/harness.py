"""End-to-end harness: the real CLI against the emulator over a loopback socket.

The fixtures are registered by ``conftest.py``; tests import the helpers from here."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from reconciler.cli import run
from reconciler.emulator import (
    DEMO_FIXTURES_PATH,
    BackgroundServer,
    EmulatorConfig,
    RunTiming,
    parse_faults,
    parse_rate_limit,
)

KEY = "sk-e2e-secret-key-0123456789abcdefXYZ"
THREAD_A = "thread_demo_reports"
THREAD_B = "thread_demo_triage"
THREAD_C = "thread_demo_research"


@dataclass
class Result:
    code: int
    out: str
    err: str


@dataclass
class Api:
    """Direct HTTP access to the emulator, for looking at or changing state outside the tool."""

    http: httpx.Client

    def runs(self, thread_id: str) -> list[dict[str, Any]]:
        body = self.http.get(f"threads/{thread_id}/runs", params={"limit": 100}).json()
        runs: list[dict[str, Any]] = body["data"]
        return runs

    def managed(self, thread_id: str, name: str) -> list[dict[str, Any]]:
        return [r for r in self.runs(thread_id) if r["metadata"].get("reconciler.name") == name]

    def modify(self, thread_id: str, run_id: str, metadata: dict[str, str]) -> dict[str, Any]:
        response = self.http.post(f"threads/{thread_id}/runs/{run_id}",
                                  json={"metadata": metadata})
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def cancel(self, thread_id: str, run_id: str) -> None:
        self.http.post(f"threads/{thread_id}/runs/{run_id}/cancel").raise_for_status()

    def create(self, thread_id: str, body: dict[str, Any]) -> dict[str, Any]:
        response = self.http.post(f"threads/{thread_id}/runs", json=body)
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result


def start_server(**overrides: Any) -> BackgroundServer:
    config = EmulatorConfig(
        timing=overrides.pop("timing", RunTiming.instant()),
        fixtures=str(DEMO_FIXTURES_PATH),
        api_key=KEY,
        **overrides,
    )
    return BackgroundServer(config, host="127.0.0.1", port=0)


@pytest.fixture
def server() -> Iterator[BackgroundServer]:
    with start_server() as srv:
        yield srv


@pytest.fixture
def api(server: BackgroundServer) -> Iterator[Api]:
    headers = {"Authorization": f"Bearer {KEY}", "OpenAI-Beta": "assistants=v2"}
    with httpx.Client(base_url=server.base_url + "/", headers=headers, timeout=30) as http:
        yield Api(http)


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, server: BackgroundServer) -> BackgroundServer:
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.delenv("NO_COLOR", raising=False)
    return server


class Workspace:
    """A folder of manifests with a ``reconciler.toml``, and a way to run the CLI in it."""

    def __init__(self, root: Path, capsys: pytest.CaptureFixture[str]) -> None:
        self.root = root
        self.capsys = capsys
        (root / "reconciler.toml").write_text('project = "e2e"\n')

    def write(self, name: str, text: str) -> Path:
        path = self.root / name
        path.write_text(textwrap.dedent(text))
        return path

    def cli(self, *args: str) -> Result:
        self.capsys.readouterr()
        code = run(["--no-color", *args])
        out, err = self.capsys.readouterr()
        return Result(code, out, err)

    @property
    def path(self) -> str:
        return str(self.root)


@pytest.fixture
def ws(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Workspace:
    return Workspace(tmp_path, capsys)


__all__ = [
    "KEY", "THREAD_A", "THREAD_B", "THREAD_C", "Api", "BackgroundServer", "Result", "Workspace",
    "parse_faults",
    "parse_rate_limit", "start_server",
]
