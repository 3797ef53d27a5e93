"""Serving the emulator over HTTP with uvicorn: blocking, or in a background thread."""

from __future__ import annotations

import errno
import logging
import socket
import threading
import time
from types import TracebackType

import uvicorn

from reconciler.emulator.app import EmulatorApp, EmulatorHolder, create_app
from reconciler.emulator.config import EmulatorConfig
from reconciler.emulator.knobs import ConnectionDropped


class _HideInjectedDrops(logging.Filter):
    """Injected dropped connections are the point, not an error worth a traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        info = record.exc_info
        return not (info and isinstance(info[1], ConnectionDropped))


_FILTER = _HideInjectedDrops()


def _quiet_uvicorn() -> None:
    error_logger = logging.getLogger("uvicorn.error")
    if _FILTER not in error_logger.filters:
        error_logger.addFilter(_FILTER)


def _uvicorn_config(app: EmulatorApp, host: str, port: int, log_level: str) -> uvicorn.Config:
    return uvicorn.Config(
        app, host=host, port=port, log_level=log_level, access_log=False,
        lifespan="on", timeout_graceful_shutdown=2,
    )


def listen(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port`` and listening (``port`` 0: a free one).

    Bound here, before uvicorn starts, so a port in use is one ``ValueError`` sentence
    rather than uvicorn's log and exit, and ``--port 0`` can report the port it got. The
    socket is made with ``IPPROTO_TCP`` so asyncio sets ``TCP_NODELAY`` on every accepted
    connection (without it each response waits ~40 ms for a delayed ACK).
    """
    where = f"{host}:{port}"
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)[0]
    except (socket.gaierror, UnicodeError) as exc:
        raise ValueError(f"cannot listen on {where}: the host does not resolve ({exc})") from None
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise ValueError(f"cannot listen on {where}: the port is already in use "
                             "(choose another with --port, or --port 0 for a free one)") from None
        reason = exc.strerror or str(exc)
        raise ValueError(f"cannot listen on {where}: {reason}") from None
    return sock


def address_of(sock: socket.socket, config: EmulatorConfig) -> str:
    """The base URL clients use for the emulator on ``sock``: ``http://HOST:PORT/v1``."""
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}{config.path_prefix}"


def serve(config: EmulatorConfig, sock: socket.socket, *, log_level: str = "info") -> None:
    """Serve on a socket from :func:`listen` until interrupted (``reconciler emulator serve``)."""
    _quiet_uvicorn()
    host, port = sock.getsockname()[:2]
    server = uvicorn.Server(_uvicorn_config(create_app(config), host, port, log_level))
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()


def run_server(config: EmulatorConfig, host: str = "127.0.0.1", port: int = 8080, *,
               log_level: str = "info") -> None:
    """Listen on ``host:port`` and serve until interrupted."""
    serve(config, listen(host, port), log_level=log_level)


class BackgroundServer:
    """The emulator on a loopback socket in a thread, as a context manager (tests, benchmarks).

    ``port=0`` picks a free port; ``base_url`` is then ``http://HOST:PORT/v1``.
    """

    def __init__(self, config: EmulatorConfig, *, host: str = "127.0.0.1", port: int = 0,
                 log_level: str = "warning") -> None:
        self.config = config
        self.host = host
        self.port = port  # the real one once started, when 0 asked for a free port
        app = create_app(config)
        self._holder: EmulatorHolder = app.holder
        # uvicorn binds the socket itself: a socket handed over loses TCP_NODELAY, and every
        # response then waits ~40 ms for a delayed ACK
        self._server = uvicorn.Server(_uvicorn_config(app, host, port, log_level))
        self._thread = threading.Thread(target=self._serve, name="emulator", daemon=True)
        self._error: BaseException | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}{self.config.path_prefix}"

    @property
    def app_state(self) -> EmulatorHolder:
        return self._holder

    def _serve(self) -> None:
        try:
            self._server.run()
        except BaseException as exc:  # surfaced by start()
            self._error = exc

    def start(self) -> BackgroundServer:
        _quiet_uvicorn()
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if self._error is not None or not self._thread.is_alive():
                raise RuntimeError(f"the emulator did not start: {self._error}")
            if time.monotonic() > deadline:
                raise RuntimeError("the emulator did not start within 10 s")
            time.sleep(0.005)
        for server in self._server.servers:
            for sock in server.sockets:
                self.port = int(sock.getsockname()[1])
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        self.app_state.close()

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
