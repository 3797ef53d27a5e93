"""Loopback stub servers for the client's hostile-host tests: real sockets, full control.

A :class:`StubServer` listens on 127.0.0.1 (a free port), optionally behind TLS, and hands
every request to a handler function that answers through a :class:`Reply`: a whole answer, or
a status line and headers followed by whatever bytes, as slowly as it likes. Every request is
recorded (headers included), so a test can assert what did, or did not, reach the server.
Handlers must end when :attr:`Reply.stopping` is set (use :meth:`Reply.wait`); leaving the
``with`` block sets it, stops the server and joins its threads.
"""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, urlsplit

Handler = Callable[["StubRequest", "Reply"], None]


@dataclass(frozen=True)
class StubRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    body: bytes


@dataclass
class _Counters:
    requests: list[StubRequest] = field(default_factory=list)
    connections: int = 0
    tls_failures: int = 0
    body_bytes_sent: int = 0


class Reply:
    """How a handler answers one request."""

    def __init__(self, handler: _RequestHandler, stub: StubServer) -> None:
        self._handler = handler
        self._stub = stub
        self.stopping = stub.stopping

    def start(self, status: int, headers: Mapping[str, str] | None = None) -> None:
        """The status line and headers (``Connection: close`` added); the body follows."""
        self._handler.send_response_only(status)
        for name, value in (headers or {}).items():
            self._handler.send_header(name, value)
        self._handler.send_header("Connection", "close")
        self._handler.end_headers()
        self._handler.wfile.flush()

    def write(self, data: bytes) -> bool:
        """Send body bytes; False once the client has gone away."""
        try:
            self._handler.wfile.write(data)
            self._handler.wfile.flush()
        except (OSError, ValueError):
            return False
        self._stub.count_body(len(data))
        return True

    def send(self, status: int, body: bytes = b"",
             headers: Mapping[str, str] | None = None) -> None:
        """A whole answer with its Content-Length."""
        self.start(status, {"Content-Length": str(len(body)), **(headers or {})})
        self.write(body)

    def json(self, status: int, obj: Any, headers: Mapping[str, str] | None = None) -> None:
        self.send(status, json.dumps(obj).encode(),
                  {"Content-Type": "application/json", **(headers or {})})

    def wait(self, seconds: float) -> bool:
        """Sleep; False (at once) when the server is stopping."""
        return not self.stopping.wait(seconds)


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 10  # a client that connects and sends nothing cannot hold a thread for long
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        return None

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        stub = self.server.stub
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        request = StubRequest(
            method=self.command,
            path=parts.path,
            query=dict(parse_qsl(parts.query)),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
        )
        stub.record(request)
        self.close_connection = True
        with contextlib.suppress(OSError, ValueError):  # the client left mid-answer
            stub.handler(request, Reply(self, stub))


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = True
    allow_reuse_address = True

    def __init__(self, stub: StubServer) -> None:
        self.stub = stub
        super().__init__(("127.0.0.1", 0), _RequestHandler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        self.stub.count_connection()
        tls = self.stub.tls
        if tls is None:
            super().finish_request(request, client_address)
            return
        request.settimeout(10)
        try:
            wrapped = tls.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            self.stub.count_tls_failure()
            return
        try:
            super().finish_request(wrapped, client_address)
        finally:
            with contextlib.suppress(OSError):
                wrapped.close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        return None  # a hostile test's broken connections are expected, not news


class StubServer:
    """A loopback HTTP(S) server for one test: ``with StubServer(handler) as stub: …``."""

    def __init__(self, handler: Handler, *, tls: ssl.SSLContext | None = None,
                 prefix: str = "/v1") -> None:
        self.handler = handler
        self.tls = tls
        self.prefix = prefix
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._counters = _Counters()
        self._server = _Server(self)
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,),
                                        daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        scheme = "https" if self.tls is not None else "http"
        return f"{scheme}://127.0.0.1:{self.port}{self.prefix}"

    @property
    def requests(self) -> list[StubRequest]:
        with self._lock:
            return list(self._counters.requests)

    @property
    def connections(self) -> int:
        with self._lock:
            return self._counters.connections

    @property
    def tls_failures(self) -> int:
        with self._lock:
            return self._counters.tls_failures

    @property
    def body_bytes_sent(self) -> int:
        with self._lock:
            return self._counters.body_bytes_sent

    def record(self, request: StubRequest) -> None:
        with self._lock:
            self._counters.requests.append(request)

    def count_connection(self) -> None:
        with self._lock:
            self._counters.connections += 1

    def count_tls_failure(self) -> None:
        with self._lock:
            self._counters.tls_failures += 1

    def count_body(self, size: int) -> None:
        with self._lock:
            self._counters.body_bytes_sent += size

    def __enter__(self) -> StubServer:
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stopping.set()
        self._server.shutdown()
        self._server.server_close()  # joins the handler threads (they see `stopping`)
        self._thread.join(timeout=10)


def free_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
