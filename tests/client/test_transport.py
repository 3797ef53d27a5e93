"""The HTTP/1.1 transport against raw loopback servers that script every byte they send,
and the environment's proxies, which httpx's own transport still serves.

Each server runs in the test's own event loop (``asyncio.start_server`` on 127.0.0.1), counts
the connections it accepted and answers as the test scripts it: keep-alive or not, closing
idle connections, truncated or oversized answers, silence. The transport must reuse only what
may be reused and raise httpx's own exception for every fault, since the client reads
"was the request sent?" from the exception's type.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
import trustme

from reconciler.client import AssistantsClient, ClientSettings, JSONObject
from reconciler.client.http_client import _proxied
from reconciler.client.transport import MAX_HEAD_BYTES, ApiTransport, _Connection
from tests.client.stubs import Reply, StubRequest, StubServer

Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter, int], Awaitable[None]]
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: application/json\r\n\r\n{}"


class Server:
    """A loopback server running ``script(reader, writer, connection_number)`` per connection."""

    def __init__(self, script: Script, tls: ssl.SSLContext | None = None) -> None:
        self.script = script
        self.tls = tls
        self.connections = 0
        self.received = bytearray()
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> Server:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.tls)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()

    @property
    def url(self) -> str:
        assert self._server is not None
        port = self._server.sockets[0].getsockname()[1]
        return f"{'https' if self.tls else 'http'}://localhost:{port}/v1/runs"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            await self.script(reader, writer, self.connections)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()


async def read_request(reader: asyncio.StreamReader) -> bytes:
    """One request's head and (Content-Length) body."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    return head + await reader.readexactly(length)


def keep_alive(answer: bytes = OK) -> Script:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: int) -> None:
        while True:
            await read_request(reader)
            writer.write(answer)
            await writer.drain()
    return script


def transport(**overrides: Any) -> ApiTransport:
    values: dict[str, Any] = {"ssl_context": ssl.create_default_context(),
                              "keepalive_expiry": 5.0, "max_idle": 4}
    values.update(overrides)
    return ApiTransport(**values)


async def get(client: httpx.AsyncClient, url: str) -> httpx.Response:
    response = await client.get(url)
    await response.aread()
    return response


async def until_idle(pool: ApiTransport, seen: Callable[[_Connection], bool]) -> None:
    """Let the event loop run until the pool's idle connection has ``seen`` what the server
    sent it (no clock: only loop turns, bounded by :func:`run`'s limit)."""
    while not any(seen(c) for idle in pool._idle.values() for c in idle):
        await asyncio.sleep(0)


def run(test: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(test(), 10))


def test_sequential_requests_reuse_one_connection() -> None:
    async def test() -> None:
        async with Server(keep_alive()) as server, \
                httpx.AsyncClient(transport=transport()) as client:
            answers = [await get(client, server.url) for _ in range(5)]
            assert [a.json() for a in answers] == [{}] * 5
            assert server.connections == 1
    run(test)


def test_concurrent_requests_open_one_connection_each_then_reuse_them() -> None:
    async def test() -> None:
        async with Server(keep_alive()) as server, \
                httpx.AsyncClient(transport=transport(max_idle=3)) as client:
            await asyncio.gather(*(get(client, server.url) for _ in range(3)))
            await asyncio.gather(*(get(client, server.url) for _ in range(3)))
            assert server.connections == 3
    run(test)


def test_idle_connections_beyond_max_idle_are_closed() -> None:
    async def test() -> None:
        async with Server(keep_alive()) as server, \
                httpx.AsyncClient(transport=transport(max_idle=1)) as client:
            await asyncio.gather(*(get(client, server.url) for _ in range(3)))
            await asyncio.gather(*(get(client, server.url) for _ in range(3)))
            assert server.connections == 5  # one kept of the first three
    run(test)


def test_connection_close_is_honoured() -> None:
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: int) -> None:
        await read_request(reader)
        writer.write(answer)
        await writer.drain()
        await reader.read()  # a client that kept the connection would wait here forever

    async def test() -> None:
        async with Server(script) as server, httpx.AsyncClient(transport=transport()) as client:
            for _ in range(3):
                assert (await get(client, server.url)).status_code == 200
            assert server.connections == 3
    run(test)


