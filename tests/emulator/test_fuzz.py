"""A bounded schemathesis run over every operation of the reference spec, in CI.

Schemathesis (PyPI) generates requests from the spec — valid ones and, in its negative mode,
ones the spec forbids — and sends them to the emulator on a loopback socket. Every answer is
checked: never a server error; JSON where the spec says JSON, conforming to the operation's
documented response schema (schemathesis' own checks); and any answer at all, error bodies
included, against the spec with the emulator's ``validate_response``. A body with
``stream: true`` must be answered with a conforming event stream instead (the spec's 200
lists only JSON; the events are checked with ``validate_stream_event``).

The run is derandomized (the same requests every time, no example database) and bounded by
``EXAMPLES`` per operation: about 3,700 requests, under a minute on one core.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import CheckContext, not_a_server_error
from schemathesis.core.transport import Response
from schemathesis.generation.case import Case
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
)

from reconciler.emulator import (
    BackgroundServer,
    find_operation,
    validate_response,
    validate_stream_event,
)
from reconciler.emulator.spec import raw_spec, schema_problems
from tests.emulator.support import BETA, make_config, parse_sse

EXAMPLES = 30


def _schema() -> Any:
    spec = copy.deepcopy(raw_spec())
    spec["servers"] = [{"url": "/v1"}]
    return schemathesis.openapi.from_dict(spec)


SCHEMA = _schema()


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    with BackgroundServer(make_config()) as srv:
        yield srv.base_url


def streams(case: Case[Any]) -> bool:
    return isinstance(case.body, dict) and case.body.get("stream") is True


def conforms_to_the_spec(ctx: CheckContext, response: Response, case: Case[Any]
                         ) -> bool | None:
    """The answer's shape: JSON per the spec (any status), or events for ``stream: true``."""
    kind = response.headers.get("content-type", [""])[0]
    if streams(case) and response.status_code == 200:
        assert kind.startswith("text/event-stream"), kind
        for name, data in parse_sse(response.text):
            assert validate_stream_event(name, data) == [], (name, data)
        return True
    content_type_conformance(ctx, response, case)
    response_schema_conformance(ctx, response, case)
    assert kind.startswith("application/json"), kind
    method, path = response.request.method or "", response.request.path_url.split("?")[0]
    if find_operation(method, path) is None:  # a method the path does not take: 404
        assert response.status_code == 404
        problems = schema_problems("#/components/schemas/ErrorResponse", response.json(), path)
    else:
        problems = validate_response(method, path, response.status_code, response.json())
    assert problems == [], problems
    return True


PARAMETRIZE: Callable[[Callable[..., None]], Callable[..., None]] = SCHEMA.parametrize()


@settings(max_examples=EXAMPLES, derandomize=True, database=None, deadline=None,
          suppress_health_check=list(HealthCheck))
@PARAMETRIZE
def test_generated_requests(case: Case[Any], base_url: str) -> None:
    case.call_and_validate(base_url=base_url, headers=dict(BETA),
                           checks=[not_a_server_error, conforms_to_the_spec])
