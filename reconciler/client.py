"""The one module that speaks HTTP: an async Assistants v2 client for runs and threads.

Why its own client rather than the official SDK: bounded concurrency over one connection
pool, a rate-limit gate shared by every request in flight, and a retry policy that knows a
``createRun`` is not idempotent (the API honours no idempotency key), so an ambiguous failure
is reported as :class:`AmbiguousResultError` for the caller to resolve from live state instead
of being retried blindly. Every HTTP status becomes a typed exception in one place.

The host is trusted for nothing: the base URL is checked before any request (TLS always
verified, the key never sent in clear to a host that is not this machine without an opt-in),
every attempt has one deadline for connect, send and the whole answer, answers are read
incrementally and refused past a size cap (after decompression, which is done here so that it
is bounded too), JSON is refused past a nesting depth before it is parsed, server-suggested
waits are capped, pagination refuses to loop, and whatever text the server sends is sanitized
before it can reach a terminal.
"""

from __future__ import annotations

import asyncio
import datetime
import email.utils
import enum
import functools
import html
import http
import ipaddress
import itertools
import json as jsonlib
import math
import os
import random
import re
import ssl
import time
import unicodedata
import zlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, NoReturn, TypeAlias
from urllib.parse import quote, urlsplit

import httpx

from reconciler import errors
from reconciler.errors import AmbiguousResultError, ApiConnectionError, ApiError, ConfigError

DEFAULT_BASE_URL = "https://api.openai.com/v1"
_POOL_SIZE = 8  # connections per httpx pool (see AssistantsClient.__init__)
_KEEPALIVE_EXPIRY = 4.0  # seconds an idle connection is kept for reuse
BETA_HEADER = ("OpenAI-Beta", "assistants=v2")

JSONObject: TypeAlias = dict[str, Any]
Sleep: TypeAlias = Callable[[float], Awaitable[None]]
AuthStyle: TypeAlias = Literal["bearer", "azure"]

_MIB = 1024 * 1024


@dataclass(frozen=True)
class ClientSettings:
    """Where and how to reach the API. ``api_key`` is kept out of ``repr``.

    ``timeout`` is the deadline of one attempt: connect, send and the whole answer.
    ``max_retry_wait`` caps any wait a server suggests (``retry-after``, ``retry-after-ms``);
    ``max_retry_time`` bounds one request, its retries and waits included (its first attempt
    always gets the whole ``timeout``). ``max_response_bytes`` caps an answer after
    decompression, ``max_json_depth`` its nesting, ``max_pages`` the pages of one thread's run
    list. Plain http carries the key only to loopback hosts unless ``allow_insecure_http``.
    """

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
    ca_bundle: str | None = None
    allow_insecure_http: bool = False
    max_retry_wait: float = 60.0
    max_retry_time: float = 300.0
    max_response_bytes: int = 32 * _MIB
    max_json_depth: int = 128
    max_pages: int = 1000

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> ClientSettings:
        """The official SDK's variable names; explicit overrides (flags, config) win."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {
            "base_url": env.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL,
            "api_key": env.get("OPENAI_API_KEY") or None,
            "organization": env.get("OPENAI_ORG_ID") or None,
            "project": env.get("OPENAI_PROJECT_ID") or None,
            "ca_bundle": env.get("SSL_CERT_FILE") or env.get("REQUESTS_CA_BUNDLE") or None,
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


# -- text from the server ------------------------------------------------------------------

_ANSI = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"  # CSI: colours, cursor moves, erase
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"  # OSC: window titles, hyperlinks
    r"|\x1b[PX^_][^\x1b]*(?:\x1b\\)?"  # DCS, SOS, PM, APC strings
    r"|\x1b[ -/]*[0-~]?"  # any other escape
    r"|\x9b[0-?]*[ -/]*[@-~]"  # 8-bit CSI
)
_BIDI_AND_INVISIBLE = (
    "\u061c\u200b\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\ufeff"
)


def _control_table() -> dict[int, str | None]:
    table: dict[int, str | None] = {}
    for code in itertools.chain(range(0x00, 0x20), range(0x7F, 0xA0)):
        table[code] = " " if chr(code) in "\t\n\r\x0b\x0c\x1c\x1d\x1e\x1f\x85" else None
    for char in _BIDI_AND_INVISIBLE:
        table[ord(char)] = None
    for code in range(0xD800, 0xE000):  # lone surrogates cannot be printed
        table[code] = "\ufffd"
    table[0x2028] = table[0x2029] = " "
    return table


_CONTROLS = _control_table()


def sanitize(text: str, limit: int = 200) -> str:
    """Server-provided text made safe for one terminal line.

    ANSI escapes, control and bidi characters are removed, whitespace (newlines included) is
    folded to single spaces, and the result is cut to at most ``limit`` characters (``…``
    marks a cut).
    """
    limit = max(1, limit)
    text = str(text)[: max(limit * 8, 4096)]
    text = _ANSI.sub("", text).translate(_CONTROLS)
    text = " ".join(text.split())
    if len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return text


def _html_text(text: str) -> str:
    """An HTML page's ``<title>``, else its text without tags, scripts and styles."""
    lower = text.lower()
    start = lower.find("<title")
    if start >= 0:
        opened = lower.find(">", start)
        closed = lower.find("</title", opened) if opened >= 0 else -1
        if 0 <= opened < closed:
            title = " ".join(html.unescape(text[opened + 1 : closed]).split())
            if title:
                return title
    kept: list[str] = []
    position = 0
    while True:
        starts = [(lower.find(opener, position), closer)
                  for opener, closer in (("<script", "</script"), ("<style", "</style"),
                                         ("<!--", "-->"))]
        found = [(at, closer) for at, closer in starts if at >= 0]
        if not found:
            kept.append(text[position:])
            break
        at, closer = min(found)
        kept.append(text[position:at])
        end = lower.find(closer, at)
        if end < 0:
            break
        after = lower.find(">", end + len(closer) - 1)
        position = after + 1 if after >= 0 else len(text)
    stripped = re.sub(r"<[^<>]*>", " ", "".join(kept))
    return html.unescape(stripped)


