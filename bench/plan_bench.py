"""Planning speed against the emulator with injected latency.

Targets (PRODUCT.md §9): a plan over 1,000 threads × 20 runs takes within 1.25× of the ideal
(requests ÷ concurrency × latency), and is ≥ 20× faster than a sequential loop over the
official SDK. The emulator runs in its own process (``reconciler emulator serve``) so that it
does not share a CPU-bound interpreter with the client being measured.

Run: ``python bench/plan_bench.py [--threads 1000] [--runs 20] [--latency-ms 50]
[--concurrency 32] [--sdk-threads 1000]``. Prints the figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

from emulator_process import emulator

from reconciler import identity
from reconciler.cli import GC_THRESHOLDS
from reconciler.client import AssistantsClient, ClientSettings
from reconciler.errors import AmbiguousResultError
from reconciler.live import plan_from_api
from reconciler.model import DesiredRun
from reconciler.planning import PlanOptions

PROJECT = "bench"


def spec_for(thread_index: int, run_index: int) -> dict[str, object]:
    return {"assistant_id": "asst_demo", "instructions": f"Run {run_index} of {thread_index}."}


async def seed(base_url: str, threads: int, runs: int) -> list[str]:
    """Create the threads and their managed runs (instant timing: each run ends at once)."""
    settings = ClientSettings(base_url=base_url, api_key="bench", concurrency=32)
    async with AssistantsClient(settings) as client:
        http = client._http  # seeding needs createThread, which reconciler itself never calls

        async def one_thread(t: int) -> str:
            response = await http.post("threads", json={})
            thread_id: str = response.json()["id"]
            for r in range(runs):
                spec = spec_for(t, r)
                metadata = identity.reserved_metadata(
                    project=PROJECT, name=f"run-{r}", spec=spec, revision=0,
                    user_metadata={"bench": "yes"},
                )
                body = {**spec, "metadata": {"bench": "yes", **metadata}}
                await create_once(client, thread_id, body)
            return thread_id

        return list(await asyncio.gather(*(one_thread(t) for t in range(threads))))


async def create_once(client: AssistantsClient, thread_id: str, body: dict[str, Any]) -> None:
    """Create a run; after an ambiguous failure, only if it was not committed after all."""
    name = body["metadata"][identity.KEY_NAME]
    for _ in range(5):
        try:
            await client.create_run(thread_id, body)
            return
        except AmbiguousResultError:
            runs = await client.list_runs(thread_id)
            if any(run["metadata"].get(identity.KEY_NAME) == name for run in runs):
                return
    raise SystemExit(f"could not seed {thread_id}/{name}")


def desired_for(thread_ids: list[str], runs: int) -> list[DesiredRun]:
    return [
        DesiredRun(thread_id=thread_id, name=f"run-{r}", spec=spec_for(t, r),
                   metadata={"bench": "yes"})
        for t, thread_id in enumerate(thread_ids)
        for r in range(runs)
    ]


async def reconciler_plan(
    base_url: str, desired: list[DesiredRun], concurrency: int
) -> tuple[float, int, int]:
    settings = ClientSettings(base_url=base_url, api_key="bench", concurrency=concurrency)
    async with AssistantsClient(settings) as client:
        started, cpu = time.perf_counter(), time.process_time()
        result = await plan_from_api(client, desired, PlanOptions(project=PROJECT))
        elapsed = time.perf_counter() - started
        print(f"  (client CPU {time.process_time() - cpu:.2f} s of {elapsed:.2f} s)")
        return elapsed, client.requests_sent, len(result.actionable)


def sdk_loop(base_url: str, thread_ids: list[str]) -> float:
    """What a user would write without reconciler: the official SDK, one thread at a time."""
    from openai import OpenAI

    warnings.simplefilter("ignore", DeprecationWarning)
    client = OpenAI(api_key="bench", base_url=base_url, max_retries=0)
    started = time.perf_counter()
    for thread_id in thread_ids:
        list(client.beta.threads.runs.list(thread_id, limit=100))
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--latency-ms", type=float, nargs="+", default=[50.0, 100.0],
                        help="one measurement per latency, on the same seeded state")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--sdk-threads", type=int, default=None,
                        help="threads the SDK loop lists (default: all); fewer are scaled up")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp) / "bench.sqlite"
        started = time.perf_counter()
        with emulator(state, 0, demo=True) as base_url:
            thread_ids = asyncio.run(seed(base_url, args.threads, args.runs))
        print(f"seeded {args.threads:,} threads × {args.runs} runs "
              f"in {time.perf_counter() - started:.1f} s")

        desired = desired_for(thread_ids, args.runs)
        gc.set_threshold(*GC_THRESHOLDS)  # as the `reconciler` command runs
        for latency_ms in args.latency_ms:
            with emulator(state, latency_ms, demo=True) as base_url:
                elapsed, requests, changes = asyncio.run(
                    reconciler_plan(base_url, desired, args.concurrency)
                )
                sample = thread_ids[: args.sdk_threads] if args.sdk_threads else thread_ids
                sdk = sdk_loop(base_url, sample) * len(thread_ids) / len(sample)
            report(args, latency_ms, elapsed, requests, changes, sdk, len(sample),
                   len(thread_ids))


def report(args: argparse.Namespace, latency_ms: float, elapsed: float, requests: int,
           changes: int, sdk: float, sampled: int, threads: int) -> None:
    ideal = requests / args.concurrency * latency_ms / 1000
    print(f"\nlatency {latency_ms:g} ms, concurrency {args.concurrency}, cpus {os.cpu_count()}")
    print(f"reconciler plan:    {elapsed:.2f} s for {requests:,} requests "
          f"({changes} changes planned)")
    print(f"ideal:              {ideal:.2f} s   ratio {elapsed / ideal:.2f}× (target ≤ 1.25×)")
    scaled = "" if sampled == threads else f" (scaled from {sampled} threads)"
    print(f"sequential SDK:     {sdk:.2f} s{scaled}   "
          f"reconciler is {sdk / elapsed:.1f}× faster (target ≥ 20×)")


if __name__ == "__main__":
    main()
