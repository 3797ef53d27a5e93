"""``GET /_emulator/stats``: the answers the emulator sent, by status (what benchmarks count)."""

from __future__ import annotations

import httpx

from reconciler.emulator import BackgroundServer, EmulatorConfig, RunTiming, parse_rate_limit


def test_stats_count_every_answer_by_status_and_not_themselves() -> None:
    config = EmulatorConfig(timing=RunTiming.instant(), rate_limit=parse_rate_limit("2/s"))
    with BackgroundServer(config) as server:
        root = server.base_url.removesuffix("/v1")
        headers = {"Authorization": "Bearer k", "OpenAI-Beta": "assistants=v2"}
        statuses = [httpx.get(f"{server.base_url}/threads/thread_missing", headers=headers)
                    .status_code for _ in range(4)]
        first = httpx.get(f"{root}/_emulator/stats").json()
        again = httpx.get(f"{root}/_emulator/stats").json()
    assert statuses.count(429) >= 1 and set(statuses) <= {404, 429}
    expected = {str(code): statuses.count(code) for code in sorted(set(statuses))}
    span = (first.pop("first_request_at"), first.pop("last_answer_at"))
    assert first == {"requests": 4, "by_status": expected}
    assert isinstance(span[0], float) and isinstance(span[1], float) and span[1] > span[0]
    assert (again.pop("first_request_at"), again.pop("last_answer_at")) == span
    assert again == first  # asking is not counted


def test_stats_before_any_request_have_no_span() -> None:
    with BackgroundServer(EmulatorConfig(timing=RunTiming.instant())) as server:
        root = server.base_url.removesuffix("/v1")
        stats = httpx.get(f"{root}/_emulator/stats").json()
    assert stats == {"requests": 0, "by_status": {}, "first_request_at": None,
                     "last_answer_at": None}
