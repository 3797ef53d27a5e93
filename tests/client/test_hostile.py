"""The client against slow, wrong and hostile hosts: loopback stub servers, real sockets.

Every test is bounded in time (server-suggested waits go to a recording fake ``sleep``; the
only real waits are the short deadlines under test) and in memory (caps set low, peak
measured with ``tracemalloc``). Every failure is checked to carry no trace of the API key.
"""

from __future__ import annotations

import asyncio
import base64
import email.utils
import json
import re
import ssl
import time
import tracemalloc
import zlib
from collections.abc import Awaitable, Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import trustme

from reconciler import errors
from reconciler.client import (
    AssistantsClient,
    ClientSettings,
    JSONObject,
    insecure_warning,
    sanitize,
    validate_base_url,
)
from reconciler.client import settings as settings_module
from tests.client.stubs import Reply, StubRequest, StubServer, free_port

KEY = "sk-hostile-0123456789abcdefghijklmnop"
SECRETS = tuple(
    [KEY]
    + [base64.b64encode(text.encode()).decode().rstrip("=")
       for text in (KEY, f"Bearer {KEY}", f":{KEY}", f"{KEY}:")]
)
T = TypeVar("T")
Op = Callable[[AssistantsClient], Awaitable[Any]]
MIB = 1024 * 1024


class Sleeps:
    """A fake ``sleep`` that records what it was asked to wait and returns at once."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


def settings(base_url: str, **overrides: Any) -> ClientSettings:
    values: dict[str, Any] = {"base_url": base_url, "api_key": KEY, "max_retries": 3,
                              "timeout": 10.0}
    values.update(overrides)
    return ClientSettings(**values)


async def _use(config: ClientSettings, op: Op, sleep: Any,
               transport: httpx.AsyncBaseTransport | None) -> Any:
    kwargs: dict[str, Any] = {"transport": transport}
    if sleep is not None:
        kwargs["sleep"] = sleep
    async with AssistantsClient(config, **kwargs) as client:
        return await op(client)


def call(config: ClientSettings, op: Op, *, sleep: Any = None,
         transport: httpx.AsyncBaseTransport | None = None) -> Any:
    return asyncio.run(_use(config, op, sleep, transport))


def assert_no_secret(exc: BaseException) -> None:
    """Neither the key nor its base64 forms in the exception or anything it was raised from."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        text = str(current) + repr(current) + repr(current.args)
        text += repr(getattr(current, "__dict__", {}))
        for secret in SECRETS:
            assert secret not in text, f"the key leaked into {type(current).__name__}"
        current = current.__cause__ or current.__context__


def fail(config: ClientSettings, op: Op, expected: type[BaseException] = errors.ApiError, *,
         sleep: Any = None, transport: httpx.AsyncBaseTransport | None = None) -> Any:
    with pytest.raises(expected) as info:
        call(config, op, sleep=sleep, transport=transport)
    assert_no_secret(info.value)
    message = str(info.value)
    assert "\n" not in message and "\x1b" not in message
    return info.value


def get_run(client: AssistantsClient) -> Awaitable[JSONObject]:
    return client.get_run("thread_x", "run_1")


def list_runs(client: AssistantsClient) -> Awaitable[list[JSONObject]]:
    return client.list_runs("thread_x")


def spec_error(message: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": "invalid_request_error", "param": None,
                      "code": None}}


RUN = {"id": "run_1", "object": "thread.run", "status": "queued"}


# --- server-suggested waits ---------------------------------------------------------------


def rate_limited_then_ok(hint: dict[str, str], refusals: int = 1) -> Callable[..., None]:
    def handler(request: StubRequest, reply: Reply) -> None:
        if int(request.headers.get("x-reconciler-retry-count", "0")) < refusals:
            reply.json(429, spec_error("Rate limit reached"), {"x-request-id": "req_1", **hint})
        else:
            reply.json(200, RUN)
    return handler


def _a_day_ahead() -> str:
    return email.utils.formatdate(time.time() + 86400, usegmt=True)


