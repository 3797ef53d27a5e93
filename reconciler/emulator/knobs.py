"""The knobs as one ASGI middleware: response headers, latency, rate limit and faults.

Everything random is drawn from generators seeded from the config's ``seed`` (one per knob,
so turning latency on does not change which requests fail). A dropped connection is a response
head followed by an abrupt end: uvicorn closes the socket, and ``httpx.ASGITransport`` re-raises
the exception, which is an ``httpx.TransportError`` so in-process clients see what they would
see over a network. The stream faults (``cut``, ``stream_error``) are rolled when an event
stream starts and strike after a seeded number of its events.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import threading
import time
from collections.abc import MutableMapping
from typing import Any

import httpx

from reconciler.emulator.config import STREAM_FAULTS, EmulatorConfig, FaultKind, RateLimit
from reconciler.emulator.spec import find_operation

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Any
Send = Any
ASGIApp = Any

OPENAI_VERSION = "2020-10-01"
_TOKENS_LIMIT = 30_000_000
_UNLIMITED_REQUESTS = 10_000


class ConnectionDropped(httpx.RemoteProtocolError):
    """An injected fault: the emulator hung up instead of finishing its response."""


def format_reset(seconds: float) -> str:
    """A reset duration the way OpenAI writes it: ``12ms``, ``1.5s``, ``6m0s``."""
    if seconds < 1:
        return f"{max(0, math.ceil(seconds * 1000))}ms"
    if seconds < 60:
        return f"{round(seconds, 3):g}s"
    minutes, rest = divmod(math.ceil(seconds), 60)
    return f"{minutes}m{rest}s"


class RequestBucket:
    """A token bucket for requests: ``requests`` per ``period``, refilled continuously."""

    def __init__(self, limit: RateLimit, now: float) -> None:
        self.limit = limit
        self.tokens = float(limit.requests)
        self.updated = now
        self._lock = threading.Lock()

    @property
    def rate(self) -> float:
        return self.limit.requests / self.limit.period

    def take(self, now: float) -> tuple[bool, float, float]:
        """Try to spend one request: (allowed, remaining, seconds until the next one)."""
        with self._lock:
            elapsed = max(0.0, now - self.updated)
            self.tokens = min(float(self.limit.requests), self.tokens + elapsed * self.rate)
            self.updated = now
            if self.tokens >= 1:
                self.tokens -= 1
                return True, self.tokens, 0.0
            return False, self.tokens, (1 - self.tokens) / self.rate

    def reset_after(self) -> float:
        """Seconds until the bucket is full again."""
        return (self.limit.requests - self.tokens) / self.rate


class KnobsMiddleware:
    """Wraps the emulator with the behaviour of a real, shared, sometimes failing service."""

    def __init__(self, app: ASGIApp, config: EmulatorConfig) -> None:
        self.app = app
        self.config = config
        seed = config.seed
        self._request_ids = random.Random(f"{seed}:requests")
        self._latency = random.Random(f"{seed}:latency")
        self._faults = random.Random(f"{seed}:faults")
        self._fired = [0] * len(config.faults.rules)
        self._lock = threading.Lock()
        self._bucket: RequestBucket | None = (
            RequestBucket(config.rate_limit, config.clock()) if config.rate_limit else None
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        with self._lock:
            request_id = f"req_{self._request_ids.getrandbits(128):032x}"
            delay = self.config.latency.sample(self._latency) if self.config.latency else 0.0
        # The latency is when the answer starts: ``delay`` after the request arrived, the
        # emulator's own work done within it, as a real API's servers work in parallel while
        # the network carries requests and answers. Working first and waiting after keeps
        # one process from adding its queue to the latency: requests that arrive together
        # (a client's connections in step) would otherwise be worked one after another once
        # their delays end, the last waiting for all the others.
        answer_at = started + delay

        allowed, remaining, wait = True, float(_UNLIMITED_REQUESTS - 1), 0.0
        if self._bucket is not None:
            allowed, remaining, wait = self._bucket.take(self.config.clock())
        headers = self._headers(request_id, remaining)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                early = answer_at - time.perf_counter()
                if early > 0:
                    await asyncio.sleep(early)
                elapsed = int((time.perf_counter() - started) * 1000)
                message = dict(message)
                message["headers"] = [
                    *message.get("headers", []),
                    *headers,
                    (b"openai-processing-ms", str(elapsed).encode()),
                ]
            await send(message)

        if not allowed:
            await self._too_many_requests(send_with_headers, wait)
            return
        method = scope["method"]
        found = find_operation(method, scope["path"], self.config.path_prefix)
        operation_id = found[0].operation_id if found else None
        fault = self._roll_fault(method, operation_id)
        if fault == "500":
            await _json(send_with_headers, 500, {"error": {
                "message": _SERVER_ERROR, "type": "server_error", "param": None, "code": None}})
            return
        if fault == "drop":
            await _drop(send_with_headers)
        if fault == "lost_create":
            send_with_headers = _losing_success(send_with_headers)
        try:
            await self.app(scope, receive, self._stream_faults(send_with_headers, method,
                                                               operation_id))
        except _StreamEnded:
            return

    def _stream_faults(self, send: Send, method: str, operation_id: str | None) -> Send:
        """``send``, striking an event stream with a ``cut`` or ``stream_error`` rule, if any.

        The rules are rolled when a stream begins (a request is not known to stream before
        its answer starts); the stream is hit after a seeded number of events, 1 to 5, so it
        has begun but not finished (every stream has more events than that).
        """
        fault: FaultKind | None = None
        remaining = 0

        async def striking(message: Message) -> None:
            nonlocal fault, remaining
            if message["type"] == "http.response.start" and _is_event_stream(message):
                fault = self._roll_fault(method, operation_id, stream=True)
                if fault is not None:
                    with self._lock:
                        remaining = self._faults.randint(1, 5)
            await send(message)
            if fault is None or message["type"] != "http.response.body":
                return
            remaining -= 1
            if remaining > 0:
                return
            if fault == "cut":
                raise ConnectionDropped("the emulator cut the stream (injected fault)")
            await send({"type": "http.response.body", "body": _STREAM_ERROR, "more_body": False})
            raise _StreamEnded

        return striking

    def _headers(self, request_id: str, remaining: float) -> list[tuple[bytes, bytes]]:
        if self._bucket is not None:
            limit, reset = self._bucket.limit.requests, self._bucket.reset_after()
        else:
            limit, reset = _UNLIMITED_REQUESTS, 0.0
        return [
            (b"x-request-id", request_id.encode()),
            (b"openai-version", OPENAI_VERSION.encode()),
            (b"openai-organization", b"org-emulator"),
            (b"x-ratelimit-limit-requests", str(limit).encode()),
            (b"x-ratelimit-remaining-requests", str(max(0, math.floor(remaining))).encode()),
            (b"x-ratelimit-reset-requests", format_reset(reset).encode()),
            (b"x-ratelimit-limit-tokens", str(_TOKENS_LIMIT).encode()),
            (b"x-ratelimit-remaining-tokens", str(_TOKENS_LIMIT).encode()),
            (b"x-ratelimit-reset-tokens", b"0s"),
        ]

    async def _too_many_requests(self, send: Send, wait: float) -> None:
        limit = self._bucket.limit if self._bucket else None
        per = f"{limit.requests} per {limit.period:g}s" if limit else ""
        body = {"error": {
            "message": f"Rate limit reached for requests ({per}). Please try again in "
            f"{format_reset(wait)}.",
            "type": "requests", "param": None, "code": "rate_limit_exceeded"}}
        extra = [
            (b"retry-after", str(max(1, math.ceil(wait))).encode()),
            (b"retry-after-ms", str(max(1, math.ceil(wait * 1000))).encode()),
        ]
        await _json(send, 429, body, extra)

    def _roll_fault(self, method: str, operation_id: str | None, *, stream: bool = False
                    ) -> FaultKind | None:
        """Roll the dice for each matching rule in order; the first that fires wins.

        ``stream``: roll only the rules that strike a stream once it has begun.
        """
        with self._lock:
            for index, rule in enumerate(self.config.faults.rules):
                if (rule.kind in STREAM_FAULTS) != stream:
                    continue
                if rule.kind == "lost_create" and (
                    method != "POST" or not (operation_id or "").startswith("create")
                ):
                    continue
                if not rule.matches(method, operation_id):
                    continue
                if rule.limit is not None and self._fired[index] >= rule.limit:
                    continue
                if self._faults.random() < rule.rate:
                    self._fired[index] += 1
                    return rule.kind
        return None


class _StreamEnded(Exception):
    """The knobs ended a stream themselves (after an injected ``error`` event)."""


_SERVER_ERROR = "The server had an error while processing your request. Sorry about that!"
_STREAM_ERROR = (
    "event: error\ndata: "
    + json.dumps({"code": "server_error", "message": _SERVER_ERROR, "param": None,
                  "type": "server_error"}, separators=(",", ":"))
    + "\n\n"
).encode()


def _is_event_stream(start: Message) -> bool:
    headers = dict(start.get("headers", []))
    return bytes(headers.get(b"content-type", b"")).startswith(b"text/event-stream")


def _losing_success(send: Send) -> Send:
    """``send``, hanging up instead of answering a success: the create is committed (it is,
    before its answer starts), but the client never learns its id."""

    async def losing(message: Message) -> None:
        if message["type"] == "http.response.start" and message.get("status") == 200:
            await _drop(send)
        await send(message)

    return losing


async def _json(send: Send, status: int, body: Any,
                extra: list[tuple[bytes, bytes]] | None = None) -> None:
    payload = json.dumps(body).encode()
    await send({
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-type", b"application/json"),
                    (b"content-length", str(len(payload)).encode()), *(extra or [])],
    })
    await send({"type": "http.response.body", "body": payload})


async def _drop(send: Send) -> None:
    """Start a response, then hang up: the client never receives a usable answer."""
    await send({
        "type": "http.response.start",
        "status": 200,
        "headers": [(b"content-type", b"application/json"), (b"content-length", b"4096")],
    })
    raise ConnectionDropped("the emulator dropped the connection (injected fault)")