def _body_text(headers: httpx.Headers, body: bytes | bytearray) -> str:
    """A short, sanitized excerpt of a body that is not the spec's JSON."""
    sample = body[:_EXCERPT_BYTES]
    charset = _charset(headers)
    try:
        text = sample.decode(charset, errors="replace")
    except LookupError:
        text = sample.decode("utf-8", errors="replace")
    content_type = headers.get("content-type", "").lower()
    if "html" in content_type or text.lstrip().startswith("<"):
        text = _html_text(text)
    return sanitize(text)


def _charset(headers: httpx.Headers) -> str:
    content_type: str = headers.get("content-type", "")
    for part in content_type.split(";")[1:]:
        name, _, value = part.partition("=")
        if name.strip().lower() == "charset" and value.strip():
            return value.strip().strip('"')[:40]
    return "utf-8"


def _format_bytes(count: int) -> str:
    if count >= _MIB and count % _MIB == 0:
        return f"{count // _MIB} MiB"
    if count >= 1024 and count % 1024 == 0:
        return f"{count // 1024} KiB"
    return f"{count} bytes"


def _format_seconds(seconds: float) -> str:
    return f"{seconds:.0f}" if seconds >= 10 else f"{seconds:.3g}"


# -- base URL ------------------------------------------------------------------------------


def _shown_url(url: str) -> str:
    """The URL as a message may show it: sanitized, any user name and password hidden."""
    text = sanitize(url, 200)
    scheme, sep, rest = text.partition("://")
    if sep:
        authority, slash, path = rest.partition("/")
        if "@" in authority:
            text = f"{scheme}://***@{authority.rpartition('@')[2]}{slash}{path}"
    return text