@pytest.mark.parametrize(
    ("hint", "asked"),
    [
        ({"retry-after": "99999"}, 99999),
        ({"retry-after-ms": "1e12"}, 1e9),
        ({"retry-after": _a_day_ahead()}, 86400),  # give or take the clock
        ({"retry-after-ms": "400000"}, 400),
    ],
)
def test_a_wait_longer_than_the_retry_time_gives_up_at_once(
    hint: dict[str, str], asked: float
) -> None:
    sleeps = Sleeps()
    with StubServer(rate_limited_then_ok(hint)) as stub:
        exc = fail(settings(stub.base_url), get_run, errors.RateLimitError, sleep=sleeps)
        assert len(stub.requests) == 1
    found = re.search(r"the server asked to wait (\d+) s before retrying", str(exc))
    assert found is not None and float(found.group(1)) == pytest.approx(asked, rel=0.01)
    assert "giving up after 1 attempt" in str(exc)
    assert str(exc).startswith("get run run_1: Rate limit reached; ")
    assert f"(HTTP 429 from 127.0.0.1:{stub.port}, request id req_1)" in str(exc)
    assert all(delay <= 60.0 for delay in sleeps.delays)


@pytest.mark.parametrize(
    "hint",
    [{"retry-after": "120"}, {"retry-after": "99999"}, {"retry-after-ms": "1e12"},
     {"retry-after": _a_day_ahead()}],
)
def test_a_long_wait_within_the_retry_time_is_capped_at_max_retry_wait(
    hint: dict[str, str]
) -> None:
    sleeps = Sleeps()
    with StubServer(rate_limited_then_ok(hint)) as stub:
        config = settings(stub.base_url, max_retry_wait=60.0, max_retry_time=1e12)
        assert call(config, get_run, sleep=sleeps)["id"] == "run_1"
        assert len(stub.requests) == 2
    assert sleeps.delays and max(sleeps.delays) <= 60.0
    assert 60.0 in sleeps.delays


@pytest.mark.parametrize(
    "hint",
    [{"retry-after": "inf"}, {"retry-after": "nan"}, {"retry-after": "-5"},
     {"retry-after": "soon"}, {"retry-after-ms": "inf"}, {"retry-after-ms": "-1"},
     {"retry-after-ms": "1e400"}, {"retry-after": "Sun, 99 Foo 20x"}],
)
def test_unusable_hints_fall_back_to_capped_backoff(hint: dict[str, str]) -> None:
    sleeps = Sleeps()
    with StubServer(rate_limited_then_ok(hint, refusals=2)) as stub:
        assert call(settings(stub.base_url, max_backoff=2.0), get_run,
                    sleep=sleeps)["id"] == "run_1"
        assert len(stub.requests) == 3
    assert sleeps.delays and all(0.0 <= delay <= 2.0 for delay in sleeps.delays)


def test_retries_stop_when_the_retry_time_is_spent() -> None:
    def handler(request: StubRequest, reply: Reply) -> None:
        reply.json(503, spec_error("overloaded"), {"retry-after": "20"})

    sleeps = Sleeps()
    with StubServer(handler) as stub:
        config = settings(stub.base_url, max_retries=100, max_retry_time=50.0)
        exc = fail(config, get_run, errors.ServerError, sleep=sleeps)
        # the fake sleep does not move the clock: each 20 s wait fits in the 50 s left
        assert len(stub.requests) == 101
    assert "overloaded" in str(exc)


def test_a_server_that_never_answers_times_out_and_the_total_is_bounded() -> None:
    def handler(request: StubRequest, reply: Reply) -> None:
        reply.wait(60)

    with StubServer(handler) as stub:
        config = settings(stub.base_url, timeout=0.5, max_retries=100, max_retry_time=2.0,
                          max_backoff=0.2)
        exc = fail(config, get_run, errors.ApiConnectionError)
        attempts = len(stub.requests)
    assert "timed out after 0.5 s talking to 127.0.0.1" in str(exc)
    assert "giving up after" in str(exc)
    assert 2 <= attempts < 10  # bounded by the 2 s retry time, not 100 attempts of 0.5 s


def test_a_create_that_gets_no_answer_is_ambiguous_and_not_retried() -> None:
    def handler(request: StubRequest, reply: Reply) -> None:
        reply.wait(60)

    with StubServer(handler) as stub:
        exc = fail(settings(stub.base_url, timeout=0.5),
                   lambda c: c.create_run("thread_x", {"assistant_id": "asst_1"}),
                   errors.AmbiguousResultError, sleep=Sleeps())
        assert len(stub.requests) == 1
    assert "may have taken effect" in str(exc)


