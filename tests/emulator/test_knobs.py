"""Each knob: latency, rate limit, injected 500s, dropped connections, lost creates, seed."""

from __future__ import annotations

import asyncio
import time

import httpx
import openai
import pytest

from reconciler.emulator import BackgroundServer, parse_faults, parse_latency, parse_rate_limit
from tests.emulator.support import (
    BETA,
    FakeClock,
    SpecChecker,
    asgi_client,
    make_config,
    sdk_client,
)


def test_fixed_latency_delays_every_response() -> None:
    with BackgroundServer(make_config(latency=parse_latency("80ms"))) as srv, \
            httpx.Client(base_url=srv.base_url, headers=BETA) as http:
        http.post("/threads")  # warm the connection
        started = time.perf_counter()
        for _ in range(3):
            assert http.post("/threads").status_code == 200
        elapsed = time.perf_counter() - started
    assert elapsed >= 3 * 0.08


def test_latency_is_when_the_answer_starts_with_the_work_done_within_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The request is worked on as it arrives and its answer held until the latency is up:
    requests that arrive together are not worked one after another once their delays end."""
    from reconciler.emulator import knobs

    order: list[str] = []

    async def app(scope: object, receive: object, send: knobs.Send) -> None:
        order.append("worked")
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    async def sleep(seconds: float) -> None:
        order.append("waited")
        assert 0 < seconds <= 0.3

    async def sent(message: knobs.Message) -> None:
        order.append(message["type"])

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": b"", "more_body": False}

    monkeypatch.setattr(asyncio, "sleep", sleep)  # the one the knobs wait with
    middleware = knobs.KnobsMiddleware(app, make_config(latency=parse_latency("300ms")))
    scope = {"type": "http", "method": "GET", "path": "/v1/threads/t/runs", "headers": []}
    asyncio.run(middleware(scope, receive, sent))
    assert order == ["worked", "waited", "http.response.start", "http.response.body"]


def test_distributed_latency_is_seeded() -> None:
    import random

    latency = parse_latency("uniform:10ms..90ms")
    assert latency is not None
    first = [latency.sample(random.Random("7:latency")) for _ in range(5)]
    again = [latency.sample(random.Random("7:latency")) for _ in range(5)]
    assert first == again and all(0.01 <= s <= 0.09 for s in first)


def test_rate_limit_answers_429_with_retry_headers(clock: FakeClock,
                                                   spec_checker: SpecChecker) -> None:
    async def scenario() -> None:
        config = make_config(rate_limit=parse_rate_limit("2/s"), clock=clock)
        async with asgi_client(config, spec_checker) as http:
            first = await http.post("/threads")
            assert first.headers["x-ratelimit-limit-requests"] == "2"
            assert first.headers["x-ratelimit-remaining-requests"] == "1"
            assert (await http.post("/threads")).status_code == 200
            limited = await http.post("/threads")
            assert limited.status_code == 429
            assert limited.json()["error"]["code"] == "rate_limit_exceeded"
            assert limited.headers["retry-after"] == "1"
            assert limited.headers["retry-after-ms"] == "500"
            assert limited.headers["x-ratelimit-remaining-requests"] == "0"
            assert limited.headers["x-request-id"].startswith("req_")
            clock.advance(0.5)
            assert (await http.post("/threads")).status_code == 200
    asyncio.run(scenario())


def test_sdk_retries_after_a_429(spec_checker: SpecChecker) -> None:
    with BackgroundServer(make_config(rate_limit=parse_rate_limit("5/s"))) as srv:
        patient = sdk_client(srv.base_url, spec_checker, max_retries=5)
        impatient = sdk_client(srv.base_url, spec_checker, max_retries=0)
        for _ in range(5):
            impatient.beta.threads.create()
        with pytest.raises(openai.RateLimitError):
            impatient.beta.threads.create()
        assert patient.beta.threads.create().id.startswith("thread_")


def test_injected_500s_are_capped_and_filtered(spec_checker: SpecChecker) -> None:
    with BackgroundServer(make_config(faults=parse_faults("500=1*2@createThread"))) as srv:
        client = sdk_client(srv.base_url, spec_checker)
        with pytest.raises(openai.InternalServerError):
            client.beta.threads.create()
        client.beta.assistants.create(model="gpt-4o")  # another operation is not affected
        with pytest.raises(openai.InternalServerError):
            client.beta.threads.create()
        assert client.beta.threads.create().id.startswith("thread_")  # the cap is reached


def test_dropped_connection_over_a_socket() -> None:
    with BackgroundServer(make_config(faults=parse_faults("drop=1*1"))) as srv, \
            httpx.Client(base_url=srv.base_url, headers=BETA) as http:
        with pytest.raises(httpx.TransportError):
            http.post("/threads")
        assert http.post("/threads").status_code == 200


def test_dropped_connection_in_process_is_a_transport_error() -> None:
    async def scenario() -> None:
        async with asgi_client(make_config(faults=parse_faults("drop=1*1@POST"))) as http:
            with pytest.raises(httpx.TransportError):
                await http.post("/threads")
            assert (await http.post("/threads")).status_code == 200
    asyncio.run(scenario())


def test_lost_create_is_committed_but_its_response_is_lost(spec_checker: SpecChecker) -> None:
    config = make_config(faults=parse_faults("lost_create=1*1@createRun"))
    with BackgroundServer(config) as srv:
        client = sdk_client(srv.base_url, spec_checker)
        assistant = client.beta.assistants.create(model="gpt-4o")  # not createRun: unaffected
        thread = client.beta.threads.create()
        with pytest.raises(openai.APIConnectionError):
            client.beta.threads.runs.create(thread.id, assistant_id=assistant.id,
                                            metadata={"key": "lost"})
        runs = client.beta.threads.runs.list(thread.id).data
        assert [r.metadata for r in runs] == [{"key": "lost"}]


def test_lost_create_in_process(spec_checker: SpecChecker) -> None:
    async def scenario() -> None:
        config = make_config(faults=parse_faults("lost_create=1*1"))
        async with asgi_client(config, spec_checker) as http:
            with pytest.raises(httpx.TransportError):
                await http.post("/assistants", json={"model": "gpt-4o", "name": "ghost"})
            listed = (await http.get("/assistants")).json()["data"]
            assert [a["name"] for a in listed] == ["ghost"]
    asyncio.run(scenario())


def _fault_pattern(seed: int) -> tuple[list[int], list[str]]:
    async def scenario() -> tuple[list[int], list[str]]:
        config = make_config(seed=seed, faults=parse_faults("500=0.5"))
        statuses, ids = [], []
        async with asgi_client(config) as http:
            for _ in range(24):
                response = await http.post("/threads")
                statuses.append(response.status_code)
                if response.status_code == 200:
                    ids.append(response.json()["id"])
        return statuses, ids
    result: tuple[list[int], list[str]] = asyncio.run(scenario())
    return result


def test_same_seed_same_faults_and_ids() -> None:
    first, again, other = _fault_pattern(42), _fault_pattern(42), _fault_pattern(43)
    assert first == again
    assert {500, 200} <= set(first[0])
    assert first != other
