"""Whether a failed attempt is tried again, and after how long.

A ``createRun`` is not idempotent (the API honours no idempotency key), so a request says how
it may be retried (:class:`_Retry`): an unsafe one is retried only when the server surely did
nothing, and an ambiguous failure is left to the caller to resolve from live state. Waits the
server suggests are honoured but capped; without one, backoff is exponential with jitter.
"""

from __future__ import annotations

import datetime
import email.utils
import enum
import math
import random
import time

import httpx

from reconciler.errors import AmbiguousResultError, ApiConnectionError, ApiError


class _Retry(enum.Enum):
    """How a request may be retried."""

    SAFE = "safe"  # reads and idempotent writes: retry on 429, 5xx and transport faults
    UNSAFE = "unsafe"  # may take effect twice: retry only when the server surely did nothing


class _AttemptFailedError(Exception):
    """One attempt failed; ``retryable`` is False when no retry can help."""

    def __init__(self, error: ApiError, cause: BaseException | None, *, retryable: bool = True,
                 headers: httpx.Headers | None = None) -> None:
        super().__init__(str(error))
        self.error = error
        self.cause = cause
        self.retryable = retryable
        self.headers = headers


def _number(text: str) -> float | None:
    try:
        return float(text.strip())
    except ValueError:
        return None


def _server_hint(headers: httpx.Headers) -> float | None:
    """Seconds the server asks to wait: ``retry-after-ms``, then ``retry-after`` (seconds or an
    HTTP date). ``None`` when there is no usable hint (absent, inf, nan, negative, garbage)."""
    hint_ms = headers.get("retry-after-ms")
    if hint_ms:
        value = _number(hint_ms)
        if value is not None and math.isfinite(value) and value >= 0:
            return value / 1000.0
    hint = headers.get("retry-after")
    if not hint:
        return None
    value = _number(hint)
    if value is not None:
        return value if math.isfinite(value) and value >= 0 else None
    try:
        when = email.utils.parsedate_to_datetime(hint.strip())
        if when.tzinfo is None:
            when = when.replace(tzinfo=datetime.UTC)
        return max(0.0, when.timestamp() - time.time())
    except (TypeError, ValueError, OverflowError, IndexError):
        return None


def _backoff(attempt: int, max_backoff: float) -> float:
    backoff: float = min(0.5 * 2.0 ** min(attempt, 32), max_backoff)
    return backoff * (1.0 - 0.25 * random.random())


def retry_delay(
    response: httpx.Response | None, attempt: int, max_backoff: float, *,
    max_wait: float = 60.0,
) -> float:
    """The server's hint (``retry-after-ms``, then ``retry-after``) capped at ``max_wait``, or
    capped backoff when there is no usable hint."""
    hint = _server_hint(response.headers) if response is not None else None
    if hint is not None:
        return min(hint, max_wait)
    return _backoff(attempt, max_backoff)


def _retryable(failure: ApiError, retry: _Retry) -> bool:
    """Whether another attempt can help, for a request that may be retried as ``retry`` says."""
    if isinstance(failure, AmbiguousResultError):
        return False  # the caller resolves it from live state
    if isinstance(failure, ApiConnectionError):
        return True  # not sent, or a safe request
    if failure.status == 429:
        return True  # refused before any processing
    return retry is _Retry.SAFE and failure.status is not None and failure.status >= 500