def test_a_trickling_body_ends_at_the_attempt_deadline() -> None:
    def handler(request: StubRequest, reply: Reply) -> None:
        reply.start(200, {"Content-Type": "application/json", "Content-Length": "1000"})
        for _ in range(1000):
            if not reply.write(b" ") or not reply.wait(0.5):
                return

    with StubServer(handler) as stub:
        exc = fail(settings(stub.base_url, timeout=1.5, max_retries=0), get_run,
                   errors.ApiConnectionError)
        sent = stub.body_bytes_sent
    assert "timed out after 1.5 s" in str(exc)
    assert sent < 20  # ~4 bytes by the deadline: the read did not go on byte by byte


# --- size caps ----------------------------------------------------------------------------


def gzip_of_zeros(size: int) -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = bytes(MIB)
    parts = [packer.compress(block) for _ in range(size // MIB)]
    parts.append(packer.flush())
    return b"".join(parts)


def chunked(reply: Reply, pieces: Iterable[bytes]) -> None:
    for piece in pieces:
        if piece and not reply.write(b"%x\r\n%s\r\n" % (len(piece), piece)):
            return
    reply.write(b"0\r\n\r\n")


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_a_gzip_bomb_is_stopped_at_the_cap_in_bounded_memory(framing: str) -> None:
    bomb = gzip_of_zeros(256 * MIB)  # ~250 KiB on the wire
    assert len(bomb) < MIB

    def handler(request: StubRequest, reply: Reply) -> None:
        headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
        if framing == "chunked":
            reply.start(200, {**headers, "Transfer-Encoding": "chunked"})
            chunked(reply, (bomb[i:i + 16384] for i in range(0, len(bomb), 16384)))
        else:
            reply.send(200, bomb, headers)

    cap = 2 * MIB
    with StubServer(handler) as stub:
        config = settings(stub.base_url, max_response_bytes=cap)
        tracemalloc.start()
        try:
            exc = fail(config, get_run)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert len(stub.requests) == 1  # not retried
    assert "the server's answer is larger than 2 MiB; refusing to read it" in str(exc)
    assert peak < 3 * cap, f"peak {peak / MIB:.1f} MiB"


def test_an_endless_chunked_body_is_stopped_at_the_cap() -> None:
    def handler(request: StubRequest, reply: Reply) -> None:
        reply.start(200, {"Content-Type": "application/json", "Transfer-Encoding": "chunked"})

        def forever() -> Iterator[bytes]:
            while not reply.stopping.is_set():
                yield b" " * 65536

        chunked(reply, forever())

    with StubServer(handler) as stub:
        tracemalloc.start()
        try:
            exc = fail(settings(stub.base_url, max_response_bytes=MIB), get_run)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        sent = stub.body_bytes_sent
    assert "larger than 1 MiB; refusing to read it" in str(exc)
    assert sent < 64 * MIB
    assert peak < 3 * MIB


def test_a_declared_length_over_the_cap_is_refused_before_reading() -> None:
    def handler(request: StubRequest, reply: Reply) -> None:
        reply.start(200, {"Content-Type": "application/json",
                          "Content-Length": str(10 * 1024 * MIB)})
        reply.wait(30)

    with StubServer(handler) as stub:
        exc = fail(settings(stub.base_url, timeout=20.0), get_run)
    # refused on the header: waiting for the 20 s timeout would be a timeout error instead
    assert "larger than 32 MiB; refusing to read it" in str(exc)


def test_the_default_cap_stops_a_bomb_too() -> None:
    bomb = gzip_of_zeros(64 * MIB)

    def handler(request: StubRequest, reply: Reply) -> None:
        reply.send(200, bomb, {"Content-Encoding": "gzip"})

    with StubServer(handler) as stub:
        exc = fail(settings(stub.base_url), get_run)
    assert "larger than 32 MiB" in str(exc)


def test_a_gzip_answer_within_the_cap_is_read() -> None:
    packer = zlib.compressobj(6, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    body = packer.compress(json.dumps(RUN).encode()) + packer.flush()

    def handler(request: StubRequest, reply: Reply) -> None:
        reply.send(200, body, {"Content-Encoding": "gzip", "Content-Type": "application/json"})

    with StubServer(handler) as stub:
        assert call(settings(stub.base_url), get_run) == RUN
        assert "gzip" in stub.requests[0].headers["accept-encoding"]


@pytest.mark.parametrize(
    ("encoding", "body", "words"),
    [("gzip", b"\x1f\x8b\x08\x00garbage" * 10, "not valid gzip data"),
     ("br", b"\x00\x01", "encoded as 'br'")],
)
def test_an_undecodable_answer_is_one_sentence_and_not_retried(
    encoding: str, body: bytes, words: str
) -> None:
    def handler(request: StubRequest, reply: Reply) -> None:
        reply.send(200, body, {"Content-Encoding": encoding})

    with StubServer(handler) as stub:
        exc = fail(settings(stub.base_url), get_run)
        assert len(stub.requests) == 1
    assert words in str(exc)


# --- pagination ---------------------------------------------------------------------------


def pages(page: Callable[[str | None, int], dict[str, Any]]) -> Callable[..., None]:
    """A run-list handler: ``page(after, n)`` for the n-th request (from 0)."""
    count = [0]

    def handler(request: StubRequest, reply: Reply) -> None:
        number = count[0]
        count[0] += 1
        reply.json(200, page(request.query.get("after"), number))
    return handler


def test_cycling_cursors_are_refused() -> None:
    def page(after: str | None, n: int) -> dict[str, Any]:
        return {"data": [{"id": f"run_{n}"}], "has_more": True, "last_id": "AB"[n % 2]}

    with StubServer(pages(page)) as stub:
        exc = fail(settings(stub.base_url), list_runs)
        assert len(stub.requests) == 3  # A, B, then A again
    assert str(exc) == ("list runs of thread_x: the server's run list for thread_x repeats "
                        f"cursor A: refusing to loop (from 127.0.0.1:{stub.port})")


def test_cursors_that_change_on_every_page_stop_at_max_pages() -> None:
    def page(after: str | None, n: int) -> dict[str, Any]:
        return {"data": [{"id": f"run_{n}"}], "has_more": True, "last_id": f"cursor_{n}"}

    with StubServer(pages(page)) as stub:
        exc = fail(settings(stub.base_url, max_pages=7), list_runs)
        assert len(stub.requests) == 7
    assert "the server's run list for thread_x goes on past 7 pages" in str(exc)


def test_the_same_page_forever_is_refused() -> None:
    def page(after: str | None, n: int) -> dict[str, Any]:
        return {"data": [{"id": "run_a"}, {"id": "run_b"}], "has_more": True,
                "last_id": "run_b"}

    with StubServer(pages(page)) as stub:
        exc = fail(settings(stub.base_url), list_runs)
        assert len(stub.requests) == 2
    assert "the server's run list for thread_x lists run run_a twice" in str(exc)


def test_the_same_cursor_with_new_runs_is_refused() -> None:
    def page(after: str | None, n: int) -> dict[str, Any]:
        return {"data": [{"id": f"run_{n}"}], "has_more": True, "last_id": "run_0"}

    with StubServer(pages(page)) as stub:
        exc = fail(settings(stub.base_url), list_runs)
    assert "repeats cursor run_0: refusing to loop" in str(exc)


@pytest.mark.parametrize(("item", "kind"), [("run_1", "a string"), (7, "a number"),
                                            (None, "null"), ([], "an array")])
def test_items_that_are_not_objects_are_an_error(item: object, kind: str) -> None:
    def page(after: str | None, n: int) -> dict[str, Any]:
        return {"data": [{"id": "run_2"}, item], "has_more": False}

    with StubServer(pages(page)) as stub:
        exc = fail(settings(stub.base_url), list_runs)
    assert f"the server's run list for thread_x has an item that is not an object ({kind})" \
        in str(exc)


def test_more_without_a_cursor_is_an_error_not_a_short_list() -> None:
    def page(after: str | None, n: int) -> dict[str, Any]:
        return {"data": [{"object": "thread.run"}], "has_more": True}

    with StubServer(pages(page)) as stub:
        exc = fail(settings(stub.base_url), list_runs)
    assert "says there is more but gives no cursor" in str(exc)


def test_deviating_but_sound_lists_are_read() -> None:
    runs = [{"id": f"run_{i:03}", "status": "completed", "x-extra": {"a": [1]}}
            for i in range(250, 0, -1)]

    def page(after: str | None, n: int) -> dict[str, Any]:
        if n == 0:  # ignores limit=100, no last_id, has_more true, extra fields
            return {"object": "list", "data": runs[:200], "has_more": True, "vendor": "x"}
        if n == 1:  # last_id null: the last item's id stands in for it
            return {"data": runs[200:240], "has_more": True, "last_id": None,
                    "first_id": None}
        return {"data": runs[240:]}  # has_more absent: the end

    def page_null(after: str | None, n: int) -> dict[str, Any]:
        return {"data": runs[:3], "has_more": None}

    with StubServer(pages(page)) as stub:
        got = call(settings(stub.base_url), list_runs)
        pages_seen = [r.query.get("after") for r in stub.requests]
        assert {r.query["limit"] for r in stub.requests} == {"100"}
    assert [r["id"] for r in got] == [r["id"] for r in runs]
    assert pages_seen == [None, "run_051", "run_011"]
    with StubServer(pages(page_null)) as stub:
        assert len(call(settings(stub.base_url), list_runs)) == 3


# --- the words of an error ----------------------------------------------------------------


def answering(status: int, body: bytes, **headers: str) -> Callable[..., None]:
    def handler(request: StubRequest, reply: Reply) -> None:
        reply.send(status, body, headers)
    return handler


def test_a_fastapi_detail_is_the_message_with_the_status_once() -> None:
    body = json.dumps({"detail": "Forbidden by policy"}).encode()
    with StubServer(answering(403, body, **{"x-request-id": "req_123"})) as stub:
        exc = fail(settings(stub.base_url), list_runs, errors.PermissionDeniedError)
    assert str(exc) == (f"list runs of thread_x: Forbidden by policy (HTTP 403 from "
                        f"127.0.0.1:{stub.port}, request id req_123)")
    assert exc.api_message == "Forbidden by policy"
    assert exc.host == f"127.0.0.1:{stub.port}"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"message": "Quota exceeded"}', "Quota exceeded"),
        (b'{"error": "Not allowed here"}', "Not allowed here"),
        (b'{"detail": [{"loc": ["q"], "msg": "field required"}]}', "field required"),
        (b'{"title": "Forbidden", "detail": "no access to thread_x"}', "no access to thread_x"),
        (b"plain words\r\nover lines", "plain words over lines"),
        (b"", "Forbidden"),
        (b'{"unexpected": 1}', '{"unexpected": 1}'),
    ],
)
def test_other_error_shapes_give_one_line(body: bytes, message: str) -> None:
    with StubServer(answering(403, body)) as stub:
        exc = fail(settings(stub.base_url), list_runs, errors.PermissionDeniedError)
    assert exc.api_message == message
    assert str(exc).count("HTTP 403") == 1


