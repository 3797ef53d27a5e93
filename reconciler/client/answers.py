"""What an answer means: its JSON read within a nesting depth, an error status as our error.

Every HTTP status becomes a typed :class:`~reconciler.errors.ApiError` here, once, with the
server's message (the spec's ``{"error": {"message": …}}``, else a sanitized excerpt of
whatever it sent), the request id and the host; the 400s apply acts on are told apart by the
service's own words.
"""

from __future__ import annotations

import http
import json as jsonlib
from typing import Any

import httpx
import orjson

from reconciler import errors
from reconciler.client.settings import _authority
from reconciler.client.text import _EXCERPT_BYTES, _body_text, sanitize
from reconciler.errors import ApiError

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


_DIGITS_AS_ZERO = bytes.maketrans(b"123456789", b"000000000")
_NINETEEN_DIGITS = b"0" * 19


def _parse_json(body: bytes | bytearray, max_depth: int) -> Any:
    """Parsed JSON; ValueError when it is not JSON, _TooDeep past ``max_depth``."""
    if _nesting_exceeds(body, max_depth):
        raise _TooDeepError
    # orjson reads the usual answer in half json's time (a list of 20 runs: 90 µs with the
    # digit scan, against 170). It refuses what json accepts (NaN, lone surrogates, UTF-16),
    # and json reads those as it always has; it reads an integer past 64 bits as a float, so
    # a body with 19 digits in a row anywhere goes to json too.
    if body.translate(_DIGITS_AS_ZERO).find(_NINETEEN_DIGITS) < 0:
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            pass
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
