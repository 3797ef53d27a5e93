"""The ASGI app: every request is matched to an operation of the spec and handled the same way.

One route under the path prefix (``/v1``) matches requests against the spec's path templates
(so the 23 operations and their parameters come from the spec itself), then: credentials
(OpenAI's bearer key, or Azure's ``api-key`` and ``api-version``), beta header, JSON body,
request validation, the operation — answered as JSON, or as server-sent events for a run
created or resumed with ``stream: true``. The emulator's state is created on first use, so the
app works without lifespan events (``httpx.ASGITransport`` sends none).
"""

from __future__ import annotations

import hmac
import json
import logging
import threading
import time
from collections import Counter
from types import SimpleNamespace
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Message, Receive, Scope, Send

from reconciler.emulator.config import EmulatorConfig
from reconciler.emulator.encoded import Encoded, dumps
from reconciler.emulator.errors import EmulatorError, GatewayError
from reconciler.emulator.knobs import KnobsMiddleware
from reconciler.emulator.service import Emulator
from reconciler.emulator.spec import Operation, find_operation
from reconciler.emulator.streaming import STREAMING, stream_response
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
AZURE_DENIED = (
    "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide "
    "a valid key for an active subscription and use a correct regional API endpoint for your "
    "resource."
)
AZURE_NOT_FOUND = "Resource not found"
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


def _check_key(request: Request, config: EmulatorConfig) -> None:
    """The credentials the configured style asks for: a bearer token, or Azure's ``api-key``."""
    if config.auth == "azure":
        sent = request.headers.get("api-key", "").strip()
        if not sent or (config.api_key is not None and not _same(sent, config.api_key)):
            raise GatewayError(401, AZURE_DENIED)
        return
    if config.api_key is None:
        return
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise EmulatorError(401, _NO_KEY_MESSAGE, code="invalid_api_key")
    if not _same(token.strip(), config.api_key):
        raise EmulatorError(401, _BAD_KEY_MESSAGE, code="invalid_api_key")


def _same(sent: str, key: str) -> bool:
    return hmac.compare_digest(sent.encode(), key.encode())


def _check_beta(request: Request) -> None:
    beta = request.headers.get("openai-beta", "")
    if "assistants=v2" not in [part.strip() for part in beta.split(",")]:
        raise EmulatorError(400, _BETA_MESSAGE, code="invalid_beta")


def _route(request: Request, config: EmulatorConfig) -> tuple[Operation, dict[str, str]]:
    """The operation a request is for, or the 404 of the configured style.

    Azure wants an ``api-version`` on every request and answers ``Resource not found``
    without one (MicrosoftDocs/azure-docs#114602), as for any path it does not serve.
    """
    method, path = request.method, request.url.path
    prefix = config.path_prefix
    found = find_operation(method, path, prefix) if path.startswith(prefix + "/") else None
    if config.auth == "azure":
        if found is None or not request.query_params.get("api-version", "").strip():
            raise GatewayError(404, AZURE_NOT_FOUND)
        return found
    if found is None:
        raise EmulatorError(404, f"Invalid URL ({method} {path})")
    _check_beta(request)
    return found


async def _dispatch(request: Request, holder: EmulatorHolder) -> Response:
    config = holder.config
    try:
        _check_key(request, config)
        op, params = _route(request, config)
        body: Any = {}
        if op.method == "POST":
            body = parse_json_body(await request.body(), required=op.body_required)
            validate_body(op, body)
        if op.operation_id in _WITH_INCLUDE:
            include_params(request.query_params.getlist("include[]"))
        emulator = holder.get()
        body = body if isinstance(body, dict) else {}
        result = emulator.answer(op.operation_id, params, request.query_params, body)
        if body.get("stream") is True and op.operation_id in STREAMING:
            return stream_response(emulator, op.operation_id, result)
    except EmulatorError as error:
        return _error(error)
    except Exception:
        logger.exception("emulator failed on %s %s", request.method, request.url.path)
        return _error(_SERVER_ERROR)
    headers = {}
    shown = result.object if isinstance(result, Encoded) else (
        result.get("object") if isinstance(result, dict) else None)
    if shown == "thread.run":
        headers["openai-poll-after-ms"] = "50" if config.timing.in_progress < 1 else "500"
    # what JSONResponse would send, with the parts the emulator has encoded before spliced in
    return Response(dumps(result), headers=headers, media_type="application/json")


#: Where the emulator tells how many answers it sent, by status (outside the API's paths).
STATS_PATH = "/_emulator/stats"


class EmulatorApp:
    """The emulator as an ASGI app: the knobs around one endpoint that answers every request.

    No router in between: every method and every path, however odd (a newline in an id),
    reaches the endpoint and is answered in the API's own words. ``state.emulator`` is the
    holder of the emulator's state, closed at lifespan shutdown.
    """

    def __init__(self, config: EmulatorConfig) -> None:
        self.holder = EmulatorHolder(config)
        self.state = SimpleNamespace(emulator=self.holder)
        self._app = KnobsMiddleware(self._endpoint, config=config)
        #: Answers sent, by status code: ``GET /_emulator/stats`` (benchmarks count requests
        #: and 429s with it; the API's own paths never start with an underscore).
        self.answered: Counter[int] = Counter()
        #: When the first request arrived and the last answer started (monotonic seconds):
        #: the span a client used the API for, whatever its start-up took.
        self.first_request_at: float | None = None
        self.last_answer_at: float | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            if scope["path"] == STATS_PATH and scope["method"] == "GET":
                await self._stats(send)
                return

            if self.first_request_at is None:
                self.first_request_at = time.monotonic()

            async def counted(message: Message) -> None:
                if message["type"] == "http.response.start":
                    self.answered[int(message["status"])] += 1
                    self.last_answer_at = time.monotonic()
                await send(message)

            await self._app(scope, receive, counted)

    async def _stats(self, send: Send) -> None:
        body = json.dumps({
            "requests": sum(self.answered.values()),
            "by_status": {str(code): n for code, n in sorted(self.answered.items())},
            "first_request_at": self.first_request_at,
            "last_answer_at": self.last_answer_at,
        }).encode()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": body})

    async def _endpoint(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = await _dispatch(Request(scope, receive), self.holder)
        await response(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.holder.close()
                await send({"type": "lifespan.shutdown.complete"})
                return


def create_app(config: EmulatorConfig) -> EmulatorApp:
    """The emulator as an ASGI app, for uvicorn or ``httpx.ASGITransport``."""
    return EmulatorApp(config)
