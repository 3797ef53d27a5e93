"""Pacing from the rate-limit headers: the Pacer with plain values, the client against
``httpx.MockTransport`` on a fake clock, and the real emulator over loopback."""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import math
import time
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

import httpx
import pytest

from reconciler import errors
from reconciler.client import REQUEST_LOG, AssistantsClient, ClientSettings, RequestRecord
from reconciler.client.pacing import Pacer, parse_count, parse_reset
from reconciler.emulator import (
    BackgroundServer,
    EmulatorConfig,
    Latency,
    RunTiming,
    parse_rate_limit,
)
from reconciler.emulator.knobs import format_reset
from tests.fixtures import KEY, error

T = TypeVar("T")
THREAD = {"id": "thread_a", "object": "thread", "created_at": 1, "metadata": {}}


class FakeTime:
    """Virtual time: a monotonic clock that moves only when every task waits in its sleep,
    and then straight to the earliest sleeper's wake-up. Every sleep is recorded."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        woken: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self.now + max(0.0, seconds), next(self._order), woken))
        await woken

    def run(self, work: Coroutine[Any, Any, T]) -> T:
        """``work`` to its end, the clock moved on whenever nothing else can run."""

        async def drive() -> T:
            task = asyncio.ensure_future(work)
            while not task.done():
                for _ in range(50):  # let every task that can run reach its next wait
                    await asyncio.sleep(0)
                if self._sleepers and not task.done():
                    when, _, woken = heapq.heappop(self._sleepers)
                    self.now = max(self.now, when)
                    if not woken.done():  # a cancelled sleeper is just dropped
                        woken.set_result(None)
            return task.result()

        return asyncio.run(drive())


class Bucket:
    """A server's token bucket on the fake clock, answering as the emulator does: the
    allowance left, its size, the time until it is full (OpenAI's format), 429 when empty."""

    def __init__(self, clock: FakeTime, size: int, rate: float) -> None:
        self.clock, self.size, self.rate = clock, size, rate
        self.tokens, self.updated = float(size), clock.now
        self.starts: list[float] = []  # fake times of the requests let through
        self.refused = 0

    def handler(self, request: httpx.Request) -> httpx.Response:
        now = self.clock.now
        self.tokens = min(self.size, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        allowed = self.tokens >= 1
        if allowed:
            self.tokens -= 1
            self.starts.append(now)
        headers = {
            "x-ratelimit-limit-requests": str(self.size),
            "x-ratelimit-remaining-requests": str(math.floor(self.tokens)),
            "x-ratelimit-reset-requests": format_reset((self.size - self.tokens) / self.rate),
        }
        if allowed:
            return httpx.Response(200, json=THREAD, headers=headers)
        self.refused += 1
        wait_ms = math.ceil((1 - self.tokens) / self.rate * 1000)
        return error(429, "Rate limit reached", **headers, **{"retry-after-ms": str(wait_ms)})


def client_on(fake: FakeTime, handler: httpx.MockTransport | None = None, *,
              bucket: Bucket | None = None, **settings: object) -> AssistantsClient:
    transport = handler or httpx.MockTransport(bucket.handler if bucket else _plain)
    base: dict[str, object] = {"base_url": "https://api.example.test/v1", "api_key": KEY}
    base.update(settings)
    return AssistantsClient(ClientSettings(**base),  # type: ignore[arg-type]
                            transport=transport, sleep=fake.sleep, clock=fake)


def _plain(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json=THREAD)


async def _get_threads(client: AssistantsClient, count: int) -> None:
    await asyncio.gather(*(client.get_thread("thread_a") for _ in range(count)))


# --- parsing the headers ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("1s", 1.0), ("6m0s", 360.0), ("1h2m3.5s", 3723.5), ("120ms", 0.12), ("0s", 0.0),
     ("1.5s", 1.5), ("2", 2.0), ("0.25", 0.25), (" 7ms ", 0.007), ("1m", 60.0),
     ("250us", 0.00025), ("3µs", 3e-6), ("10ns", 1e-8), ("1h", 3600.0), (".5s", 0.5)],
)
def test_reset_durations_in_openai_format_are_read(text: str, seconds: float) -> None:
    assert parse_reset(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "text",
    [None, "", "soon", "-1s", "1x", "s", "1s2", "1 s", "nan", "inf", "1e3", "1_000",
     "6m0", "ms", "1.2.3s", "1s-2s", "0x10", "²s", "٣s", "٣"],
)
def test_malformed_reset_durations_are_ignored(text: str | None) -> None:
    assert parse_reset(text) is None


