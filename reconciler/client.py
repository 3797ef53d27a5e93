"""The one module that speaks HTTP: an async Assistants v2 client for runs and threads.

Why its own client rather than the official SDK: bounded concurrency over one connection
pool, a rate-limit gate shared by every request in flight, and a retry policy that knows a
``createRun`` is not idempotent (the API honours no idempotency key), so an ambiguous failure
is reported as :class:`AmbiguousResultError` for the caller to resolve from live state instead
of being retried blindly. Every HTTP status becomes a typed exception in one place.
"""

from __future__ import annotations

import asyncio
import email.utils
import enum
import os
import random
import ssl
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias

import httpx

from reconciler import errors
from reconciler.errors import AmbiguousResultError, ApiConnectionError, ApiError

DEFAULT_BASE_URL = "https://api.openai.com/v1"
_POOL_SIZE = 8  # connections per httpx pool (see AssistantsClient.__init__)
_KEEPALIVE_EXPIRY = 4.0  # seconds an idle connection is kept for reuse
BETA_HEADER = ("OpenAI-Beta", "assistants=v2")

JSONObject: TypeAlias = dict[str, Any]
Sleep: TypeAlias = Callable[[float], Awaitable[None]]
AuthStyle: TypeAlias = Literal["bearer", "azure"]


@dataclass(frozen=True)
class ClientSettings:
    """Where and how to reach the API. ``api_key`` is kept out of ``repr``."""

    base_url: str = DEFAULT_BASE_URL
    api_key: str | None = field(default=None, repr=False)
    organization: str | None = None
    project: str | None = None
    auth: AuthStyle = "bearer"
    api_version: str | None = None  # Azure-style hosts: sent as ?api-version=
    concurrency: int = 16
    max_retries: int = 4
    timeout: float = 60.0
    max_backoff: float = 8.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> ClientSettings:
        """The official SDK's variable names; explicit overrides (flags, config) win."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {
            "base_url": env.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL,
            "api_key": env.get("OPENAI_API_KEY") or None,
            "organization": env.get("OPENAI_ORG_ID") or None,
            "project": env.get("OPENAI_PROJECT_ID") or None,
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


class _Retry(enum.Enum):
    """How a request may be retried."""

    SAFE = "safe"  # reads and idempotent writes: retry on 429, 5xx and transport faults
    UNSAFE = "unsafe"  # may take effect twice: retry only when the server surely did nothing


_STATUS_ERRORS: dict[int, type[ApiError]] = {
    400: errors.BadRequestError,
    401: errors.AuthenticationError,
    403: errors.PermissionDeniedError,
    404: errors.NotFoundError,
    409: errors.ConflictError,
    422: errors.BadRequestError,
    429: errors.RateLimitError,
}

_MAX_MESSAGE = 500

#: The 400s apply acts on, told apart once, here, by the service's own words (the API gives
#: them no code): "Thread thread_X already has an active run run_Y.", "Cannot cancel run with
#: status 'completed'.", 'Runs in status "expired" do not accept tool outputs.'.
_BAD_REQUEST_KINDS: tuple[tuple[str, type[ApiError]], ...] = (
    ("already has an active run", errors.ThreadBusyError),
    ("cannot cancel run", errors.RunNotCancellableError),
    ("do not accept tool outputs", errors.ToolOutputsNotAcceptedError),
)


def error_from_response(response: httpx.Response, operation: str) -> ApiError:
    """Map an error response to its typed exception, trimming what could flood a log."""
    message = f"HTTP {response.status_code}"
    error_type = code = param = None
    try:
        body = response.json()
        inner = body.get("error") if isinstance(body, dict) else None
        if isinstance(inner, dict):
            message = str(inner.get("message") or message)
            error_type = _opt_str(inner.get("type"))
            code = _opt_str(inner.get("code"))
            param = _opt_str(inner.get("param"))
    except ValueError:
        text = response.text.strip()
        if text:
            message = text
    if len(message) > _MAX_MESSAGE:
        message = message[:_MAX_MESSAGE] + "…"
    cls = _STATUS_ERRORS.get(response.status_code)
    if cls is None:
        cls = errors.ServerError if response.status_code >= 500 else ApiError
    if cls is errors.BadRequestError:
        lowered = message.lower()
        cls = next((kind for words, kind in _BAD_REQUEST_KINDS if words in lowered), cls)
    return cls(
        message,
        status=response.status_code,
        error_type=error_type,
        code=code,
        param=param,
        request_id=response.headers.get("x-request-id"),
        operation=operation,
    )


def _opt_str(value: object) -> str | None:
    return None if value is None else str(value)


def retry_delay(response: httpx.Response | None, attempt: int, max_backoff: float) -> float:
    """The server's hint (``retry-after-ms``, then ``retry-after``) or capped backoff."""
    if response is not None:
        hint_ms = response.headers.get("retry-after-ms")
        if hint_ms:
            try:
                return max(0.0, float(hint_ms) / 1000.0)
            except ValueError:
                pass
        hint = response.headers.get("retry-after")
        if hint:
            try:
                return max(0.0, float(hint))
            except ValueError:
                try:
                    when = email.utils.parsedate_to_datetime(hint).timestamp()
                except (TypeError, ValueError):
                    when = time.time()
                return max(0.0, float(when) - time.time())
    backoff: float = min(0.5 * 2.0**attempt, max_backoff)
    return backoff * (1.0 - 0.25 * random.random())


