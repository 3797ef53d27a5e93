"""A misbehaving gateway in front of the emulator, and a stub that records what reaches it.

Real deployments put gateways in front of the API that answer 504 at once while the backend
commits later, or backends slower than the client's timeout: a create's outcome is then
ambiguous, and the reconciler must not create a duplicate run. ``Gateway`` reproduces both on a
loopback socket; ``RecordingStub`` proves that a command sent nothing to a host it must not
talk to.

    with start_server() as emulator, Gateway(emulator.base_url, [
        Rule(mode="504_then_commit", delay=0.5, limit=1),
    ]) as gateway:
        ...  # point the tool at gateway.base_url
        gateway.wait_idle()  # every late create has landed: now count the runs

Both serve HTTP/1.1 with h11 over asyncio streams in a thread rather than uvicorn: uvicorn hands
the app no request body once the client has hung up, and a client that gave up on a slow create
must not keep that create from reaching the backend.
"""

from __future__ import annotations

import asyncio
import contextlib
import http
import json
import secrets
import threading
import time
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal, Self, TypeVar
from urllib.parse import urlsplit

import h11
import httpx

_T = TypeVar("_T")
Mode = Literal["504_then_commit", "slow", "pass"]

REDACTED = "[redacted]"
_SECRET_HEADERS = frozenset({"authorization", "proxy-authorization"})
# hop-by-hop headers belong to one connection; the lengths are recomputed for the new body
_HOP_BY_HOP = frozenset({
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection",
    "te", "trailer", "transfer-encoding", "upgrade", "content-length",
})
_NOT_FORWARDED = _HOP_BY_HOP | {"host"}
# headers httpx itself manages on the way upstream
_CLIENT_MANAGED = frozenset({"host", "content-length", "connection"})
_UPSTREAM_TIMEOUT = 30.0
_START_TIMEOUT = 10.0


@dataclass(frozen=True)
class Rule:
    """How the gateway treats matching requests.

    ``path_suffix`` is matched against the path without its query: the default ``/runs`` hits
    ``POST /v1/threads/{id}/runs`` (createRun), and also ``POST /v1/threads/runs``.
    """

    method: str = "POST"
    path_suffix: str = "/runs"
    mode: Mode = "pass"
    delay: float = 0.0  # seconds; ignored by "pass"
    limit: int | None = None  # apply to at most this many matching requests, then pass through

    def matches(self, method: str, path: str) -> bool:
        """Whether a request is one this rule is about (its limit aside)."""
        return method.upper() == self.method.upper() and path.endswith(self.path_suffix)


@dataclass(frozen=True)
class RecordedRequest:
    """One request as it arrived; the Authorization value is redacted so a record can be shown."""

    method: str
    path: str  # without the query
    query: str  # the raw query string, without "?"
    headers: dict[str, str]  # lower-case names
    body: bytes
    time: float  # time.monotonic() on arrival

    def json(self) -> Any:
        """The body decoded as JSON."""
        return json.loads(self.body)


@dataclass(frozen=True)
class _Incoming:
    """A request exactly as received, kept whole so it can be forwarded late."""

    method: str
    target: str  # path and query, as sent
    headers: list[tuple[bytes, bytes]]
    body: bytes

    @property
    def path(self) -> str:
        return self.target.partition("?")[0]


@dataclass(frozen=True)
class _Reply:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes


def _record(incoming: _Incoming) -> RecordedRequest:
    headers: dict[str, str] = {}
    for raw_name, raw_value in incoming.headers:
        name = raw_name.decode("latin-1").lower()
        value = REDACTED if name in _SECRET_HEADERS else raw_value.decode("latin-1")
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    path, _, query = incoming.target.partition("?")
    return RecordedRequest(incoming.method, path, query, headers, incoming.body, time.monotonic())


def _request_id() -> bytes:
    return f"req_{secrets.token_hex(16)}".encode()


def _json_reply(status: int, body: Any) -> _Reply:
    headers = [(b"content-type", b"application/json"), (b"x-request-id", _request_id())]
    return _Reply(status, headers, json.dumps(body).encode())