def test_an_html_502_is_its_title() -> None:
    page = (b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
            b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
            b"</body>\r\n</html>\r\n")
    with StubServer(answering(502, page, **{"content-type": "text/html"})) as stub:
        exc = fail(settings(stub.base_url, max_retries=0), get_run, errors.ServerError)
    assert str(exc) == f"get run run_1: 502 Bad Gateway (HTTP 502 from 127.0.0.1:{stub.port})"


def test_an_html_page_without_a_title_is_its_text() -> None:
    page = (b"<html><head><style>body{color:red}</style><script>alert(1)</script></head>"
            b"<body><h1>Service\nUnavailable</h1><p>try &amp; again</p></body></html>")
    with StubServer(answering(503, page, **{"content-type": "text/html"})) as stub:
        exc = fail(settings(stub.base_url, max_retries=0), get_run, errors.ServerError)
    assert exc.api_message == "Service Unavailable try & again"


def test_escapes_and_newlines_from_the_server_never_reach_the_terminal() -> None:
    nasty = ("Run \x1b[31mFAILED\x1b[0m\nsecond line\r\n\x1b]0;pwned\x07\x07\x08 tail "
             "\u202eevil\u202c \ud800 end")
    body = json.dumps(spec_error(nasty)).encode()
    with StubServer(answering(400, body, **{"x-request-id": "req_\x1b[2Jx"})) as stub:
        exc = fail(settings(stub.base_url), get_run, errors.BadRequestError)
    assert exc.api_message == "Run FAILED second line tail evil \ufffd end"
    assert exc.request_id == "req_x"
    assert all(ch.isprintable() for ch in str(exc))


