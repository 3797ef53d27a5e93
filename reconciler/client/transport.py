"""HTTP/1.1 for the API client: httpx's requests and responses, h11's protocol, asyncio's sockets.

Why not httpx's default transport (httpcore over anyio): its pool rescans every connection on
each request and anyio adds cancel scopes and socket-attribute lookups to every read, which
made a plan of 1,000 threads CPU-bound on the client. Listing 1,000 threads on a 2-core
machine, everything else equal, the client spent 1.35 ms of CPU per request over httpcore (four
pools of eight connections, as it used to) and 0.95 ms over this transport. The protocol is
still a well-kept library's (h11, the parser httpcore and uvicorn use, with httpcore's header
limit); what is ours is only the plumbing, and it raises httpx's own exceptions, so
:class:`HttpClient` reads faults exactly as before: ``ConnectError``/``ConnectTimeout``
(nothing was sent), ``WriteError``, ``ReadError``, ``ReadTimeout`` and ``RemoteProtocolError``
(the request may have been sent), and ``LocalProtocolError`` (it could not be written).

Used whenever the environment names no proxy for the API (see ``http_client._proxied``):
proxies stay httpx's own transport's work, as before.

No waiting for a free connection: :class:`HttpClient` bounds the attempts in flight, and each
takes an idle connection to its host or opens one. An idle connection is reused only while the
server has neither closed it nor sent anything unasked, and for ``keepalive_expiry`` seconds.
"""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
import time
from collections.abc import AsyncIterator, Callable
from typing import Any, cast

import h11
import httpx

__all__ = ["ApiTransport"]

#: The largest status line plus headers read (httpcore's limit).
MAX_HEAD_BYTES = 100 * 1024
#: Reading pauses while this much of an answer waits to be consumed.
_HIGH_WATER = 256 * 1024

Origin = tuple[str, str, int]


