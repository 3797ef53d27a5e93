"""A faithful local Assistants v2 server: one codebase, served by uvicorn or used in-process.

    app = create_app(EmulatorConfig(timing=RunTiming.instant()))
    httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://emulator/v1")

    with BackgroundServer(config) as srv:      # a real loopback socket
        OpenAI(api_key="k", base_url=srv.base_url)

Runs stream as server-sent events with ``stream: true``; ``EmulatorConfig(auth="azure",
path_prefix="/openai")`` answers as an Azure OpenAI resource. See ``docs/emulator.md`` for
the knobs, streaming, Azure mode and the deterministic failure markers.
"""

from reconciler.emulator.app import create_app
from reconciler.emulator.config import (
    EmulatorConfig,
    FaultRule,
    Faults,
    Latency,
    RateLimit,
    RunTiming,
    parse_duration,
    parse_faults,
    parse_latency,
    parse_path_prefix,
    parse_rate_limit,
    parse_timing,
)
from reconciler.emulator.errors import EmulatorError
from reconciler.emulator.fixtures import DEMO_FIXTURES_PATH, Fixtures, load_fixtures
from reconciler.emulator.knobs import ConnectionDropped
from reconciler.emulator.server import BackgroundServer, address_of, listen, run_server, serve
from reconciler.emulator.spec import find_operation, operations, validate_response
from reconciler.emulator.stream_schema import validate_stream_event

__all__ = [
    "DEMO_FIXTURES_PATH",
    "BackgroundServer",
    "ConnectionDropped",
    "EmulatorConfig",
    "EmulatorError",
    "FaultRule",
    "Faults",
    "Fixtures",
    "Latency",
    "RateLimit",
    "RunTiming",
    "address_of",
    "create_app",
    "find_operation",
    "listen",
    "load_fixtures",
    "operations",
    "parse_duration",
    "parse_faults",
    "parse_latency",
    "parse_path_prefix",
    "parse_rate_limit",
    "parse_timing",
    "run_server",
    "serve",
    "validate_response",
    "validate_stream_event",
]