def test_a_long_error_text_is_cut_short() -> None:
    with StubServer(answering(500, b"x" * 100_000)) as stub:
        exc = fail(settings(stub.base_url, max_retries=0), get_run, errors.ServerError)
    assert len(exc.api_message) <= 200 and exc.api_message.endswith("…")


def test_deeply_nested_json_is_refused_without_a_recursion_error() -> None:
    deep = b"[" * 1000 + b"]" * 1000
    with StubServer(answering(200, b'{"a": ' + deep + b"}")) as stub:
        exc = fail(settings(stub.base_url), get_run)
        assert len(stub.requests) == 1
    assert "the server's answer nests deeper than 128 levels" in str(exc)
    with StubServer(answering(400, deep * 3)) as stub:  # in an error body: an excerpt
        exc = fail(settings(stub.base_url), get_run, errors.BadRequestError)
    assert "HTTP 400" in str(exc)


def test_nesting_up_to_the_limit_is_read() -> None:
    value: Any = "leaf"
    for _ in range(120):
        value = {"k": [value]} if isinstance(value, str) or len(str(value)) % 2 else [value]
    body = json.dumps({"id": "run_1", "deep": value}).encode()
    with StubServer(answering(200, body)) as stub:
        assert call(settings(stub.base_url), get_run)["id"] == "run_1"


