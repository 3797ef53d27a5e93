"""The request hook ``--verbose`` listens to: every attempt, as it ends, and never a header."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator

import httpx
import pytest

from reconciler.client import REQUEST_LOG, RequestRecord
from tests.fixtures import KEY, error, make_client


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def seen() -> Iterator[list[logging.LogRecord]]:
    handler = Collect()
    REQUEST_LOG.addHandler(handler)
    level = REQUEST_LOG.level
    REQUEST_LOG.setLevel(logging.DEBUG)
    try:
        yield handler.records
    finally:
        REQUEST_LOG.removeHandler(handler)
        REQUEST_LOG.setLevel(level)


def test_every_attempt_is_reported_with_method_path_status_and_time(
    seen: list[logging.LogRecord],
) -> None:
    answers = iter([error(500, "boom"), httpx.Response(200, json={"id": "run_1",
                                                                  "status": "queued"})])

    async def go() -> None:
        async with make_client(lambda request: next(answers), auth="azure",
                               api_version="2024-05-01") as client:
            await client.get_run("thread_a", "run_1")

    asyncio.run(go())
    records: list[RequestRecord] = [r.request for r in seen]  # type: ignore[attr-defined]
    assert [(r.method, r.path, r.status, r.attempt) for r in records] == [
        ("GET", "/v1/threads/thread_a/runs/run_1?api-version=2024-05-01", 500, 0),
        ("GET", "/v1/threads/thread_a/runs/run_1?api-version=2024-05-01", 200, 1),
    ]
    assert all(r.seconds >= 0 for r in records)
    lines = [r.getMessage() for r in seen]
    path = "/v1/threads/thread_a/runs/run_1?api-version=2024-05-01"
    assert lines[1].startswith(f"GET {path} → 200 in ")
    assert lines[1].endswith(" ms (retry 1)")
    assert not any(KEY in line for line in lines)


def test_an_attempt_without_an_answer_says_why(seen: list[logging.LogRecord]) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    async def go() -> None:
        async with make_client(handler, max_retries=0) as client:
            await client.get_run("thread_a", "run_1")

    with pytest.raises(Exception, match="could not connect"):
        asyncio.run(go())
    (record,) = seen
    assert record.request.status is None  # type: ignore[attr-defined]
    assert "→ no answer (ConnectError) in " in record.getMessage()
