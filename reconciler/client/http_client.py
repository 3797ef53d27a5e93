"""The only code that sends HTTP: pooled connections, the 429 gate and pacing, one request and
its retries.

Why its own client rather than the official SDK: bounded concurrency over a lean HTTP/1.1
transport (:mod:`reconciler.client.transport`), a rate-limit gate shared by every request in
flight, starts paced from the rate-limit headers (see :mod:`reconciler.client.pacing`), and a
retry policy that knows a ``createRun`` is not idempotent (see :mod:`reconciler.client.retry`).
Every attempt has one deadline for connect, send and the whole answer, and a retry only what
is left of the request's ``max_retry_time``; every transport fault becomes a typed error here.
"""

from __future__ import annotations

import asyncio
import ssl
import time
import urllib.request
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, NoReturn, Self, TypeAlias
from urllib.parse import urlsplit

import httpx

from reconciler import errors
from reconciler.client.answers import _with_message
from reconciler.client.pacing import Pacer
from reconciler.client.reading import JSONObject, _AnswerReader
from reconciler.client.retry import (
    _AttemptFailedError,
    _backoff,
    _Retry,
    _retryable,
    _server_hint,
)
from reconciler.client.settings import (
    ClientSettings,
    _api_tls,
    _authority,
    _check_header_value,
    _check_settings,
    _ssl_context,
    _v1_hint,
    validate_base_url,
)
from reconciler.client.text import _format_seconds, sanitize
from reconciler.client.trace import report_attempt
from reconciler.client.transport import ApiTransport
from reconciler.errors import AmbiguousResultError, ApiConnectionError, ApiError

_KEEPALIVE_EXPIRY = 4.0  # seconds an idle connection is kept for reuse
BETA_HEADER = ("OpenAI-Beta", "assistants=v2")

Sleep: TypeAlias = Callable[[float], Awaitable[None]]
Clock: TypeAlias = Callable[[], float]

def _headers(settings: ClientSettings) -> dict[str, str]:
    """What every request carries: the beta opt-in, the key as the host's style wants it."""
    headers = {
        BETA_HEADER[0]: BETA_HEADER[1],
        "User-Agent": "reconciler",
        "Accept": "application/json",
        "Accept-Encoding": "gzip, deflate",  # decoded here, bounded (see _Inflater)
    }
    if settings.api_key:
        if settings.auth == "azure":
            headers["api-key"] = settings.api_key
        else:
            headers["Authorization"] = f"Bearer {settings.api_key}"
    if settings.organization:
        headers["OpenAI-Organization"] = settings.organization
    if settings.project:
        headers["OpenAI-Project"] = settings.project
    return headers


class _Cookies(httpx.Cookies):
    """Cookies kept as httpx keeps them, without httpx's cost on every answer that sets none
    (it builds an ``email.message.Message`` of the headers for ``http.cookiejar`` each time)."""

    def extract_cookies(self, response: httpx.Response) -> None:
        if "set-cookie" in response.headers:
            super().extract_cookies(response)


