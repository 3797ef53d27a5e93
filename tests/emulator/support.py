"""Test helpers: a fake clock, clients whose responses are checked against the spec."""

from __future__ import annotations

import warnings
from dataclasses import replace
from typing import Any

import httpx
from openai import OpenAI

from reconciler.emulator import (
    EmulatorConfig,
    RunTiming,
    create_app,
    validate_response,
)

API_KEY = "sk-emulator-test-key"
BETA = {"OpenAI-Beta": "assistants=v2", "Authorization": f"Bearer {API_KEY}"}

warnings.filterwarnings("ignore", category=DeprecationWarning)


class FakeClock:
    """A clock tests move by hand."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class SpecChecker:
    """Collects every response body that does not validate against the spec."""

    def __init__(self) -> None:
        self.problems: list[str] = []
        self.seen = 0

    def check(self, response: httpx.Response) -> None:
        try:
            body: Any = response.json()
        except ValueError:
            body = None
        self.seen += 1
        self.problems.extend(validate_response(
            response.request.method, response.request.url.path, response.status_code, body))

    def hook(self, response: httpx.Response) -> None:
        response.read()
        self.check(response)

    async def async_hook(self, response: httpx.Response) -> None:
        await response.aread()
        self.check(response)


def make_config(**changes: Any) -> EmulatorConfig:
    base = EmulatorConfig(api_key=API_KEY, timing=RunTiming.instant())
    return replace(base, **changes)


def sdk_client(base_url: str, checker: SpecChecker, **options: Any) -> OpenAI:
    """The official SDK with strict response validation and the spec check on every reply."""
    http = httpx.Client(event_hooks={"response": [checker.hook]}, timeout=10)
    options.setdefault("max_retries", 0)
    return OpenAI(api_key=options.pop("api_key", API_KEY), base_url=base_url,
                  _strict_response_validation=True, http_client=http, **options)


def asgi_client(config: EmulatorConfig, checker: SpecChecker | None = None,
                headers: dict[str, str] | None = None) -> httpx.AsyncClient:
    """An in-process client: the app through ``httpx.ASGITransport``, no socket."""
    hooks = {"response": [checker.async_hook]} if checker else {}
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_app(config)),
        base_url="http://emulator/v1", headers=BETA if headers is None else headers,
        event_hooks=hooks,
    )