@pytest.mark.parametrize("text", [None, "", "-3", "1.5", "ten", "1e3", "٣", "nan"])
def test_malformed_counts_are_ignored(text: str | None) -> None:
    assert parse_count(text) is None


# --- the Pacer with plain values ----------------------------------------------------------


def headers(limit: object, remaining: object, reset: object) -> dict[str, str]:
    return {"x-ratelimit-limit-requests": str(limit),
            "x-ratelimit-remaining-requests": str(remaining),
            "x-ratelimit-reset-requests": str(reset)}


def test_no_delay_while_plenty_remains() -> None:
    pacer = Pacer()
    pacer.learn(headers(1000, 800, "12s"), now=0.0)
    assert pacer.rate == pytest.approx(200 / 12)
    assert [pacer.reserve(now=0.0) for _ in range(64)] == [0.0] * 64
    assert pacer.paced == 0


def test_nothing_known_means_no_delay() -> None:
    pacer = Pacer()
    assert [pacer.reserve(now=0.0) for _ in range(100)] == [0.0] * 100
    pacer.learn({"x-ratelimit-remaining-requests": "0"}, now=0.0)  # no rate to pace at
    assert pacer.reserve(now=0.0) == 0.0


def test_starts_are_spaced_at_the_learned_rate_once_the_allowance_is_low() -> None:
    pacer = Pacer(margin=1.0)
    pacer.learn(headers(100, 4, "960ms"), now=10.0)  # 96 spent, full in 0.96 s: 100/s
    assert pacer.rate == pytest.approx(100.0)
    waits = [pacer.reserve(now=10.0) for _ in range(8)]
    # 4 left, one kept spare: three start at once, then one every 10 ms on one timeline
    assert waits[:3] == [0.0, 0.0, 0.0]
    assert waits[3:] == pytest.approx([0.01, 0.02, 0.03, 0.04, 0.05])
    assert pacer.paced == 5


def test_requests_in_flight_count_against_the_allowance() -> None:
    pacer = Pacer(margin=1.0)
    pacer.learn(headers(100, 10, "900ms"), now=0.0)
    assert [pacer.reserve(now=0.0) for _ in range(9)] == [0.0] * 9
    assert pacer.reserve(now=0.0) > 0  # the tenth would leave nothing spare
    for _ in range(10):
        pacer.release()
    assert pacer.in_flight == 0
    assert pacer.reserve(now=0.0) == 0.0  # nothing in flight: the 10 left cover it again


def test_refill_since_the_last_answer_is_counted() -> None:
    pacer = Pacer(margin=1.0)
    pacer.learn(headers(100, 0, "1s"), now=0.0)
    assert pacer.reserve(now=0.0) == pytest.approx(0.02)  # one for it, one spare
    pacer.release()
    assert pacer.reserve(now=0.5) == 0.0  # 50 have refilled since


def test_the_estimate_follows_a_changing_rate() -> None:
    pacer = Pacer()
    for step in range(20):
        pacer.learn(headers(100, 0, "1s"), now=step * 0.01)
    assert pacer.rate == pytest.approx(100.0)
    for step in range(25):  # the limit tightens to 20/s: full in 5 s
        pacer.learn(headers(100, 0, "5s"), now=1.0 + step * 0.05)
    assert pacer.rate == pytest.approx(20.0, rel=0.01)
    for _ in range(40):  # and loosens again; samples from a fuller allowance count less
        pacer.learn(headers(100, 50, "250ms"), now=3.0)
    assert pacer.rate == pytest.approx(200.0, rel=0.01)