def test_a_connection_the_server_closed_while_idle_is_not_reused() -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: int) -> None:
        await read_request(reader)
        writer.write(OK)  # keep-alive by default in HTTP/1.1, then closed anyway
        await writer.drain()

    async def test() -> None:
        pool = transport()
        async with Server(script) as server, httpx.AsyncClient(transport=pool) as client:
            await get(client, server.url)
            await until_idle(pool, lambda c: c.protocol.eof or c.protocol.closed)  # the FIN
            assert (await get(client, server.url)).status_code == 200
            assert server.connections == 2
    run(test)


def test_an_expired_idle_connection_is_not_reused() -> None:
    async def test() -> None:
        async with Server(keep_alive()) as server, \
                httpx.AsyncClient(transport=transport(keepalive_expiry=0.0)) as client:
            await get(client, server.url)
            await get(client, server.url)
            assert server.connections == 2
    run(test)


def test_bytes_nobody_asked_for_make_an_idle_connection_unusable() -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        while True:
            await read_request(reader)
            writer.write(OK + (b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\n\"stale\"" if n == 1
                               else b""))
            await writer.drain()

    async def test() -> None:
        pool = transport()
        async with Server(script) as server, httpx.AsyncClient(transport=pool) as client:
            await get(client, server.url)
            await until_idle(pool, lambda c: bool(c.protocol.chunks or c.h11.trailing_data[0]))
            assert (await get(client, server.url)).json() == {}
            assert server.connections == 2
    run(test)


def test_an_answer_abandoned_before_its_end_closes_the_connection() -> None:
    big = b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"x" * 100_000

    async def test() -> None:
        async with Server(keep_alive(big)) as server, \
                httpx.AsyncClient(transport=transport()) as client:
            async with client.stream("GET", server.url) as response:
                async for _ in response.aiter_raw():
                    break
            assert len((await get(client, server.url)).content) == 100_000
            assert server.connections == 2
    run(test)


def test_a_chunked_answer_and_an_interim_100_are_read() -> None:
    answer = (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
              b"3\r\n{\"a\r\n5\r\n\": 1}\r\n0\r\n\r\n")

    async def test() -> None:
        async with Server(keep_alive(answer)) as server, \
                httpx.AsyncClient(transport=transport()) as client:
            assert (await get(client, server.url)).json() == {"a": 1}
            assert (await get(client, server.url)).json() == {"a": 1}
            assert server.connections == 1
    run(test)


def test_the_request_arrives_whole_with_its_headers_and_a_large_body() -> None:
    async def test() -> None:
        seen: list[bytes] = []

        async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                         _: int) -> None:
            seen.append(await read_request(reader))
            writer.write(OK)
            await writer.drain()

        async with Server(script) as server, httpx.AsyncClient(transport=transport()) as client:
            body = b"y" * 3_000_000
            response = await client.post(server.url + "?after=a%20b", content=body,
                                         headers={"X-Test": "1"})
            await response.aread()
        head, _, received = seen[0].partition(b"\r\n\r\n")
        assert head.split(b"\r\n")[0] == b"POST /v1/runs?after=a%20b HTTP/1.1"
        assert b"X-Test: 1" in head.split(b"\r\n")
        assert received == body
    run(test)


def test_no_answer_at_all_is_a_remote_protocol_error() -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: int) -> None:
        await read_request(reader)

    async def test() -> None:
        async with Server(script) as server, httpx.AsyncClient(transport=transport()) as client:
            with pytest.raises(httpx.RemoteProtocolError):
                await client.get(server.url)
    run(test)


def test_a_truncated_body_is_a_remote_protocol_error_and_not_reused() -> None:
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"cut"

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: int) -> None:
        await read_request(reader)
        writer.write(answer)
        await writer.drain()

    async def test() -> None:
        async with Server(script) as server, httpx.AsyncClient(transport=transport()) as client:
            with pytest.raises(httpx.RemoteProtocolError):
                await get(client, server.url)
            with pytest.raises(httpx.RemoteProtocolError):
                await get(client, server.url)
            assert server.connections == 2
    run(test)


