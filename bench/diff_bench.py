"""CPU cost of planning: 100,000 declared runs diffed against their live runs.

Target (PRODUCT.md §9): under 2 s of CPU. Prints the figures; asserts nothing, so a noisy
machine never fails a build. Run: ``python bench/diff_bench.py [--runs N]``.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
from collections.abc import Callable

from reconciler import identity
from reconciler.cli import GC_THRESHOLDS
from reconciler.model import DesiredRun, LiveRun, LiveState, ThreadState
from reconciler.planning import PlanOptions, plan

PROJECT = "bench"
RUNS_PER_THREAD = 20


def build(total: int) -> tuple[list[DesiredRun], LiveState]:
    """Declared runs and live runs that match them, but for every 10th (metadata drift)
    and every 50th (an immutable change): a realistic mix of no-ops and changes."""
    desired: list[DesiredRun] = []
    threads: dict[str, list[LiveRun]] = {}
    for i in range(total):
        thread_id = f"thread_{i // RUNS_PER_THREAD:06d}"
        name = f"run-{i % RUNS_PER_THREAD}"
        spec = {"assistant_id": "asst_1", "instructions": f"Report number {i}.",
                "tools": [{"type": "code_interpreter"}], "temperature": 0.2}
        meta = {"team": "bench", "index": str(i)}
        desired.append(DesiredRun(thread_id=thread_id, name=name, spec=spec, metadata=meta))
        live_spec = dict(spec, instructions="Old text.") if i % 50 == 0 else spec
        live_meta = dict(meta, team="drifted") if i % 10 == 0 else meta
        metadata = {
            **live_meta,
            **identity.reserved_metadata(project=PROJECT, name=name, spec=live_spec,
                                         revision=0, user_metadata=meta),
        }
        threads.setdefault(thread_id, []).append(
            LiveRun(id=f"run_{i:07d}", thread_id=thread_id, status="completed",
                    created_at=1_700_000_000 + i, metadata=metadata,
                    fields={"model": "gpt-4o", **live_spec})
        )
    live = LiveState(threads={
        t: ThreadState(t, tuple(sorted(runs, key=lambda r: r.created_at, reverse=True)))
        for t, runs in threads.items()
    })
    return desired, live


def measure(repeat: int, once: Callable[[], object]) -> list[float]:
    """CPU seconds of each of ``repeat`` calls; the previous result is freed untimed."""
    cpu_times: list[float] = []
    for _ in range(repeat):
        cpu0 = time.process_time()
        result = once()
        cpu_times.append(time.process_time() - cpu0)
        del result
    return cpu_times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5,
                        help="plan this many times; the machine is shared, so min and median")
    args = parser.parse_args()
    desired, live = build(args.runs)
    options = PlanOptions(project=PROJECT)

    def once() -> object:
        return plan(desired, live, options)

    defaults = gc.get_threshold()
    as_python = measure(args.repeat, once)  # interpreter defaults, as a library caller has
    gc.set_threshold(*GC_THRESHOLDS)  # what the `reconciler` command sets at start
    as_cli = measure(args.repeat, once)
    gc.set_threshold(*defaults)

    result = plan(desired, live, options)
    modify = sum(1 for c in result.actionable if c.action.value == "modify")
    replace = sum(1 for c in result.actionable if c.action.value == "replace")
    print(f"runs diffed:        {args.runs:,} on {len(live.threads):,} threads")
    print(f"changes planned:    {len(result.actionable):,} (modify {modify:,}, "
          f"replace {replace:,})")
    for label, times in (("as `reconciler` runs it", as_cli),
                         ("default GC thresholds", as_python)):
        print(f"plan() CPU time:    min {min(times):.3f} s, median "
              f"{statistics.median(times):.3f} s over {args.repeat} runs, {label}"
              f"{'   (target < 2 s)' if times is as_cli else ''}")
    print(f"GC thresholds:      `reconciler` {GC_THRESHOLDS}, defaults {defaults}")


if __name__ == "__main__":
    main()