def test_malformed_headers_change_nothing() -> None:
    pacer = Pacer()
    pacer.learn(headers(100, 40, "600ms"), now=0.0)
    rate = pacer.rate
    unusable = [headers(100, "lots", "1s"), headers(100, 200, "1s"), headers(100, -1, "1s"),
                headers(0, 0, "0s"), headers(100, "", "1s"), {}]
    for bad in unusable:  # no usable allowance: the whole answer is ignored
        pacer.learn(bad, now=0.0)
    bad_resets = [headers(100, 40, "soon"), headers(100, 40, "-5s"), headers(100, 40, "0s"),
                  headers(100, 40, ""), headers("x", 40, "1s"), headers(100, 40, "1e400s")]
    for bad in bad_resets:  # the allowance is read, the rate is left alone
        pacer.learn(bad, now=0.0)
    assert pacer.rate == rate
    assert [pacer.reserve(now=0.0) for _ in range(39)] == [0.0] * 39  # 40 left, 1 spare
    assert pacer.reserve(now=0.0) > 0


def test_one_wait_is_capped() -> None:
    pacer = Pacer(max_wait=5.0)
    pacer.learn(headers(3, 0, "20s"), now=0.0)  # 3 a minute
    waits = [pacer.reserve(now=0.0) for _ in range(10)]
    assert max(waits) == 5.0 and waits == sorted(waits)


# --- the client against MockTransport, on a fake clock ------------------------------------


def test_the_client_adds_no_wait_while_plenty_remains() -> None:
    fake = FakeTime()
    bucket = Bucket(fake, size=10_000, rate=1000.0)

    async def go() -> None:
        async with client_on(fake, bucket=bucket, concurrency=8) as client:
            await _get_threads(client, 200)

    fake.run(go())
    assert fake.sleeps == []
    assert len(bucket.starts) == 200 and bucket.refused == 0


def test_the_client_paces_to_the_servers_rate_without_429s() -> None:
    fake = FakeTime()
    bucket = Bucket(fake, size=20, rate=50.0)
    begun = fake.now

    async def go() -> None:
        async with client_on(fake, bucket=bucket, concurrency=8) as client:
            await _get_threads(client, 220)

    fake.run(go())
    assert bucket.refused == 0 and len(bucket.starts) == 220
    # 20 at once, then 200 at 50/s: 4 s of the fake clock, with one request's slack
    assert fake.now - begun == pytest.approx(200 / 50, abs=2 / 50)
    gaps = [b - a for a, b in zip(bucket.starts[40:], bucket.starts[41:], strict=False)]
    assert min(gaps) == pytest.approx(1 / 50, rel=0.05)


def test_the_client_follows_the_server_when_its_rate_drops() -> None:
    fake = FakeTime()
    bucket = Bucket(fake, size=20, rate=100.0)

    async def go() -> None:
        async with client_on(fake, bucket=bucket, concurrency=4) as client:
            await _get_threads(client, 100)
            bucket.rate = 20.0
            started = fake.now
            await _get_threads(client, 100)
            assert fake.now - started >= 100 / 20 * 0.9

    fake.run(go())
    assert len(bucket.starts) == 200
    assert bucket.refused <= 2  # at most the first answers after the change


def test_malformed_rate_limit_headers_are_ignored_by_the_client() -> None:
    fake = FakeTime()
    answers = iter([headers("lots", "-1", "1s2m"), headers(100, 0, "soon"),
                    headers(100, 500, "1s"), headers("", "", ""), headers(5, 0, "inf")] * 4)

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=THREAD, headers=next(answers))

    async def go() -> None:
        async with client_on(fake, httpx.MockTransport(handler), concurrency=1) as client:
            for _ in range(20):
                assert (await client.get_thread("thread_a"))["id"] == "thread_a"

    fake.run(go())
    assert fake.sleeps == []


