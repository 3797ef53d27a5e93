"""The ASGI app: every request is matched to an operation of the spec and handled the same way.

One route under ``/v1`` matches requests against the spec's path templates (so the 23
operations and their parameters come from the spec itself), then: API key, beta header, JSON
body, request validation, the operation. The emulator's state is created on first use, so the
app works without lifespan events (``httpx.ASGITransport`` sends none).
"""

from __future__ import annotations

import contextlib
import hmac
import logging
import threading
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from reconciler.emulator.config import EmulatorConfig
from reconciler.emulator.errors import EmulatorError
from reconciler.emulator.knobs import KnobsMiddleware
from reconciler.emulator.service import Emulator
from reconciler.emulator.spec import API_PREFIX, find_operation
from reconciler.emulator.validation import include_params, parse_json_body, validate_body

logger = logging.getLogger("reconciler.emulator")

_BETA_MESSAGE = (
    "You must provide the 'OpenAI-Beta' header to access the Assistants API. Please try again "
    "by setting the header 'OpenAI-Beta: assistants=v2'."
)
_NO_KEY_MESSAGE = (
    "You didn't provide an API key. You need to provide your API key in an Authorization header "
    "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY). You can obtain an API key from "
    "https://platform.openai.com/account/api-keys."
)
_BAD_KEY_MESSAGE = (
    "Incorrect API key provided. You can find your API key at "
    "https://platform.openai.com/account/api-keys."
)
_SERVER_ERROR = EmulatorError(
    500, "The server had an error while processing your request. Sorry about that!",
    type="server_error",
)
_WITH_INCLUDE = frozenset({"createRun", "listRunSteps", "getRunStep"})


class EmulatorHolder:
    """Creates the emulator (database, fixtures) on first use and closes it on shutdown."""

    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self._emulator: Emulator | None = None
        self._lock = threading.Lock()

    def get(self) -> Emulator:
        with self._lock:
            if self._emulator is None:
                self._emulator = Emulator(self.config)
            return self._emulator

    def close(self) -> None:
        with self._lock:
            if self._emulator is not None:
                self._emulator.close()
                self._emulator = None


def _error(error: EmulatorError) -> JSONResponse:
    return JSONResponse(error.body(), status_code=error.status)


def _check_key(request: Request, api_key: str | None) -> None:
    if api_key is None:
        return
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise EmulatorError(401, _NO_KEY_MESSAGE, code="invalid_api_key")
    if not hmac.compare_digest(token.strip().encode(), api_key.encode()):
        raise EmulatorError(401, _BAD_KEY_MESSAGE, code="invalid_api_key")


def _check_beta(request: Request) -> None:
    beta = request.headers.get("openai-beta", "")
    if "assistants=v2" not in [part.strip() for part in beta.split(",")]:
        raise EmulatorError(400, _BETA_MESSAGE, code="invalid_beta")


async def _dispatch(request: Request, holder: EmulatorHolder) -> Response:
    method, path = request.method, request.url.path
    found = find_operation(method, path) if path.startswith(API_PREFIX + "/") else None
    try:
        _check_key(request, holder.config.api_key)
        if found is None:
            raise EmulatorError(404, f"Invalid URL ({method} {path})")
        op, params = found
        _check_beta(request)
        body: Any = {}
        if op.method == "POST":
            body = parse_json_body(await request.body(), required=op.body_required)
            validate_body(op, body)
        if op.operation_id in _WITH_INCLUDE:
            include_params(request.query_params.getlist("include[]"))
        result = holder.get().handle(op.operation_id, params, request.query_params,
                                     body if isinstance(body, dict) else {})
    except EmulatorError as error:
        return _error(error)
    except Exception:
        logger.exception("emulator failed on %s %s", method, path)
        return _error(_SERVER_ERROR)
    headers = {}
    if isinstance(result, dict) and result.get("object") == "thread.run":
        headers["openai-poll-after-ms"] = "50" if holder.config.timing.in_progress < 1 else "500"
    return JSONResponse(result, headers=headers)


def create_app(config: EmulatorConfig) -> Starlette:
    """The emulator as an ASGI app, for uvicorn or ``httpx.ASGITransport``."""
    holder = EmulatorHolder(config)

    async def endpoint(request: Request) -> Response:
        return await _dispatch(request, holder)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        holder.close()

    app = Starlette(
        routes=[Route("/{path:path}", endpoint, methods=["GET", "POST", "DELETE", "PUT",
                                                           "PATCH"])],
        middleware=[Middleware(KnobsMiddleware, config=config)],
        lifespan=lifespan,
    )
    app.state.emulator = holder
    return app
