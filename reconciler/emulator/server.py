"""Serving the emulator over HTTP with uvicorn: blocking, or in a background thread."""

from __future__ import annotations

import logging
import threading
import time
from types import TracebackType

import uvicorn
from starlette.applications import Starlette

from reconciler.emulator.app import EmulatorHolder, create_app
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


def _uvicorn_config(app: Starlette, host: str, port: int, log_level: str) -> uvicorn.Config:
    return uvicorn.Config(
        app, host=host, port=port, log_level=log_level, access_log=False,
        lifespan="on", timeout_graceful_shutdown=2,
    )


def run_server(config: EmulatorConfig, host: str = "127.0.0.1", port: int = 8080, *,
               log_level: str = "info") -> None:
    """Serve until interrupted (``reconciler emulator serve``)."""
    _quiet_uvicorn()
    uvicorn.Server(_uvicorn_config(create_app(config), host, port, log_level)).run()


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
        self._holder: EmulatorHolder = app.state.emulator
        # uvicorn binds the socket itself: a socket handed over loses TCP_NODELAY, and every
        # response then waits ~40 ms for a delayed ACK
        self._server = uvicorn.Server(_uvicorn_config(app, host, port, log_level))
        self._thread = threading.Thread(target=self._serve, name="emulator", daemon=True)
        self._error: BaseException | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

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