def test_a_429_with_retry_after_is_still_honoured() -> None:
    fake = FakeTime()
    seen: list[float] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(fake.now)
        if len(seen) == 1:  # the pacer would wait 20 ms; the server asks for 250
            return error(429, "Rate limit reached", **headers(100, 0, "1s"),
                         **{"retry-after-ms": "250"})
        return httpx.Response(200, json=THREAD, headers=headers(100, 99, "10ms"))

    async def go() -> None:
        async with client_on(fake, httpx.MockTransport(handler), concurrency=1) as client:
            await client.get_thread("thread_a")

    fake.run(go())
    assert len(seen) == 2
    assert seen[1] - seen[0] >= 0.25
    assert 0.25 in fake.sleeps


def test_429s_still_count_against_max_retries() -> None:
    fake = FakeTime()
    calls: list[float] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(fake.now)
        return error(429, "Rate limit reached", **headers(100, 0, "1s"),
                     **{"retry-after-ms": "10"})

    async def go() -> None:
        async with client_on(fake, httpx.MockTransport(handler), max_retries=3) as client:
            with pytest.raises(errors.RateLimitError):
                await client.get_thread("thread_a")

    fake.run(go())
    assert len(calls) == 4


def test_a_request_cancelled_while_it_waits_is_no_longer_counted() -> None:
    fake = FakeTime()
    bucket = Bucket(fake, size=2, rate=1.0)

    async def go() -> None:
        async with client_on(fake, bucket=bucket, concurrency=4) as client:
            await client.get_thread("thread_a")  # 1 left: the next one waits
            waiting = asyncio.ensure_future(client.get_thread("thread_a"))
            for _ in range(20):
                await asyncio.sleep(0)
            assert fake.sleeps and client._pacer.in_flight == 1
            waiting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await waiting
            assert client._pacer.in_flight == 0

    fake.run(go())
    assert len(bucket.starts) == 1


# --- the real emulator over loopback ------------------------------------------------------


@contextlib.contextmanager
def statuses() -> Iterator[list[int | None]]:
    """The status of every attempt, from the client's request log."""
    seen: list[int | None] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            request: RequestRecord = record.__dict__["request"]
            seen.append(request.status)

    handler, level = Collect(), REQUEST_LOG.level
    REQUEST_LOG.addHandler(handler)
    REQUEST_LOG.setLevel(logging.DEBUG)
    try:
        yield seen
    finally:
        REQUEST_LOG.removeHandler(handler)
        REQUEST_LOG.setLevel(level)


def test_against_the_emulators_rate_limit_429s_stay_rare() -> None:
    rate, count = 50, 300
    config = EmulatorConfig(api_key=KEY, timing=RunTiming.instant(),
                            rate_limit=parse_rate_limit(f"{rate}/s"),
                            latency=Latency("fixed", 0.02))
    failures: list[BaseException] = []

    async def go(url: str) -> float:
        settings = ClientSettings(base_url=url, api_key=KEY, concurrency=32)
        async with AssistantsClient(settings) as client:
            created = await client._http.post("threads", json={})
            thread_id = created.json()["id"]

            async def one() -> None:
                try:
                    await client.get_thread(thread_id)
                except errors.ApiError as exc:
                    failures.append(exc)

            started = time.monotonic()
            await asyncio.gather(*(one() for _ in range(count)))
            return time.monotonic() - started

    with BackgroundServer(config) as server, statuses() as seen:
        seconds = asyncio.run(go(server.base_url))
    limited = seen.count(429)
    allowed = rate * seconds + rate  # the bucket starts full: one second's worth at once
    print(f"\n{count} requests at concurrency 32 against {rate}/s: {seconds:.2f} s, "
          f"{count / allowed:.1%} of the allowed throughput, {limited} of {len(seen)} "
          f"answered 429")
    assert failures == []
    assert seen.count(200) == count
    assert limited < 0.01 * len(seen)