@pytest.mark.parametrize(
    ("body", "words"),
    [(b"<html>login</html>", "not JSON: 'login'"), (b"", "not JSON (an empty body)"),
     (b"[1, 2]", "not an object (an array)"), (b'"run"', "not an object (a string)"),
     (b"\xff\xfe\xfa", "not JSON")],
)
def test_answers_that_are_not_an_object_are_one_sentence(body: bytes, words: str) -> None:
    with StubServer(answering(200, body)) as stub:
        exc = fail(settings(stub.base_url), get_run)
        assert len(stub.requests) == 1
    assert words in str(exc)


def test_a_redirect_is_not_followed() -> None:
    with StubServer(answering(302, b"", location="https://elsewhere.example/v1")) as stub:
        exc = fail(settings(stub.base_url), get_run)
        assert len(stub.requests) == 1
    assert "redirected to https://elsewhere.example/v1" in str(exc)


# --- base URLs ----------------------------------------------------------------------------


class NoNetwork(httpx.AsyncBaseTransport):
    """A transport that fails the test if any request reaches it."""

    def __init__(self) -> None:
        self.calls = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        pytest.fail(f"a request was attempted: {request.method} {request.url}")


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("http://[::1", "is not a valid URL"),
        ("http://host:99999/v1", "is not a valid URL"),
        ("http://ho st/v1", "is not a valid URL"),
        ("ftp://files.example.com/v1", "must start with http:// or https://"),
        ("api.example.com/v1", "must start with http:// or https://"),
        ("localhost:8080/v1", "must start with http:// or https://"),
        ("http:///v1", "has no host"),
        ("https://", "has no host"),
        ("https://h.example/v1?x=1", "must not have a query"),
        ("", "the base URL is empty"),
    ],
)
def test_bad_base_urls_are_one_sentence_before_any_request(url: str, words: str) -> None:
    with pytest.raises(errors.ConfigError) as info:
        validate_base_url(url)
    assert words in str(info.value)
    transport = NoNetwork()
    with pytest.raises(errors.ConfigError, match=words):
        AssistantsClient(settings(url), transport=transport)
    assert transport.calls == 0