class _ApiClient(httpx.AsyncClient):
    """httpx's client with :class:`_Cookies` as its cookie store (httpx reads and updates it
    only through the ``cookies`` property)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._answer_cookies = _Cookies()

    @property
    def cookies(self) -> httpx.Cookies:
        return self._answer_cookies

    @cookies.setter
    def cookies(self, cookies: Any) -> None:  # httpx's CookieTypes
        self._answer_cookies = _Cookies(cookies)


def _http(settings: ClientSettings, url: str,
          transport: httpx.AsyncBaseTransport | None) -> httpx.AsyncClient:
    """The client: over :class:`ApiTransport`, unless given a transport or proxied."""
    # An idle connection is dropped before common servers drop it (uvicorn after 5 s):
    # reusing one the server is closing loses the request, and a lost create is ambiguous.
    limits = httpx.Limits(max_connections=settings.concurrency,
                          max_keepalive_connections=settings.concurrency,
                          keepalive_expiry=_KEEPALIVE_EXPIRY)
    verify: ssl.SSLContext | bool = True  # used by httpx only on transports it builds
    if transport is None and _proxied(url):
        verify = _ssl_context(settings.ca_bundle)  # httpx's own transport, through the proxy
    elif transport is None:
        transport = ApiTransport(ssl_context=_api_tls(settings.ca_bundle),
                                 keepalive_expiry=_KEEPALIVE_EXPIRY,
                                 max_idle=settings.concurrency)
    return _ApiClient(
        base_url=url + "/",
        headers=_headers(settings),
        timeout=settings.timeout,
        transport=transport,
        verify=verify,
        limits=limits,
        follow_redirects=False,
    )


def _proxied(url: str) -> bool:
    """Whether the environment (``HTTPS_PROXY``, ``HTTP_PROXY``, ``ALL_PROXY``, or the
    system's settings, as httpx reads them) names a proxy for ``url``'s scheme. httpx then
    routes requests through it with its own transport, honouring ``NO_PROXY`` itself, as it
    did before :class:`ApiTransport`: httpx ignores those variables once given a transport."""
    proxies = urllib.request.getproxies()
    return bool(proxies.get(urlsplit(url).scheme) or proxies.get("all"))


def _ssl_error(exc: BaseException) -> ssl.SSLError | None:
    """The TLS error behind a connect failure, however deep httpx and anyio chained it."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, ssl.SSLError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def _os_reason(exc: BaseException) -> str:
    """The operating system's words for a connect failure ("Connection refused"), or ""."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, OSError) and current.strerror:
            return sanitize(current.strerror, 80)
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return ""


class HttpClient:
    """Requests to one API host; :class:`AssistantsClient` adds the endpoints.

    The settings and the base URL are checked (:func:`validate_base_url`) before anything
    else. ``transport`` is the seam for tests and the in-process emulator; ``sleep`` and
    ``clock`` (monotonic seconds: the 429 gate, pacing, retry deadlines) for tests that must
    not wait.
    """

    def __init__(
        self,
        settings: ClientSettings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Sleep = asyncio.sleep,
        clock: Clock = time.monotonic,
    ) -> None:
        _check_settings(settings)
        url = validate_base_url(
            settings.base_url,
            allow_insecure_http=settings.allow_insecure_http,
            has_key=bool(settings.api_key),
        )
        _check_header_value(settings.api_key, "API key")
        _check_header_value(settings.organization, "organization id")
        _check_header_value(settings.project, "project id")
        parts = urlsplit(url)
        self.settings = settings
        self.base_url = url
        self.host = _authority(parts.hostname or "", parts.port)
        self._reader = _AnswerReader(settings, self.host, _v1_hint(url))
        self._sleep = sleep
        self._clock = clock
        self._pacer = Pacer(max_wait=settings.max_retry_wait)  # see reconciler.client.pacing
        self._semaphore = asyncio.Semaphore(max(1, settings.concurrency))
        self._not_before = 0.0  # monotonic time before which no request starts (429 gate)
        self.requests_sent = 0
        self._http = _http(settings, url, transport)
        self._url_prefix = url + "/"
        self._query: dict[str, str | int] = (
            {"api-version": settings.api_version} if settings.api_version else {})

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

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
        """The answer to one request, retried as ``retry`` allows within ``max_retry_time``."""
        settings = self.settings
        operation = sanitize(operation, 200)  # ids in it may come from the server
        attempt = 0
        deadline: float | None = None
        while True:
            async with self._semaphore:
                await self._wait_for_start()  # counted in flight by the pacer from here
                now = self._clock()
                if deadline is None:
                    deadline = now + settings.max_retry_time
                    budget = settings.timeout
                else:  # a retry gets what is left of the request's time, a second at least
                    budget = max(min(settings.timeout, deadline - now),
                                 min(settings.timeout, 1.0))
                self.requests_sent += 1
                try:
                    return await self._attempt(
                        method, path, params=params, json=json,
                        attempt=attempt, budget=budget, operation=operation, retry=retry,
                    )
                except _AttemptFailedError as failed:
                    outcome = failed
                finally:
                    self._pacer.release()
            delay = self._delay_before_retry(outcome, attempt, deadline, retry, operation)
            attempt += 1
            await self._sleep(delay)

    def _delay_before_retry(self, outcome: _AttemptFailedError, attempt: int, deadline: float,
                            retry: _Retry, operation: str) -> float:
        """Seconds to wait before the next attempt; raises the failure when none may follow
        (not retryable, out of retries, or the wait would outlast ``max_retry_time``)."""
        settings = self.settings
        failure = outcome.error
        hint = _server_hint(outcome.headers) if outcome.headers is not None else None
        if failure.status == 429:
            self._close_gate(min(hint, settings.max_retry_wait) if hint is not None
                             else _backoff(attempt, settings.max_backoff))
        retryable = outcome.retryable and _retryable(failure, retry)
        if not retryable or attempt >= settings.max_retries:
            self._raise(failure, outcome.cause, retry, operation)
        tries = f"{attempt + 1} attempt{'s' if attempt else ''}"
        remaining = deadline - self._clock()
        if hint is not None and hint > remaining:
            self._raise(_with_message(
                failure,
                f"{failure.api_message}; the server asked to wait {_format_seconds(hint)} s "
                f"before retrying; giving up after {tries}",
            ), outcome.cause, retry, operation)
        delay = (min(hint, settings.max_retry_wait) if hint is not None
                 else _backoff(attempt, settings.max_backoff))
        if delay >= remaining:
            self._raise(_with_message(
                failure,
                f"{failure.api_message}; giving up after {tries} in "
                f"{_format_seconds(settings.max_retry_time - remaining)} s",
            ), outcome.cause, retry, operation)
        return delay

    @staticmethod
    def _raise(failure: ApiError, cause: BaseException | None, retry: _Retry,
               operation: str) -> NoReturn:
        if retry is _Retry.UNSAFE and isinstance(failure, errors.ServerError):
            raise AmbiguousResultError(
                f"{failure.api_message}; the request may have taken effect",
                status=failure.status,
                request_id=failure.request_id,
                operation=operation,
                host=failure.host,
            ) from cause
        if cause is None or cause is failure:
            raise failure
        raise failure from cause

    async def _attempt(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | int] | None,
        json: Any,
        attempt: int,
        budget: float,
        operation: str,
        retry: _Retry,
    ) -> JSONObject:
        """One request and its whole answer within ``budget`` seconds."""
        answered = False
        request = self._build_request(method, path, params=params, json=json,
                                      attempt=attempt, operation=operation)
        started, status = time.monotonic(), None
        failure: BaseException | None = None
        try:
            async with asyncio.timeout(budget):
                response = await self._http.send(request, stream=True)
                answered, status = True, response.status_code
                self._pacer.learn(response.headers, self._clock(), refused=status == 429)
                try:
                    answer = await self._reader.read(response, operation)
                finally:
                    await response.aclose()
        except (TimeoutError, httpx.TransportError) as exc:
            failure = exc
            raise self._fault(exc, answered=answered, budget=budget, operation=operation,
                              retry=retry) from None
        except BaseException as exc:  # cancelled, or an answer refused while read: still told
            failure = exc
            raise
        finally:
            report_attempt(request, status, started, attempt, failure)
        return self._reader.interpret(answer, operation)

    def _build_request(self, method: str, path: str, *,
                       params: Mapping[str, str | int] | None, json: Any, attempt: int,
                       operation: str) -> httpx.Request:
        """The attempt's request; one httpx cannot build (a bad URL) fails for good.

        The URL is built whole here and parsed once: merging a relative path and query
        parameters into the base URL, as httpx would, parses it three times (a fifth of the
        client's CPU per request)."""
        url = self._url_prefix + path
        query = {**self._query, **params} if params else self._query
        if query:
            url += "?" + str(httpx.QueryParams(query))
        try:
            return self._http.build_request(
                method, url, json=json, headers={"x-reconciler-retry-count": str(attempt)},
            )
        except (httpx.InvalidURL, ValueError, UnicodeError) as exc:
            raise _AttemptFailedError(
                ApiError("the request URL is not valid", operation=operation, host=self.host),
                exc, retryable=False,
            ) from None

    def _fault(self, exc: TimeoutError | httpx.TransportError, *, answered: bool,
               budget: float, operation: str, retry: _Retry) -> _AttemptFailedError:
        """What a timeout or transport fault means: retryable, ambiguous, or final."""
        if isinstance(exc, TimeoutError):
            return self._transport_failure(
                operation, f"timed out after {_format_seconds(budget)} s", exc,
                sent=True, retry=retry,
            )
        if isinstance(exc, httpx.TimeoutException):
            sent = answered or not isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout)
            return self._transport_failure(
                operation, f"timed out after {_format_seconds(budget)} s", exc,
                sent=sent, retry=retry,
            )
        if isinstance(exc, httpx.ConnectError):
            return self._connect_failure(operation, exc, retry)
        if isinstance(exc, httpx.UnsupportedProtocol):
            return _AttemptFailedError(ApiConnectionError(
                f"the URL scheme of {self.host} is not supported: use http:// or https://",
                operation=operation,
            ), exc, retryable=False)
        if isinstance(exc, httpx.LocalProtocolError):  # its text may quote a header: never shown
            return _AttemptFailedError(ApiConnectionError(
                f"could not send the request to {self.host}: it is not valid HTTP "
                f"({type(exc).__name__})",
                operation=operation,
            ), None, retryable=False)
        return self._transport_failure(
            operation, f"connection lost ({type(exc).__name__})", exc,
            sent=True, retry=retry,
        )

    def _connect_failure(self, operation: str, exc: httpx.ConnectError,
                         retry: _Retry) -> _AttemptFailedError:
        tls = _ssl_error(exc)
        if isinstance(tls, ssl.SSLCertVerificationError):
            reason = sanitize(tls.verify_message or tls.reason or "certificate verify failed",
                              120)
            return _AttemptFailedError(ApiConnectionError(
                f"TLS certificate verification failed for {self.host}: {reason}; "
                "pass --ca-bundle FILE if the host uses a private CA",
                operation=operation,
            ), exc, retryable=False)
        if tls is not None and not isinstance(
            tls, ssl.SSLEOFError | ssl.SSLZeroReturnError | ssl.SSLSyscallError
        ):
            reason = sanitize(tls.reason or type(tls).__name__, 80).lower().replace("_", " ")
            return _AttemptFailedError(ApiConnectionError(
                f"the TLS handshake with {self.host} failed ({reason}): is it an https server?",
                operation=operation,
            ), exc, retryable=False)
        reason = _os_reason(exc)
        detail = f" ({reason})" if reason else ""
        return self._transport_failure(
            operation, f"could not connect to the API{detail}", exc, sent=False, retry=retry
        )

    def _transport_failure(self, operation: str, what: str, exc: BaseException, *, sent: bool,
                           retry: _Retry) -> _AttemptFailedError:
        if sent and retry is _Retry.UNSAFE:
            error: ApiError = AmbiguousResultError(
                f"{what} talking to {self.host}; the request may have taken effect",
                operation=operation,
            )
        else:
            error = ApiConnectionError(f"{what} talking to {self.host}", operation=operation)
        return _AttemptFailedError(error, exc)

    async def _wait_for_start(self) -> None:
        """Wait out the 429 gate, then the pacer's start time, counted in flight once this
        returns; a 429 that closes the gate meanwhile sends the request back to the gate."""
        while True:
            await self._wait_for_gate()
            pause = self._pacer.reserve(self._clock())
            if pause <= 0:
                return
            gate = self._not_before
            try:
                await self._sleep(pause)
            except BaseException:
                self._pacer.release()
                raise
            if self._not_before == gate:
                return
            self._pacer.release()

    async def _wait_for_gate(self) -> None:
        delay = self._not_before - self._clock()
        if delay > 0:
            await self._sleep(min(delay, self.settings.max_retry_wait))

    def _close_gate(self, seconds: float) -> None:
        """After a 429, hold every request back until the server's hint has passed."""
        self._not_before = max(self._not_before, self._clock() + seconds)