class AssistantsClient:
    """Async client for the run and thread endpoints reconciler needs.

    Use as ``async with AssistantsClient(settings) as client``. ``transport`` is the seam for
    tests (``httpx.MockTransport``) and for the in-process emulator (``httpx.ASGITransport``).
    """

    def __init__(
        self,
        settings: ClientSettings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.settings = settings
        self._sleep = sleep
        self._semaphore = asyncio.Semaphore(max(1, settings.concurrency))
        self._not_before = 0.0  # monotonic time before which no request starts (429 gate)
        self.requests_sent = 0
        headers = {BETA_HEADER[0]: BETA_HEADER[1], "User-Agent": "reconciler"}
        if settings.api_key:
            if settings.auth == "azure":
                headers["api-key"] = settings.api_key
            else:
                headers["Authorization"] = f"Bearer {settings.api_key}"
        if settings.organization:
            headers["OpenAI-Organization"] = settings.organization
        if settings.project:
            headers["OpenAI-Project"] = settings.project
        params = {"api-version": settings.api_version} if settings.api_version else None
        # httpcore scans every pooled connection on each request, so one large pool costs
        # CPU per request in proportion to its size; several small pools keep it flat.
        shards = 1 if transport is not None else -(-settings.concurrency // _POOL_SIZE)
        per_shard = -(-settings.concurrency // shards)
        # An idle connection is dropped before common servers drop it (uvicorn after 5 s):
        # reusing one the server is closing loses the request, and a lost create is ambiguous.
        limits = httpx.Limits(max_connections=per_shard, max_keepalive_connections=per_shard,
                              keepalive_expiry=_KEEPALIVE_EXPIRY)
        url = settings.base_url.rstrip("/") + "/"
        verify: ssl.SSLContext | bool = (
            httpx.create_ssl_context() if url.startswith("https:") else False
        )
        self._pools = [
            httpx.AsyncClient(
                base_url=url,
                headers=headers,
                params=params,
                timeout=settings.timeout,
                limits=limits,
                transport=transport,
                verify=verify,
            )
            for _ in range(shards)
        ]
        self._in_flight = [0] * shards
        self._http = self._pools[0]

    async def __aenter__(self) -> AssistantsClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        for pool in self._pools:
            await pool.aclose()

    # -- runs -------------------------------------------------------------------------------

    async def list_runs(self, thread_id: str, *, page_size: int = 100) -> list[JSONObject]:
        """Every run of a thread, newest first, following the cursor to the end."""
        runs: list[JSONObject] = []
        after: str | None = None
        while True:
            params: dict[str, str | int] = {"limit": page_size, "order": "desc"}
            if after:
                params["after"] = after
            page = await self._request(
                "GET",
                f"threads/{thread_id}/runs",
                params=params,
                operation=f"list runs of {thread_id}",
                retry=_Retry.SAFE,
            )
            data = page.get("data")
            if not isinstance(data, list):
                raise ApiError(
                    "the server's run list has no 'data' array",
                    operation=f"list runs of {thread_id}",
                )
            runs.extend(item for item in data if isinstance(item, dict))
            if not page.get("has_more") or not data:
                return runs
            last = page.get("last_id") or data[-1].get("id")
            if not isinstance(last, str) or last == after:
                return runs
            after = last

    async def list_latest_run(self, thread_id: str) -> JSONObject | None:
        """The newest run of a thread: the only one that can be active."""
        page = await self._request(
            "GET",
            f"threads/{thread_id}/runs",
            params={"limit": 1, "order": "desc"},
            operation=f"list runs of {thread_id}",
            retry=_Retry.SAFE,
        )
        data = page.get("data")
        if isinstance(data, list) and data and isinstance(data[0], dict):
            return data[0]
        return None

    async def get_run(self, thread_id: str, run_id: str) -> JSONObject:
        return await self._request(
            "GET",
            f"threads/{thread_id}/runs/{run_id}",
            operation=f"get run {run_id}",
            retry=_Retry.SAFE,
        )

    async def create_run(self, thread_id: str, body: Mapping[str, Any]) -> JSONObject:
        """Create a run. Raises :class:`AmbiguousResultError` when it may have been created."""
        return await self._request(
            "POST",
            f"threads/{thread_id}/runs",
            json=dict(body),
            operation=f"create run on {thread_id}",
            retry=_Retry.UNSAFE,
        )

    async def modify_run(
        self, thread_id: str, run_id: str, metadata: Mapping[str, str]
    ) -> JSONObject:
        """Replace a run's metadata (idempotent: sending the same map twice is harmless)."""
        return await self._request(
            "POST",
            f"threads/{thread_id}/runs/{run_id}",
            json={"metadata": dict(metadata)},
            operation=f"modify run {run_id}",
            retry=_Retry.SAFE,
        )

    async def cancel_run(self, thread_id: str, run_id: str) -> JSONObject:
        return await self._request(
            "POST",
            f"threads/{thread_id}/runs/{run_id}/cancel",
            operation=f"cancel run {run_id}",
            retry=_Retry.UNSAFE,
        )

    async def submit_tool_outputs(
        self, thread_id: str, run_id: str, outputs: list[dict[str, str]]
    ) -> JSONObject:
        return await self._request(
            "POST",
            f"threads/{thread_id}/runs/{run_id}/submit_tool_outputs",
            json={"tool_outputs": outputs},
            operation=f"submit tool outputs to run {run_id}",
            retry=_Retry.UNSAFE,
        )

    async def get_thread(self, thread_id: str) -> JSONObject:
        return await self._request(
            "GET",
            f"threads/{thread_id}",
            operation=f"get thread {thread_id}",
            retry=_Retry.SAFE,
        )

    # -- transport --------------------------------------------------------------------------

    async def _request(
        self,
        method: str,
        path: str,
        *,
        operation: str,
        retry: _Retry,
        params: Mapping[str, str | int] | None = None,
        json: Any = None,
    ) -> JSONObject:
        attempt = 0
        while True:
            response: httpx.Response | None = None
            async with self._semaphore:
                await self._wait_for_gate()
                self.requests_sent += 1
                shard = self._in_flight.index(min(self._in_flight))
                self._in_flight[shard] += 1
                try:
                    response = await self._pools[shard].request(
                        method,
                        path,
                        params=params,
                        json=json,
                        headers={"x-reconciler-retry-count": str(attempt)},
                    )
                except httpx.TimeoutException as exc:
                    failure: ApiError = self._transport_error(
                        operation, f"timed out ({type(exc).__name__})", sent=True, retry=retry
                    )
                    cause: BaseException = exc
                except httpx.ConnectError as exc:
                    failure = self._transport_error(
                        operation, "could not connect to the API", sent=False, retry=retry
                    )
                    cause = exc
                except httpx.TransportError as exc:
                    failure = self._transport_error(
                        operation,
                        f"connection lost ({type(exc).__name__})",
                        sent=True,
                        retry=retry,
                    )
                    cause = exc
                else:
                    if response.status_code < 400:
                        return self._decode(response, operation)
                    failure = error_from_response(response, operation)
                    cause = failure
                    if response.status_code == 429:
                        self._close_gate(retry_delay(response, attempt, self.settings.max_backoff))
                finally:
                    self._in_flight[shard] -= 1
            if not self._retryable(failure, retry) or attempt >= self.settings.max_retries:
                if retry is _Retry.UNSAFE and isinstance(failure, errors.ServerError):
                    raise AmbiguousResultError(
                        f"{failure.api_message}; the request may have taken effect",
                        status=failure.status,
                        request_id=failure.request_id,
                        operation=operation,
                    ) from cause
                if failure is cause:
                    raise failure
                raise failure from cause
            delay = retry_delay(response, attempt, self.settings.max_backoff)
            attempt += 1
            await self._sleep(delay)

    def _transport_error(self, operation: str, what: str, *, sent: bool, retry: _Retry) -> ApiError:
        host = httpx.URL(self.settings.base_url).host or self.settings.base_url
        if sent and retry is _Retry.UNSAFE:
            return AmbiguousResultError(
                f"{what} talking to {host}; the request may have taken effect",
                operation=operation,
            )
        return ApiConnectionError(f"{what} talking to {host}", operation=operation)

    @staticmethod
    def _retryable(failure: ApiError, retry: _Retry) -> bool:
        if isinstance(failure, AmbiguousResultError):
            return False  # the caller resolves it from live state
        if isinstance(failure, ApiConnectionError):
            return True  # not sent, or a safe request
        if failure.status == 429:
            return True  # refused before any processing
        return retry is _Retry.SAFE and failure.status is not None and failure.status >= 500

    async def _wait_for_gate(self) -> None:
        delay = self._not_before - time.monotonic()
        if delay > 0:
            await self._sleep(delay)

    def _close_gate(self, seconds: float) -> None:
        """After a 429, hold every request back until the server's hint has passed."""
        self._not_before = max(self._not_before, time.monotonic() + seconds)

    @staticmethod
    def _decode(response: httpx.Response, operation: str) -> JSONObject:
        try:
            body = response.json()
        except ValueError as exc:
            raise ApiError(
                "the server answered with something that is not JSON",
                status=response.status_code,
                request_id=response.headers.get("x-request-id"),
                operation=operation,
            ) from exc
        if not isinstance(body, dict):
            raise ApiError(
                "the server answered with JSON that is not an object",
                status=response.status_code,
                request_id=response.headers.get("x-request-id"),
                operation=operation,
            )
        return body