def test_a_password_in_the_base_url_is_refused_and_not_repeated() -> None:
    with pytest.raises(errors.ConfigError) as info:
        validate_base_url(f"https://user:{KEY}@h.example/v1")
    assert "must not carry a user name or password" in str(info.value)
    assert_no_secret(info.value)


def test_base_urls_are_normalized() -> None:
    assert validate_base_url(" HTTPS://API.Example.COM/v1/ ") == "https://api.example.com/v1"
    assert validate_base_url("Http://[::1]:8080/v1") == "http://[::1]:8080/v1"
    assert validate_base_url("http://127.0.0.2:9/openai") == "http://127.0.0.2:9/openai"


@pytest.mark.parametrize("host", ["127.0.0.1", "127.9.9.9", "[::1]", "localhost", "LOCALHOST"])
def test_plain_http_to_loopback_needs_no_opt_in(host: str) -> None:
    assert validate_base_url(f"http://{host}:8080/v1").startswith("http://")
    assert insecure_warning(settings(f"http://{host}:8080/v1", allow_insecure_http=True)) \
        is None


@pytest.mark.parametrize("url", ["http://example.invalid/v1", "HTTP://Example.Invalid/v1",
                                 "http://10.0.0.1:8000/v1", "http://127.0.0.1.example/v1",
                                 "http://[::ffff:10.0.0.1]/v1"])
def test_the_key_is_never_sent_over_plain_http_to_another_host(url: str) -> None:
    transport = NoNetwork()
    with pytest.raises(errors.ConfigError) as info:
        AssistantsClient(settings(url), transport=transport)
    assert "refusing to send the API key over plain http to " in str(info.value)
    assert "; use https, or pass --allow-insecure-http" in str(info.value)
    assert transport.calls == 0
    assert_no_secret(info.value)


def test_the_refusal_names_the_host() -> None:
    with pytest.raises(errors.ConfigError) as info:
        validate_base_url("http://example.com/v1")
    assert str(info.value) == ("refusing to send the API key over plain http to example.com; "
                               "use https, or pass --allow-insecure-http")
    assert validate_base_url("http://example.com/v1", has_key=False) == "http://example.com/v1"


def test_plain_http_with_the_opt_in_works_and_warns() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=RUN)

    config = settings("http://example.invalid/v1", allow_insecure_http=True)
    assert call(config, get_run, transport=httpx.MockTransport(handler)) == RUN
    assert seen[0].url.host == "example.invalid"
    warning = insecure_warning(config)
    assert warning is not None and "\n" not in warning
    assert "plain http to example.invalid" in warning and "--allow-insecure-http" in warning
    assert KEY not in warning
    assert insecure_warning(settings("http://example.invalid/v1")) is None  # refused instead
    assert insecure_warning(settings("https://example.invalid/v1",
                                     allow_insecure_http=True)) is None
    assert insecure_warning(settings("http://example.invalid/v1", api_key=None,
                                     allow_insecure_http=True)) is None


def test_a_base_url_without_v1_gets_a_hint_on_404() -> None:
    body = json.dumps(spec_error("Invalid URL (GET /threads/thread_x/runs/run_1)")).encode()
    with StubServer(answering(404, body), prefix="") as stub:
        exc = fail(settings(stub.base_url), get_run, errors.NotFoundError)
    assert (f"the base URL has no /v1: did you mean http://127.0.0.1:{stub.port}/v1?"
            in str(exc))
    with StubServer(answering(404, body)) as stub:
        exc = fail(settings(stub.base_url), get_run, errors.NotFoundError)
    assert "did you mean" not in str(exc)


def test_a_refused_connection_is_one_sentence() -> None:
    port = free_port()
    exc = fail(settings(f"http://127.0.0.1:{port}/v1", max_retries=1), get_run,
               errors.ApiConnectionError, sleep=Sleeps())
    assert str(exc) == (f"get run run_1: could not connect to the API (Connection refused) "
                        f"talking to 127.0.0.1:{port}")


def test_a_key_that_cannot_be_a_header_is_refused_without_showing_it() -> None:
    with pytest.raises(errors.ConfigError) as info:
        AssistantsClient(settings("https://h.example/v1", api_key=KEY + "\n"))
    assert "API key contains characters" in str(info.value)
    assert_no_secret(info.value)


# --- TLS ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def tls_server(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    return context