def _error_body(message: str, type_: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": None, "code": None}}


class _LoopbackServer:
    """An HTTP/1.1 server on 127.0.0.1 (free port) in its own thread and event loop.

    Stopping cancels whatever is still in flight, so nothing outlives the context: no thread,
    no late request to the upstream.
    """

    def __init__(self, prefix: str, name: str) -> None:
        self.host = "127.0.0.1"
        self.port = 0  # the real one once started
        self._prefix = prefix.rstrip("/")
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._ready = threading.Event()
        self._started = False
        self._error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}{self._prefix}"

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far, in order of arrival."""
        with self._lock:
            return list(self._requests)

    def start(self) -> Self:
        self._thread.start()
        self._ready.wait(_START_TIMEOUT)
        if not self._started:
            self.stop()
            raise RuntimeError(f"{self._thread.name} did not start: {self._error}")
        return self

    def stop(self) -> None:
        loop, stopping = self._loop, self._stopping
        if loop is not None and stopping is not None:
            with contextlib.suppress(RuntimeError):  # the loop has already closed
                loop.call_soon_threadsafe(stopping.set)
        if self._thread.ident is not None:
            self._thread.join(timeout=_START_TIMEOUT)
        if self._thread.is_alive():
            raise RuntimeError(f"{self._thread.name} did not stop")

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    async def _respond(self, incoming: _Incoming) -> _Reply:
        raise NotImplementedError

    async def _opened(self) -> None:
        """Set up what the subclass needs inside the server's loop."""

    async def _closed(self) -> None:
        """Tear down what ``_opened`` set up."""

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # surfaced by start()
            self._error = exc
        finally:
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        await self._opened()
        try:
            server = await asyncio.start_server(self._accept, self.host, 0)
        except BaseException:
            await self._closed()
            raise
        self.port = int(server.sockets[0].getsockname()[1])
        self._started = True
        self._ready.set()
        try:
            await self._stopping.wait()
        finally:
            server.close()
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await self._closed()
            await server.wait_closed()

    def _spawn(self, coro: Coroutine[Any, Any, _T]) -> asyncio.Task[_T]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._forget)
        return task

    def _forget(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled():
            task.exception()  # nobody may await a 504's forward: don't log it as unretrieved

    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # a task of our own: asyncio 3.11 logs an error for a cancelled coroutine handler, and
        # stopping cancels the connections still open
        self._spawn(self._connection(reader, writer))

    async def _connection(self, reader: asyncio.StreamReader,
                          writer: asyncio.StreamWriter) -> None:
        conn = h11.Connection(h11.SERVER)
        try:
            while True:
                incoming = await self._read_request(conn, reader, writer)
                if incoming is None:
                    return
                with self._lock:
                    self._requests.append(_record(incoming))
                reply = await self._respond(incoming)
                await self._write_reply(conn, writer, reply)
                if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                    return  # one side asked to close
                conn.start_next_cycle()
        except (ConnectionError, h11.ProtocolError):
            return  # the client went away or spoke nonsense: nobody left to answer
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    @staticmethod
    async def _read_request(conn: h11.Connection, reader: asyncio.StreamReader,
                            writer: asyncio.StreamWriter) -> _Incoming | None:
        request: h11.Request | None = None
        body = bytearray()
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                if conn.they_are_waiting_for_100_continue:
                    go_on = h11.InformationalResponse(status_code=100, headers=[])
                    writer.write(conn.send(go_on) or b"")
                conn.receive_data(await reader.read(65536))
            elif isinstance(event, h11.Request):
                request = event
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage) and request is not None:
                return _Incoming(
                    method=request.method.decode("ascii"),
                    target=request.target.decode("ascii"),
                    headers=list(request.headers.raw_items()),
                    body=bytes(body),
                )
            else:  # the connection closed between requests
                return None

    @staticmethod
    async def _write_reply(conn: h11.Connection, writer: asyncio.StreamWriter,
                           reply: _Reply) -> None:
        status, body = reply.status, reply.body
        headers = list(reply.headers)
        if status in (204, 304):
            body = b""  # these carry no body, and h11 refuses one
        else:
            headers.append((b"content-length", str(len(body)).encode()))
        try:
            reason = http.HTTPStatus(status).phrase.encode()
        except ValueError:
            reason = b""
        data = conn.send(h11.Response(status_code=status, headers=headers, reason=reason)) or b""
        if body:
            data += conn.send(h11.Data(data=body)) or b""
        data += conn.send(h11.EndOfMessage()) or b""
        writer.write(data)
        await writer.drain()


