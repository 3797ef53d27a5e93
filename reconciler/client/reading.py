"""Reading one answer off the wire, bounded, and turning it into a JSON object or our error.

An answer is read incrementally and refused past a size cap after decompression, which is
done here rather than by httpx so that it is bounded too; an error answer is only excerpted.
A redirect is not followed, and a success that is not a JSON object (or nests too deep) is an
error, not a crash further on.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any, TypeAlias

import httpx

from reconciler.client.answers import (
    _error_from_parts,
    _kind,
    _parse_json,
    _request_id,
    _TooDeepError,
)
from reconciler.client.retry import _AttemptFailedError
from reconciler.client.settings import ClientSettings
from reconciler.client.text import _EXCERPT_BYTES, _body_text, _format_bytes, sanitize
from reconciler.errors import ApiError

JSONObject: TypeAlias = dict[str, Any]


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


@dataclass(frozen=True)
class _AnswerReader:
    """How the answers of one host are read: the caps of ``settings``, the host named in
    messages, and ``hint``, what a 404 adds (see ``_v1_hint``)."""

    settings: ClientSettings
    host: str
    hint: str | None

    async def read(self, response: httpx.Response, operation: str) -> _Answer:
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

    def interpret(self, answer: _Answer, operation: str) -> JSONObject:
        status, headers, body = answer.status, answer.headers, answer.body
        if status >= 400:
            raise _AttemptFailedError(
                _error_from_parts(status, headers, body, operation, host=self.host,
                                  hint=self.hint),
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