def test_a_head_that_never_ends_is_refused_past_the_limit() -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: int) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\n")
        for _ in range(2 * MAX_HEAD_BYTES // 1000):
            writer.write(b"X-More: " + b"z" * 990 + b"\r\n")
            await writer.drain()
        await asyncio.sleep(5)

    async def test() -> None:
        async with Server(script) as server, httpx.AsyncClient(transport=transport()) as client:
            with pytest.raises(httpx.RemoteProtocolError):
                await client.get(server.url)
    run(test)


def test_a_silent_server_is_a_read_timeout() -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: int) -> None:
        await read_request(reader)
        await asyncio.sleep(5)

    async def test() -> None:
        async with Server(script) as server, \
                httpx.AsyncClient(transport=transport(), timeout=0.2) as client:
            with pytest.raises(httpx.ReadTimeout):
                await client.get(server.url)
    run(test)


def test_a_refused_connection_is_a_connect_error_that_says_why() -> None:
    async def test() -> None:
        async with Server(keep_alive()) as server:
            url = server.url
        async with httpx.AsyncClient(transport=transport()) as client:
            with pytest.raises(httpx.ConnectError) as caught:
                await client.get(url)
        assert isinstance(caught.value.__cause__, OSError)
        assert caught.value.__cause__.strerror == "Connection refused"
        assert isinstance(caught.value.__cause__.__cause__, ConnectionRefusedError)
    run(test)


def test_a_cancelled_request_leaves_no_connection_behind() -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        while True:
            await read_request(reader)
            if n == 1:
                await asyncio.sleep(5)
            writer.write(OK)
            await writer.drain()

    async def test() -> None:
        async with Server(script) as server, httpx.AsyncClient(transport=transport()) as client:
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.1):
                    await client.get(server.url)
            assert (await get(client, server.url)).status_code == 200
            assert server.connections == 2
    run(test)


def test_tls_is_verified_with_the_given_context() -> None:
    authority = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("localhost").configure_cert(server_context)
    trusting = ssl.create_default_context()
    authority.configure_trust(trusting)

    async def test() -> None:
        async with Server(keep_alive(), tls=server_context) as server:
            async with httpx.AsyncClient(transport=transport(ssl_context=trusting)) as client:
                assert (await get(client, server.url)).json() == {}
            async with httpx.AsyncClient(transport=transport()) as client:
                with pytest.raises(httpx.ConnectError) as caught:
                    await client.get(server.url)
            assert isinstance(caught.value.__cause__, ssl.SSLCertVerificationError)
    run(test)


# -- proxies from the environment: httpx's own transport, as before ------------------------

PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")


@pytest.fixture
def no_proxy_variables(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    return monkeypatch


def test_a_proxy_is_named_for_the_apis_scheme_or_for_all(
    no_proxy_variables: pytest.MonkeyPatch,
) -> None:
    assert not _proxied("https://api.example.test/v1")
    no_proxy_variables.setenv("HTTPS_PROXY", "http://proxy.example.test:3128")
    assert _proxied("https://api.example.test/v1")
    assert not _proxied("http://api.example.test/v1")
    no_proxy_variables.setenv("ALL_PROXY", "http://proxy.example.test:3128")
    assert _proxied("http://api.example.test/v1")


def test_requests_go_through_the_proxy_the_environment_names(
    no_proxy_variables: pytest.MonkeyPatch,
) -> None:
    """The API host does not even resolve: only the proxy (a loopback stub) can answer."""
    def handler(request: StubRequest, reply: Reply) -> None:
        reply.json(200, {"id": "run_1", "status": "completed", "object": "thread.run"})

    async def get_run(url: str) -> JSONObject:
        settings = ClientSettings(base_url=url, api_key="sk-test", allow_insecure_http=True,
                                  max_retries=0)
        async with AssistantsClient(settings) as client:
            return await client.get_run("thread_a", "run_1")

    with StubServer(handler) as proxy:
        no_proxy_variables.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.port}")
        answer = asyncio.run(get_run("http://api.example.invalid/v1"))
        seen = proxy.requests
    assert answer["id"] == "run_1"
    assert [(r.path, r.headers["host"]) for r in seen] == [
        ("/v1/threads/thread_a/runs/run_1", "api.example.invalid")]