class _Protocol(asyncio.Protocol):
    """The socket's events as chunks to await; reading pauses while too much is waiting."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.chunks: list[bytes] = []
        self.buffered = 0
        self.eof = False
        self.lost: BaseException | None = None
        self.closed = False
        self._waiter: asyncio.Future[None] | None = None
        self._paused = False
        self._drained: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        self.chunks.append(data)
        self.buffered += len(data)
        if self.buffered > _HIGH_WATER and self.transport is not None:
            self.transport.pause_reading()
            self._paused = True
        self._wake()

    def eof_received(self) -> bool:
        self.eof = True
        self._wake()
        return False  # close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.lost = exc
        self._wake()
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)

    def pause_writing(self) -> None:
        self._drained = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)
        self._drained = None

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def drain(self) -> None:
        if self._drained is not None:
            await self._drained

    async def read(self) -> bytes:
        """What has arrived, waiting for something; ``b""`` once the server has closed."""
        while not self.chunks:
            if self.eof or self.closed:
                if self.lost is not None:
                    raise httpx.ReadError(f"connection lost: {self.lost}") from self.lost
                return b""
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        data = b"".join(self.chunks) if len(self.chunks) > 1 else self.chunks[0]
        self.chunks.clear()
        self.buffered = 0
        if self._paused and self.transport is not None:
            self._paused = False
            self.transport.resume_reading()
        return data


class _Connection:
    """One connection to one origin and its h11 state, reused while both ends allow it."""

    def __init__(self, protocol: _Protocol, origin: Origin) -> None:
        self.protocol = protocol
        self.origin = origin
        self.h11 = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_HEAD_BYTES)
        self.idle_until = 0.0

    def reusable(self, now: float) -> bool:
        """Idle, open, within its keep-alive time, and nothing unasked has arrived."""
        protocol = self.protocol
        return (now < self.idle_until and not protocol.closed and not protocol.eof
                and not protocol.chunks and not self.h11.trailing_data[0]
                and self.h11.our_state is h11.IDLE)

    def close(self) -> None:
        if self.protocol.transport is not None:
            self.protocol.transport.close()
        self.protocol.closed = True

    async def send(self, request: httpx.Request, body: bytes,
                   write_timeout: float | None) -> None:
        """The whole request onto the socket."""
        target = request.url.raw_path
        try:
            head = self.h11.send(h11.Request(method=request.method, target=target,
                                             headers=request.headers.raw))
            parts = [head, self.h11.send(h11.Data(data=body))] if body else [head]
            parts.append(self.h11.send(h11.EndOfMessage()))
        except h11.LocalProtocolError as exc:
            raise httpx.LocalProtocolError(str(exc)) from exc
        transport = self.protocol.transport
        if transport is None or transport.is_closing() or self.protocol.closed:
            raise httpx.WriteError("the connection was closed before the request was sent")
        try:
            transport.write(b"".join(part for part in parts if part))
            async with asyncio.timeout(write_timeout):
                await self.protocol.drain()
        except TimeoutError as exc:
            raise httpx.WriteTimeout("timed out sending the request") from exc
        except OSError as exc:
            raise httpx.WriteError(str(exc)) from exc
        if self.protocol.closed and self.protocol.lost is not None:
            raise httpx.WriteError(f"connection lost: {self.protocol.lost}") from (
                self.protocol.lost)

    async def next_event(self, read_timeout: float | None) -> Any:
        """The next h11 event of the answer, reading as needed."""
        while True:
            try:
                event = self.h11.next_event()
            except h11.RemoteProtocolError as exc:
                raise httpx.RemoteProtocolError(str(exc)) from exc
            if event is not h11.NEED_DATA:
                return event
            try:
                async with asyncio.timeout(read_timeout):
                    data = await self.protocol.read()
            except TimeoutError as exc:
                raise httpx.ReadTimeout("timed out reading the answer") from exc
            self.h11.receive_data(data)


class _Body(httpx.AsyncByteStream):
    """The answer's body as it arrives; the connection goes back to the pool once it is read
    to the end, and is closed if the reader stops before."""

    def __init__(self, transport: ApiTransport, connection: _Connection,
                 read_timeout: float | None) -> None:
        self._transport = transport
        self._connection = connection
        self._read_timeout = read_timeout
        self._done = False
        self._closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        connection = self._connection
        try:
            while not self._done:
                event = await connection.next_event(self._read_timeout)
                if isinstance(event, h11.Data):
                    yield bytes(event.data)
                elif isinstance(event, h11.EndOfMessage):
                    self._done = True
                else:  # h11 reports a body cut short as an error; anything else is one too
                    raise httpx.RemoteProtocolError("the server ended the answer early")
        except BaseException:
            await self.aclose()
            raise

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._transport.finished(self._connection, complete=self._done)


def _in_os_words(exc: OSError) -> OSError:
    """``exc``, or the system's words for its error number in front of it: asyncio says
    "Connect call failed ('10.0.0.1', 443)" where the system says "Connection refused"."""
    if not exc.errno or isinstance(exc, socket.gaierror | ssl.SSLError):
        return exc  # their own words already (and TLS errors are read as they are)
    words = OSError(exc.errno, os.strerror(exc.errno))
    words.__cause__ = exc
    return words


class ApiTransport(httpx.AsyncBaseTransport):
    """httpx's transport interface over :class:`_Connection`s, kept idle per origin."""

    def __init__(self, *, ssl_context: ssl.SSLContext | Callable[[], ssl.SSLContext],
                 keepalive_expiry: float, max_idle: int) -> None:
        # A callable is called at the first https connection: building a verifying context
        # (certifi's CAs) costs 25 ms that a plain-http API never needs.
        self._ssl_context = ssl_context
        self._keepalive_expiry = keepalive_expiry
        self._max_idle = max(1, max_idle)
        self._idle: dict[Origin, list[_Connection]] = {}
        self._closed = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        host = url.raw_host.decode("ascii")  # IDNA-encoded, as DNS and TLS want it
        origin: Origin = (url.scheme, host, url.port or (443 if url.scheme == "https" else 80))
        timeouts = request.extensions.get("timeout", {})
        connection = self._take_idle(origin) or await self._connect(origin,
                                                                     timeouts.get("connect"))
        try:
            await connection.send(request, await request.aread(), timeouts.get("write"))
            while True:
                event = await connection.next_event(timeouts.get("read"))
                if isinstance(event, h11.Response):
                    break
                if isinstance(event, h11.ConnectionClosed):
                    raise httpx.RemoteProtocolError(
                        "Server disconnected without sending a response.")
                if not isinstance(event, h11.InformationalResponse):
                    raise httpx.RemoteProtocolError("the server answered out of order")
        except BaseException:
            connection.close()
            raise
        return httpx.Response(
            status_code=event.status_code,
            headers=list(event.headers.raw_items()),
            stream=_Body(self, connection, timeouts.get("read")),
            extensions={"http_version": b"HTTP/" + event.http_version,
                        "reason_phrase": event.reason},
        )

    def finished(self, connection: _Connection, *, complete: bool) -> None:
        """An answer was read (``complete``) or abandoned: keep the connection or close it."""
        state = connection.h11
        if (not complete or self._closed or state.our_state is not h11.DONE
                or state.their_state is not h11.DONE):
            connection.close()
            return
        state.start_next_cycle()
        idle = self._idle.setdefault(connection.origin, [])
        if len(idle) >= self._max_idle:
            connection.close()
            return
        connection.idle_until = time.monotonic() + self._keepalive_expiry
        idle.append(connection)

    def _tls(self) -> ssl.SSLContext:
        if not isinstance(self._ssl_context, ssl.SSLContext):
            self._ssl_context = self._ssl_context()
        return self._ssl_context

    def _take_idle(self, origin: Origin) -> _Connection | None:
        idle = self._idle.get(origin)
        now = time.monotonic()
        while idle:
            connection = idle.pop()  # the most recently used: the least likely to be closing
            if connection.reusable(now):
                return connection
            connection.close()
        return None

    async def _connect(self, origin: Origin, timeout: float | None) -> _Connection:
        scheme, host, port = origin
        loop = asyncio.get_running_loop()
        tls = self._tls() if scheme == "https" else None
        try:
            async with asyncio.timeout(timeout):
                # Happy eyeballs (RFC 8305), as anyio does for httpcore: a host whose IPv6
                # address does not answer is reached over IPv4 after 250 ms, not after the
                # whole connect timeout.
                _, protocol = await loop.create_connection(
                    _Protocol, host, port, ssl=tls, server_hostname=host if tls else None,
                    happy_eyeballs_delay=0.25)
        except TimeoutError as exc:
            raise httpx.ConnectTimeout(f"timed out connecting to {host}:{port}") from exc
        except OSError as exc:  # refused, unreachable, no such host, and every TLS failure
            raise httpx.ConnectError(str(exc) or type(exc).__name__) from _in_os_words(exc)
        return _Connection(protocol, origin)

    async def aclose(self) -> None:
        self._closed = True
        for idle in self._idle.values():
            for connection in idle:
                connection.close()
        self._idle.clear()
