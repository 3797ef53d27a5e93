"""Test helpers: a fake clock, clients whose responses are checked against the spec."""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import httpx
from openai import OpenAI

from reconciler.emulator import (
    EmulatorConfig,
    RunTiming,
    create_app,
    validate_response,
    validate_stream_event,
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
    """Collects every response body, and every event of a stream, that breaks the spec.

    ``prefix`` is where the emulator serves the API (``/v1`` unless configured otherwise).
    Event streams are checked event by event as the client reads them (a tee on the
    response's byte stream), so streaming stays streaming; ``streams`` keeps their events.
    """

    def __init__(self, prefix: str = "/v1") -> None:
        self.prefix = prefix
        self.problems: list[str] = []
        self.streams: list[list[tuple[str, Any]]] = []
        self.seen = 0

    def check(self, response: httpx.Response) -> None:
        try:
            body: Any = response.json()
        except ValueError:
            body = None
        self.seen += 1
        self.problems.extend(validate_response(
            response.request.method, response.request.url.path, response.status_code, body,
            self.prefix))

    def check_stream(self, raw: bytes) -> None:
        events = parse_sse(raw.decode())
        self.seen += 1
        self.streams.append(events)
        for name, data in events:
            self.problems.extend(validate_stream_event(name, data))

    def hook(self, response: httpx.Response) -> None:
        if is_event_stream(response):
            response.stream = _Tee(response.stream, self.check_stream)
            return
        response.read()
        self.check(response)

    async def async_hook(self, response: httpx.Response) -> None:
        if is_event_stream(response):
            await response.aread()
            self.check_stream(response.content)
            return
        await response.aread()
        self.check(response)


class _Tee(httpx.SyncByteStream):
    """A response's byte stream that also keeps the bytes and hands them over when closed."""

    def __init__(self, inner: Any, done: Callable[[bytes], None]) -> None:
        self.inner = inner
        self.done = done
        self.kept = bytearray()

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self.inner:
            self.kept.extend(chunk)
            yield chunk

    def close(self) -> None:
        self.inner.close()
        self.done(bytes(self.kept))


def is_event_stream(response: httpx.Response) -> bool:
    kind: str = response.headers.get("content-type", "")
    return kind.startswith("text/event-stream")


def parse_sse(text: str) -> list[tuple[str, Any]]:
    """The complete events of an SSE body: (name, decoded data or the text ``[DONE]``).

    A last event cut off before its blank line is left out.
    """
    events: list[tuple[str, Any]] = []
    blocks = text.split("\n\n")
    for block in blocks[:-1]:
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        data = fields["data"]
        events.append((fields["event"], data if data == "[DONE]" else json.loads(data)))
    return events


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