def _is_loopback(host: str) -> bool:
    name = host.strip("[]").rstrip(".").lower()
    if name == "localhost":
        return True
    try:
        address = ipaddress.ip_address(name.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


def _authority(hostname: str, port: int | None) -> str:
    host = f"[{hostname}]" if ":" in hostname else hostname
    return host if port is None else f"{host}:{port}"


def validate_base_url(url: str, *, allow_insecure_http: bool = False, has_key: bool = True) -> str:
    """The base URL normalized (lower-case scheme and host, no trailing ``/``), or ConfigError.

    Plain http carries the API key only to loopback hosts (127.0.0.0/8, ::1, ``localhost``)
    unless ``allow_insecure_http``; without a key any host will do.
    """
    shown = _shown_url(url)
    text = url.strip()
    if not text:
        raise ConfigError("the base URL is empty")
    if any(char.isspace() or unicodedata.category(char)[0] == "C" for char in text):
        raise ConfigError(
            f"base URL {shown!r} is not a valid URL (it contains spaces or control characters)"
        )
    try:
        parts = urlsplit(text)
        port = parts.port
        hostname = parts.hostname
    except ValueError:
        raise ConfigError(f"base URL {shown!r} is not a valid URL") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise ConfigError(f"base URL {shown!r} must start with http:// or https://")
    if "@" in parts.netloc:
        raise ConfigError(
            f"base URL {shown!r} must not carry a user name or password; "
            "give the key in OPENAI_API_KEY"
        )
    if not hostname:
        raise ConfigError(f"base URL {shown!r} has no host")
    if parts.query or parts.fragment or "?" in text or "#" in text:
        raise ConfigError(f"base URL {shown!r} must not have a query or a fragment")
    try:
        httpx.URL(text)
    except (httpx.InvalidURL, ValueError, UnicodeError):
        raise ConfigError(f"base URL {shown!r} is not a valid URL") from None
    authority = _authority(hostname, port)
    if scheme == "http" and has_key and not allow_insecure_http and not _is_loopback(hostname):
        raise ConfigError(
            f"refusing to send the API key over plain http to {sanitize(authority, 100)}; "
            "use https, or pass --allow-insecure-http"
        )
    return f"{scheme}://{authority}{parts.path.rstrip('/')}"


def _v1_hint(normalized: str) -> str | None:
    """What a 404 adds when the base URL lacks the ``/v1`` the API lives under."""
    path = urlsplit(normalized).path
    segments = [s.lower() for s in path.split("/") if s]
    if (segments and segments[-1] == "v1") or "openai" in segments:
        return None
    return f"the base URL has no /v1: did you mean {normalized}/v1?"


def insecure_warning(settings: ClientSettings) -> str | None:
    """The warning to print when the key goes over plain http to a host not on this machine."""
    if not settings.api_key or not settings.allow_insecure_http:
        return None
    try:
        url = validate_base_url(settings.base_url, allow_insecure_http=True)
    except ConfigError:
        return None
    parts = urlsplit(url)
    if parts.scheme != "http" or _is_loopback(parts.hostname or ""):
        return None
    host = sanitize(_authority(parts.hostname or "", parts.port), 100)
    return (
        f"warning: the API key is sent unencrypted over plain http to {host} "
        "(--allow-insecure-http); anyone on the path can read it"
    )


@functools.cache
def _default_ssl_context() -> ssl.SSLContext:
    return httpx.create_ssl_context()  # certifi's CAs, as httpx would use; built once


def _ssl_context(ca_bundle: str | None) -> ssl.SSLContext:
    if ca_bundle is None:
        return _default_ssl_context()
    try:
        if os.path.isdir(ca_bundle):
            return ssl.create_default_context(capath=ca_bundle)
        return ssl.create_default_context(cafile=ca_bundle)
    except (OSError, ssl.SSLError, ValueError) as exc:
        reason = sanitize(getattr(exc, "strerror", None) or str(exc) or type(exc).__name__, 120)
        raise ConfigError(
            f"the CA bundle {sanitize(ca_bundle, 200)} cannot be used ({reason})"
        ) from None


def _check_header_value(value: str | None, what: str) -> None:
    if value is not None and not all(0x21 <= ord(char) <= 0x7E for char in value):
        raise ConfigError(
            f"the {what} contains characters that cannot be sent in an HTTP header "
            "(spaces, control characters or non-ASCII)"
        )


def _check_settings(settings: ClientSettings) -> None:
    numbers: list[tuple[float, str, bool]] = [  # (value, name, may it be zero)
        (settings.timeout, "request timeout", False),
        (settings.max_retry_wait, "max_retry_wait", True),
        (settings.max_retry_time, "max_retry_time", True),
        (settings.max_backoff, "max_backoff", True),
    ]
    for value, name, zero_ok in numbers:
        if (not isinstance(value, int | float) or math.isnan(value) or value < 0
                or (value == 0 and not zero_ok)):
            kind = "non-negative" if zero_ok else "positive"
            raise ConfigError(f"the {name} must be a {kind} number of seconds, not {value!r}")
    for count, name in ((settings.max_response_bytes, "max_response_bytes"),
                        (settings.max_json_depth, "max_json_depth"),
                        (settings.max_pages, "max_pages")):
        if not isinstance(count, int) or count < 1:
            raise ConfigError(f"{name} must be a positive whole number, not {count!r}")


# -- answers -------------------------------------------------------------------------------

_EXCERPT_BYTES = 64 * 1024  # what is read of an error answer, and shown of a bad one
_MAX_MESSAGE = 500
_TO_SQUARE = bytes.maketrans(b"{}", b"[]")
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


def _nesting_exceeds(body: bytes | bytearray, limit: int) -> bool:
    """Whether JSON text nests deeper than ``limit``, found without recursion.

    Strings are dropped (escapes first), brackets kept as one kind; then each pass removes the
    innermost pairs, so a balanced text of depth d empties in d passes. What no pass can
    remove (unbalanced text) counts at its full length, as the parser would go that deep.
    """
    if body.count(b"[") + body.count(b"{") <= limit:
        return False
    text: bytes | bytearray = body
    if b"\\" in text:
        text = text.replace(b"\\\\", b"").replace(b'\\"', b"")
    text = b"".join(text.split(b'"')[::2]).translate(_TO_SQUARE, _NOT_BRACKETS)
    too_deep = b"[" * (limit + 1)
    passes = 0
    while text:
        if too_deep in text:
            return True
        shorter = text.replace(b"[]", b"")
        if len(shorter) == len(text):
            return passes + text.count(b"[") > limit  # what is left: "]]…[[", unbalanced
        passes += 1
        if passes > limit:
            return True
        text = shorter
    return False


def _parse_json(body: bytes | bytearray, max_depth: int) -> Any:
    """Parsed JSON; ValueError when it is not JSON, _TooDeep past ``max_depth``."""
    if _nesting_exceeds(body, max_depth):
        raise _TooDeepError
    try:
        return jsonlib.loads(body)
    except RecursionError:
        raise _TooDeepError from None


class _TooDeepError(Exception):
    """JSON nested deeper than the client accepts."""


def _kind(value: object) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return "null" if value is None else type(value).__name__


def _opt_str(value: object) -> str | None:
    return None if value is None else sanitize(str(value), 100)


def _request_id(headers: httpx.Headers) -> str | None:
    return sanitize(headers.get("x-request-id") or "", 100) or None


def _reason(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "the server gave no reason"


def _message_of(value: object) -> str:
    """A message from a non-spec error field: a string, or FastAPI's list of ``msg``."""
    if isinstance(value, str):
        return sanitize(value)
    if isinstance(value, list):
        messages = [str(item["msg"]) for item in value[:10]
                    if isinstance(item, dict) and isinstance(item.get("msg"), str)]
        if messages:
            return sanitize("; ".join(messages))
    if value is None:
        return ""
    return sanitize(jsonlib.dumps(value, ensure_ascii=False, default=str)[:4096])


def _error_details(
    status: int, headers: httpx.Headers, body: bytes | bytearray
) -> tuple[str, str | None, str | None, str | None]:
    """(message, type, code, param) of an error answer, whatever its shape."""
    message = ""
    error_type = code = param = None
    try:
        parsed: Any = _parse_json(body, 32) if body.strip() else None
        is_json = bool(body.strip())
    except (ValueError, _TooDeepError):
        parsed, is_json = None, False
    if isinstance(parsed, dict):
        inner = parsed.get("error")
        if isinstance(inner, dict):
            error_type = _opt_str(inner.get("type"))
            code = _opt_str(inner.get("code"))
            param = _opt_str(inner.get("param"))
            if isinstance(inner.get("message"), str):
                message = sanitize(inner["message"], _MAX_MESSAGE)
            message = message or code or error_type or ""
        elif inner is not None:
            message = _message_of(inner)
        for key in ("message", "detail", "title", "error_description"):
            if not message and key in parsed:
                message = _message_of(parsed[key])
        if not message and parsed:
            message = _message_of(parsed)
    elif is_json:
        message = _message_of(parsed)
    else:
        message = _body_text(headers, body)
    return message or _reason(status), error_type, code, param


#: The 400s apply acts on, told apart once, here, by the service's own words (the API gives
#: them no code): "Thread thread_X already has an active run run_Y.", "Cannot cancel run with
#: status 'completed'.", 'Runs in status "expired" do not accept tool outputs.'.
_BAD_REQUEST_KINDS: tuple[tuple[str, type[ApiError]], ...] = (
    ("already has an active run", errors.ThreadBusyError),
    ("cannot cancel run", errors.RunNotCancellableError),
    ("do not accept tool outputs", errors.ToolOutputsNotAcceptedError),
)

_STATUS_ERRORS: dict[int, type[ApiError]] = {
    400: errors.BadRequestError,
    401: errors.AuthenticationError,
    403: errors.PermissionDeniedError,
    404: errors.NotFoundError,
    409: errors.ConflictError,
    422: errors.BadRequestError,
    429: errors.RateLimitError,
}


def _error_class(status: int, message: str) -> type[ApiError]:
    cls = _STATUS_ERRORS.get(status)
    if cls is None:
        cls = errors.ServerError if status >= 500 else ApiError
    if cls is errors.BadRequestError:
        lowered = message.lower()
        cls = next((kind for words, kind in _BAD_REQUEST_KINDS if words in lowered), cls)
    return cls


def _error_from_parts(
    status: int, headers: httpx.Headers, body: bytes | bytearray, operation: str, *,
    host: str | None, hint: str | None = None,
) -> ApiError:
    message, error_type, code, param = _error_details(status, headers, body)
    if status == 404 and hint:
        message = f"{message}; {hint}"
    return _error_class(status, message)(
        message,
        status=status,
        error_type=error_type,
        code=code,
        param=param,
        request_id=_request_id(headers),
        operation=operation,
        host=host,
    )


def _response_host(response: httpx.Response) -> str | None:
    try:
        url = response.request.url
    except RuntimeError:
        return None
    return _authority(url.host, url.port) if url.host else None


def error_from_response(
    response: httpx.Response, operation: str, *, host: str | None = None,
    hint: str | None = None,
) -> ApiError:
    """Map an error response to its typed exception: the status once, the server's message
    (the spec's ``{"error": {"message": …}}``, else a sanitized excerpt of whatever it sent),
    the request id and the host. ``hint`` is added to a 404's message."""
    try:
        body = response.content
    except httpx.ResponseNotRead:
        body = b""
    return _error_from_parts(
        response.status_code, response.headers, body[:_EXCERPT_BYTES], operation,
        host=host if host is not None else _response_host(response), hint=hint,
    )


def _with_message(error: ApiError, message: str) -> ApiError:
    """The same error (same class and details) saying ``message``."""
    return type(error)(
        message,
        status=error.status,
        error_type=error.error_type,
        code=error.code,
        param=error.param,
        request_id=error.request_id,
        operation=error.operation,
        host=error.host,
    )


# -- retry hints ---------------------------------------------------------------------------


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


# -- reading a body ------------------------------------------------------------------------


class _Inflater:
    """Bounded decoding of ``content-encoding``: never more output than asked for."""

    def __init__(self, encoding: str) -> None:
        self.encoding = encoding
        self._zlib: Any = None
        self._raw_fallback = False
        if encoding in ("gzip", "x-gzip"):
            self._zlib = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif encoding == "deflate":
            self._zlib = zlib.decompressobj(zlib.MAX_WBITS)
            self._raw_fallback = True
        self._started = False

    @property
    def complete(self) -> bool:
        return self._zlib is None or bool(self._zlib.eof)

    def feed(self, data: bytes, into: bytearray, limit: int) -> None:
        """Append the output for ``data`` to ``into``, stopping once it holds more than
        ``limit`` bytes (raises zlib.error on bad data). Output comes in small pieces, so
        nothing much beyond ``into`` is ever held."""
        if self._zlib is None:
            into += data[: max(0, limit + 1 - len(into))]
            return
        while data and len(into) <= limit and not self._zlib.eof:
            room = min(limit + 1 - len(into), _INFLATE_PIECE)
            try:
                piece = self._zlib.decompress(data, room)
            except zlib.error:
                if not (self._raw_fallback and not self._started):
                    raise
                self._raw_fallback = False  # deflate without the zlib wrapper (old servers)
                self._zlib = zlib.decompressobj(-zlib.MAX_WBITS)
                continue
            self._started = True
            tail = self._zlib.unconsumed_tail
            if not piece and len(tail) == len(data):
                break
            into += piece
            data = tail


_ENCODINGS = ("", "identity", "gzip", "x-gzip", "deflate")
_INFLATE_PIECE = 256 * 1024  # the most one decompress call may return


@dataclass
class _Answer:
    status: int
    headers: httpx.Headers
    body: bytes | bytearray


class _AttemptFailedError(Exception):
    """One attempt failed; ``retryable`` is False when no retry can help."""

    def __init__(self, error: ApiError, cause: BaseException | None, *, retryable: bool = True,
                 headers: httpx.Headers | None = None) -> None:
        super().__init__(str(error))
        self.error = error
        self.cause = cause
        self.retryable = retryable
        self.headers = headers


def _ssl_error(exc: BaseException) -> ssl.SSLError | None:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, ssl.SSLError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def _os_reason(exc: BaseException) -> str:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, OSError) and current.strerror:
            return sanitize(current.strerror, 80)
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return ""


class _Retry(enum.Enum):
    """How a request may be retried."""

    SAFE = "safe"  # reads and idempotent writes: retry on 429, 5xx and transport faults
    UNSAFE = "unsafe"  # may take effect twice: retry only when the server surely did nothing


def _segment(value: str) -> str:
    """One path segment: an id can never add segments, a query or a fragment."""
    return quote(value, safe="")


class AssistantsClient:
    """Async client for the run and thread endpoints reconciler needs.

    Use as ``async with AssistantsClient(settings) as client``. ``transport`` is the seam for
    tests (``httpx.MockTransport``) and for the in-process emulator (``httpx.ASGITransport``).
    The base URL is checked (:func:`validate_base_url`) before anything else.
    """

    def __init__(
        self,
        settings: ClientSettings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Sleep = asyncio.sleep,
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
        self._hint = _v1_hint(url)
        self._sleep = sleep
        self._semaphore = asyncio.Semaphore(max(1, settings.concurrency))
        self._not_before = 0.0  # monotonic time before which no request starts (429 gate)
        self.requests_sent = 0
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
        params = {"api-version": settings.api_version} if settings.api_version else None
        # httpcore scans every pooled connection on each request, so one large pool costs
        # CPU per request in proportion to its size; several small pools keep it flat.
        shards = 1 if transport is not None else -(-settings.concurrency // _POOL_SIZE)
        shards = max(1, shards)
        per_shard = max(1, -(-settings.concurrency // shards))
        # An idle connection is dropped before common servers drop it (uvicorn after 5 s):
        # reusing one the server is closing loses the request, and a lost create is ambiguous.
        limits = httpx.Limits(max_connections=per_shard, max_keepalive_connections=per_shard,
                              keepalive_expiry=_KEEPALIVE_EXPIRY)
        # Always a verifying context: httpx uses it for https whatever the scheme's spelling.
        verify = _ssl_context(settings.ca_bundle)
        self._pools = [
            httpx.AsyncClient(
                base_url=url + "/",
                headers=headers,
                params=params,
                timeout=settings.timeout,
                limits=limits,
                transport=transport,
                verify=verify,
                follow_redirects=False,
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

    def _list_error(self, thread_id: str, message: str) -> ApiError:
        thread = sanitize(thread_id, 80)
        return ApiError(
            f"the server's run list for {thread} {message}",
            operation=f"list runs of {thread}",
            host=self.host,
        )

    def _page_items(self, page: JSONObject, thread_id: str) -> list[JSONObject]:
        data = page.get("data")
        if not isinstance(data, list):
            raise self._list_error(thread_id, "has no 'data' array")
        for item in data:
            if not isinstance(item, dict):
                raise self._list_error(thread_id, f"has an item that is not an object "
                                                  f"({_kind(item)})")
        return data

    async def list_runs(self, thread_id: str, *, page_size: int = 100) -> list[JSONObject]:
        """Every run of a thread, newest first, following the cursor to the end.

        A list that repeats a cursor or a run, or goes on past ``max_pages``, is refused (it
        would loop, or be wrong); one that ignores ``limit``, omits ``has_more`` (the end) or
        ``last_id`` (the last item's id is the cursor) is read as the API would mean it.
        """
        runs: list[JSONObject] = []
        seen_runs: set[str] = set()
        seen_cursors: set[str] = set()
        after: str | None = None
        for page_number in itertools.count(1):
            if page_number > self.settings.max_pages:
                raise self._list_error(
                    thread_id,
                    f"goes on past {self.settings.max_pages} pages: refusing to read more",
                )
            params: dict[str, str | int] = {"limit": page_size, "order": "desc"}
            if after:
                params["after"] = after
            page = await self._request(
                "GET",
                f"threads/{_segment(thread_id)}/runs",
                params=params,
                operation=f"list runs of {thread_id}",
                retry=_Retry.SAFE,
            )
            data = self._page_items(page, thread_id)
            for item in data:
                run_id = item.get("id")
                if isinstance(run_id, str):
                    if run_id in seen_runs:
                        raise self._list_error(thread_id,
                                               f"lists run {sanitize(run_id, 80)} twice")
                    seen_runs.add(run_id)
            runs.extend(data)
            has_more = page.get("has_more")
            if has_more is None or has_more is False:
                return runs
            if has_more is not True:
                raise self._list_error(thread_id, "has a 'has_more' that is not true or false")
            cursor = page.get("last_id")
            if not isinstance(cursor, str) or not cursor:
                cursor = data[-1].get("id") if data else None
            if not isinstance(cursor, str) or not cursor:
                raise self._list_error(
                    thread_id, "says there is more but gives no cursor to go on from"
                )
            if cursor in seen_cursors:
                raise self._list_error(
                    thread_id, f"repeats cursor {sanitize(cursor, 80)}: refusing to loop"
                )
            seen_cursors.add(cursor)
            after = cursor
        raise AssertionError("unreachable")  # pragma: no cover

    async def list_latest_run(self, thread_id: str) -> JSONObject | None:
        """The newest run of a thread: the only one that can be active."""
        page = await self._request(
            "GET",
            f"threads/{_segment(thread_id)}/runs",
            params={"limit": 1, "order": "desc"},
            operation=f"list runs of {thread_id}",
            retry=_Retry.SAFE,
        )
        data = self._page_items(page, thread_id)
        return data[0] if data else None

    async def get_run(self, thread_id: str, run_id: str) -> JSONObject:
        return await self._request(
            "GET",
            f"threads/{_segment(thread_id)}/runs/{_segment(run_id)}",
            operation=f"get run {run_id}",
            retry=_Retry.SAFE,
        )

    async def create_run(self, thread_id: str, body: Mapping[str, Any]) -> JSONObject:
        """Create a run. Raises :class:`AmbiguousResultError` when it may have been created."""
        return await self._request(
            "POST",
            f"threads/{_segment(thread_id)}/runs",
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
            f"threads/{_segment(thread_id)}/runs/{_segment(run_id)}",
            json={"metadata": dict(metadata)},
            operation=f"modify run {run_id}",
            retry=_Retry.SAFE,
        )

    async def cancel_run(self, thread_id: str, run_id: str) -> JSONObject:
        return await self._request(
            "POST",
            f"threads/{_segment(thread_id)}/runs/{_segment(run_id)}/cancel",
            operation=f"cancel run {run_id}",
            retry=_Retry.UNSAFE,
        )

    async def submit_tool_outputs(
        self, thread_id: str, run_id: str, outputs: list[dict[str, str]]
    ) -> JSONObject:
        return await self._request(
            "POST",
            f"threads/{_segment(thread_id)}/runs/{_segment(run_id)}/submit_tool_outputs",
            json={"tool_outputs": outputs},
            operation=f"submit tool outputs to run {run_id}",
            retry=_Retry.UNSAFE,
        )

    async def get_thread(self, thread_id: str) -> JSONObject:
        return await self._request(
            "GET",
            f"threads/{_segment(thread_id)}",
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
        settings = self.settings
        operation = sanitize(operation, 200)  # ids in it may come from the server
        attempt = 0
        deadline: float | None = None
        while True:
            async with self._semaphore:
                await self._wait_for_gate()
                now = time.monotonic()
                if deadline is None:
                    deadline = now + settings.max_retry_time
                    budget = settings.timeout
                else:  # a retry gets what is left of the request's time, a second at least
                    budget = max(min(settings.timeout, deadline - now),
                                 min(settings.timeout, 1.0))
                self.requests_sent += 1
                shard = self._in_flight.index(min(self._in_flight))
                self._in_flight[shard] += 1
                try:
                    return await self._attempt(
                        self._pools[shard], method, path, params=params, json=json,
                        attempt=attempt, budget=budget, operation=operation, retry=retry,
                    )
                except _AttemptFailedError as failed:
                    outcome = failed
                finally:
                    self._in_flight[shard] -= 1
            failure = outcome.error
            hint = _server_hint(outcome.headers) if outcome.headers is not None else None
            if failure.status == 429:
                self._close_gate(min(hint, settings.max_retry_wait) if hint is not None
                                 else _backoff(attempt, settings.max_backoff))
            retryable = outcome.retryable and self._retryable(failure, retry)
            if not retryable or attempt >= settings.max_retries:
                self._raise(failure, outcome.cause, retry, operation)
            tries = f"{attempt + 1} attempt{'s' if attempt else ''}"
            remaining = deadline - time.monotonic()
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
            attempt += 1
            await self._sleep(delay)

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
        pool: httpx.AsyncClient,
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
        try:
            request = pool.build_request(
                method, path, params=params, json=json,
                headers={"x-reconciler-retry-count": str(attempt)},
            )
        except (httpx.InvalidURL, ValueError, UnicodeError) as exc:
            raise _AttemptFailedError(
                ApiError("the request URL is not valid", operation=operation, host=self.host),
                exc, retryable=False,
            ) from None
        try:
            async with asyncio.timeout(budget):
                response = await pool.send(request, stream=True)
                answered = True
                try:
                    answer = await self._read(response, operation)
                finally:
                    await response.aclose()
        except TimeoutError as exc:
            raise self._transport_failure(
                operation, f"timed out after {_format_seconds(budget)} s", exc,
                sent=True, retry=retry,
            ) from None
        except httpx.TimeoutException as exc:
            sent = answered or not isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout)
            raise self._transport_failure(
                operation, f"timed out after {_format_seconds(budget)} s", exc,
                sent=sent, retry=retry,
            ) from None
        except httpx.ConnectError as exc:
            raise self._connect_failure(operation, exc, retry) from None
        except httpx.UnsupportedProtocol as exc:
            raise _AttemptFailedError(ApiConnectionError(
                f"the URL scheme of {self.host} is not supported: use http:// or https://",
                operation=operation,
            ), exc, retryable=False) from None
        except httpx.LocalProtocolError as exc:  # its text may quote a header: never shown
            raise _AttemptFailedError(ApiConnectionError(
                f"could not send the request to {self.host}: it is not valid HTTP "
                f"({type(exc).__name__})",
                operation=operation,
            ), None, retryable=False) from None
        except httpx.TransportError as exc:
            raise self._transport_failure(
                operation, f"connection lost ({type(exc).__name__})", exc,
                sent=True, retry=retry,
            ) from None
        return self._interpret(answer, operation)

    async def _read(self, response: httpx.Response, operation: str) -> _Answer:
        """The answer's body, decoded and capped; an error answer's is cut short instead."""
        status, headers = response.status_code, response.headers
        strict = 200 <= status < 300
        limit = self.settings.max_response_bytes if strict else _EXCERPT_BYTES
        if response.is_stream_consumed:  # built in memory (httpx.MockTransport)
            content = response.content
            if len(content) > limit and strict:
                raise _AttemptFailedError(self._too_large(status, headers, operation), None,
                                          retryable=False)
            return _Answer(status, headers, content[:limit])
        declared = headers.get("content-length", "").strip()
        if strict and declared.isdigit() and int(declared) > limit:
            raise _AttemptFailedError(self._too_large(status, headers, operation), None,
                                      retryable=False)
        encoding = headers.get("content-encoding", "").strip().lower()
        if encoding not in _ENCODINGS:
            if not strict:
                return _Answer(status, headers, b"")
            raise _AttemptFailedError(self._answer_error(
                f"the server's answer is encoded as {sanitize(encoding, 40)!r}, "
                "which reconciler did not ask for", status, headers, operation,
            ), None, retryable=False)
        inflater = _Inflater(encoding)
        body = bytearray()
        try:
            async for chunk in response.aiter_raw():
                inflater.feed(chunk, body, limit)
                if len(body) > limit:
                    if not strict:
                        del body[limit:]
                        break
                    raise _AttemptFailedError(self._too_large(status, headers, operation),
                                              None, retryable=False)
                if inflater.complete and encoding not in ("", "identity"):
                    break
        except zlib.error as exc:
            if strict:
                raise _AttemptFailedError(self._answer_error(
                    f"the server's answer is not valid {encoding} data",
                    status, headers, operation,
                ), exc, retryable=False) from None
        if strict and not inflater.complete:
            raise _AttemptFailedError(self._answer_error(
                f"the server's {encoding} answer is cut short", status, headers, operation,
            ), None, retryable=False)
        return _Answer(status, headers, body)

    def _answer_error(self, message: str, status: int, headers: httpx.Headers,
                      operation: str) -> ApiError:
        return ApiError(message, status=status, request_id=_request_id(headers),
                        operation=operation, host=self.host)

    def _too_large(self, status: int, headers: httpx.Headers, operation: str) -> ApiError:
        size = _format_bytes(self.settings.max_response_bytes)
        return self._answer_error(
            f"the server's answer is larger than {size}; refusing to read it",
            status, headers, operation,
        )

    def _interpret(self, answer: _Answer, operation: str) -> JSONObject:
        status, headers, body = answer.status, answer.headers, answer.body
        if status >= 400:
            raise _AttemptFailedError(
                _error_from_parts(status, headers, body, operation, host=self.host,
                                  hint=self._hint),
                None, headers=headers,
            )
        if status >= 300:
            location = sanitize(headers.get("location", ""), 200)
            where = f" to {location}" if location else ""
            raise _AttemptFailedError(self._answer_error(
                f"the server redirected{where}; reconciler does not follow redirects: "
                "point the base URL at the final address", status, headers, operation,
            ), None, retryable=False)
        try:
            parsed = _parse_json(body, self.settings.max_json_depth)
        except _TooDeepError:
            raise _AttemptFailedError(self._answer_error(
                f"the server's answer nests deeper than {self.settings.max_json_depth} levels",
                status, headers, operation,
            ), None, retryable=False) from None
        except ValueError:
            excerpt = _body_text(headers, body)
            raise _AttemptFailedError(self._answer_error(
                "the server answered with something that is not JSON"
                + (f": {excerpt!r}" if excerpt else " (an empty body)"),
                status, headers, operation,
            ), None, retryable=False) from None
        if not isinstance(parsed, dict):
            raise _AttemptFailedError(self._answer_error(
                f"the server answered with JSON that is not an object ({_kind(parsed)})",
                status, headers, operation,
            ), None, retryable=False)
        return parsed

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
            await self._sleep(min(delay, self.settings.max_retry_wait))

    def _close_gate(self, seconds: float) -> None:
        """After a 429, hold every request back until the server's hint has passed."""
        self._not_before = max(self._not_before, time.monotonic() + seconds)