class Gateway(_LoopbackServer):
    """Context manager: a reverse proxy to ``upstream`` on 127.0.0.1 (free port), in a thread.

    ``upstream`` is a base URL like ``http://127.0.0.1:PORT/v1``; ``base_url`` has the same path
    prefix. The first rule that matches a request and still has some of its ``limit`` left
    decides what happens to it; the others pass straight through.
    """

    def __init__(self, upstream: str, rules: Sequence[Rule] = ()) -> None:
        parts = urlsplit(upstream)
        if parts.scheme != "http" or not parts.netloc:
            raise ValueError(f"the upstream must be an http:// base URL, not {upstream!r}")
        super().__init__(parts.path, name="gateway")
        self.upstream = upstream
        self.rules = tuple(rules)
        self._origin = f"{parts.scheme}://{parts.netloc}"
        self._applied = [0] * len(self.rules)
        self._idle = threading.Condition(self._lock)
        self._pending = 0
        self._committed = 0
        self._failures: list[str] = []
        self._client: httpx.AsyncClient | None = None

    @property
    def committed(self) -> int:
        """How many delayed forwards (504_then_commit, slow) reached upstream and got a 2xx."""
        with self._lock:
            return self._committed

    @property
    def failures(self) -> list[str]:
        """The delayed forwards that did not get a 2xx, and why: a test's first clue."""
        with self._lock:
            return list(self._failures)

    def wait_idle(self, timeout: float = 10.0) -> None:
        """Block until every delayed forward has finished, so the test can count runs."""
        with self._idle:
            if not self._idle.wait_for(lambda: self._pending == 0, timeout):
                raise TimeoutError(
                    f"{self._pending} delayed forward(s) still running after {timeout:g} s")

    async def _opened(self) -> None:
        # trust_env=False: a proxy from the environment must not see loopback test traffic
        self._client = httpx.AsyncClient(timeout=_UPSTREAM_TIMEOUT, trust_env=False)

    async def _closed(self) -> None:
        if self._client is not None:
            await self._client.aclose()

    def _claim(self, incoming: _Incoming) -> Rule | None:
        with self._lock:
            for index, rule in enumerate(self.rules):
                if not rule.matches(incoming.method, incoming.path):
                    continue
                if rule.limit is not None and self._applied[index] >= rule.limit:
                    continue
                self._applied[index] += 1
                if rule.mode != "pass":
                    self._pending += 1  # before the client hears anything: wait_idle sees it
                return rule
        return None

    async def _respond(self, incoming: _Incoming) -> _Reply:
        rule = self._claim(incoming)
        if rule is None or rule.mode == "pass":
            try:
                return await self._forward(incoming)
            except httpx.HTTPError as exc:
                return _bad_gateway(exc)
        # its own task: neither a client hanging up nor this connection ending cancels it
        forward = self._spawn(self._delayed(incoming, rule.delay))
        if rule.mode == "504_then_commit":
            return _json_reply(504, _error_body("Gateway Timeout", "server_error"))
        return await asyncio.shield(forward)

    async def _delayed(self, incoming: _Incoming, delay: float) -> _Reply:
        try:
            await asyncio.sleep(delay)
            try:
                reply = await self._forward(incoming)
            except httpx.HTTPError as exc:
                with self._lock:
                    self._failures.append(f"{incoming.method} {incoming.target}: {exc!r}")
                return _bad_gateway(exc)
            with self._lock:
                if 200 <= reply.status < 300:
                    self._committed += 1
                else:
                    self._failures.append(
                        f"{incoming.method} {incoming.target}: HTTP {reply.status}")
            return reply
        finally:
            with self._idle:
                self._pending -= 1
                self._idle.notify_all()

    async def _forward(self, incoming: _Incoming) -> _Reply:
        assert self._client is not None
        headers = [(name, value) for name, value in incoming.headers
                   if name.decode("latin-1").lower() not in _NOT_FORWARDED]
        request = self._client.build_request(
            incoming.method, self._origin + incoming.target, headers=headers,
            content=incoming.body or None,
        )
        sent = {name.decode("latin-1").lower() for name, _ in headers}
        for name in list(request.headers.keys()):  # httpx's defaults: not the client's
            if name not in sent and name not in _CLIENT_MANAGED:
                del request.headers[name]
        response = await self._client.send(request, stream=True)
        try:
            # raw: the body keeps its content-encoding, which is relayed with it
            body = b"".join([chunk async for chunk in response.aiter_raw()])
        finally:
            await response.aclose()
        relayed = [(name, value) for name, value in response.headers.raw
                   if name.decode("latin-1").lower() not in _HOP_BY_HOP]
        return _Reply(response.status_code, relayed, body)


def _bad_gateway(exc: httpx.HTTPError) -> _Reply:
    return _json_reply(502, _error_body(f"Bad Gateway: {exc!r}", "server_error"))


class RecordingStub(_LoopbackServer):
    """Context manager: a host that must not be talked to, on 127.0.0.1 (free port).

    It answers every request with the service's 404 for an unknown URL and records it, so a
    test can assert that ``requests`` stayed empty.
    """

    def __init__(self, prefix: str = "/v1") -> None:
        super().__init__(prefix, name="recording-stub")

    async def _respond(self, incoming: _Incoming) -> _Reply:
        message = f"Invalid URL ({incoming.method} {incoming.path})"
        return _json_reply(404, _error_body(message, "invalid_request_error"))


__all__ = ["REDACTED", "Gateway", "Mode", "RecordedRequest", "RecordingStub", "Rule"]