@pytest.fixture
def ca_file(ca: trustme.CA, tmp_path: Path) -> str:
    path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


def ok(request: StubRequest, reply: Reply) -> None:
    reply.json(200, RUN)


@pytest.mark.parametrize("scheme", ["HTTPS", "Https", "https"])
def test_tls_is_verified_whatever_the_scheme_spelling(
    scheme: str, tls_server: ssl.SSLContext
) -> None:
    with StubServer(ok, tls=tls_server) as stub:
        url = f"{scheme}://127.0.0.1:{stub.port}/v1"
        exc = fail(settings(url), get_run, errors.ApiConnectionError, sleep=Sleeps())
        assert stub.requests == []  # no request, so no key, ever reached the server
        assert stub.connections == 1  # and it was not retried
    assert f"TLS certificate verification failed for 127.0.0.1:{stub.port}: " in str(exc)
    assert str(exc).endswith("; pass --ca-bundle FILE if the host uses a private CA")


def test_tls_with_the_private_ca_is_accepted(tls_server: ssl.SSLContext, ca_file: str) -> None:
    with StubServer(ok, tls=tls_server) as stub:
        url = f"HTTPS://127.0.0.1:{stub.port}/v1"
        assert call(settings(url, ca_bundle=ca_file), get_run) == RUN
        env = {"OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": url, "SSL_CERT_FILE": ca_file}
        from_env = ClientSettings.from_env(env)
        assert from_env.ca_bundle == ca_file
        assert call(from_env, get_run) == RUN
        assert [r.headers["authorization"] for r in stub.requests] == [f"Bearer {KEY}"] * 2
    assert ClientSettings.from_env({"REQUESTS_CA_BUNDLE": ca_file}).ca_bundle == ca_file
    assert ClientSettings.from_env({"SSL_CERT_FILE": ca_file},
                                   ca_bundle="/other.pem").ca_bundle == "/other.pem"


def test_plain_http_never_builds_the_default_tls_context() -> None:
    settings_module._default_ssl_context.cache_clear()
    with StubServer(ok) as stub:
        assert call(settings(f"http://127.0.0.1:{stub.port}/v1"), get_run) == RUN
    assert settings_module._default_ssl_context.cache_info().misses == 0
    with StubServer(ok, tls=_untrusted_server()) as stub:  # https builds it at its connection
        fail(settings(f"https://127.0.0.1:{stub.port}/v1"), get_run,
             errors.ApiConnectionError, sleep=Sleeps())
    assert settings_module._default_ssl_context.cache_info().misses == 1


def _untrusted_server() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    trustme.CA().issue_cert("127.0.0.1").configure_cert(context)
    return context


def test_tls_to_a_plain_http_server_is_one_sentence() -> None:
    with StubServer(ok) as stub:
        exc = fail(settings(f"https://127.0.0.1:{stub.port}/v1"), get_run,
                   errors.ApiConnectionError, sleep=Sleeps())
        assert stub.requests == []
    assert f"TLS handshake with 127.0.0.1:{stub.port} failed" in str(exc)


def test_a_missing_ca_bundle_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(errors.ConfigError, match=r"CA bundle .* cannot be used"):
        AssistantsClient(settings("https://h.example/v1", ca_bundle=str(tmp_path / "no.pem")))


# --- sanitize -----------------------------------------------------------------------------


def test_sanitize_folds_strips_and_cuts() -> None:
    assert sanitize("a\n\tb\x1b[1;31mc\x1b[0m\x00d") == "a bcd"
    assert sanitize("x" * 300, 50) == "x" * 49 + "…"
    assert sanitize("\x1b]8;;http://evil\x1b\\link\x1b]8;;\x1b\\") == "link"
    assert sanitize("  \u2028 ok \u2029 ") == "ok"


def test_ids_from_the_server_are_sanitized_in_messages() -> None:
    with StubServer(answering(404, json.dumps(spec_error("No run found.")).encode())) as stub:
        exc = fail(settings(stub.base_url),
                   lambda c: c.cancel_run("thread_x", "run_\x1b[2J\nevil"), errors.NotFoundError)
    assert str(exc).startswith("cancel run run_ evil: No run found. (HTTP 404 from")
