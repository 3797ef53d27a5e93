"""What users feel: whole `reconciler` commands as processes, against an emulator process.

Every figure is a command run the way a user runs it (a fresh interpreter, manifests read and
validated, the API listed, the plan diffed and rendered, the process exited), against an
emulator in its own process on loopback with injected latency, beside the ideal it should
approach: ``requests ÷ concurrency × latency``, where requests are what the emulator counted
(its ``/_emulator/stats``; the protocol's minimum when the emulator has no counter). Peak
memory is each command's maximum resident set (``wait4``, taken by a small launcher process
so that the bench's own size does not count: see ``command_launcher``). A plan that changes
nothing is run three times and its median shown. Before an apply without a rate limit, one
untimed ``plan`` of the same manifests warms the emulator (it keeps each run's JSON encoded
once it has been listed: a plan's median run is warm in the same way, and the ideal counts
the server's own time as zero); its requests are not counted. Asserts nothing.

Run: ``python bench/e2e_bench.py [--preset small|full]``. ``small`` finishes in under two
minutes on a 2-core machine; ``full`` is the issue's scale (1,000 × 20 and 5,000 × 20 runs,
1,000 creates, 20,000 modifies).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml
from command_launcher import Launcher
from emulator_process import emulator

from reconciler import identity
from reconciler.client import AssistantsClient, ClientSettings
from reconciler.emulator import (
    DEMO_FIXTURES_PATH,
    EmulatorConfig,
    RunTiming,
    create_app,
    load_fixtures,
)

PROJECT = "bench"
API_KEY = "bench-key"
FILES = 10


@dataclass(frozen=True)
class Preset:
    threads: int  # the 1,000 × 20 plan
    big_threads: int  # the 100,000-run plan (0: skipped)
    runs: int
    creates: int  # threads that get one new run
    modify_threads: int  # threads whose every run has its metadata changed
    sdk_threads: int  # threads the SDK loop lists (its time is scaled up)
    rate: int  # requests per second the rate-limited emulator allows
    rate_threads: int  # threads of the rate-limited apply (runs × this modifies)
    validate_runs: int


PRESETS = {
    "small": Preset(threads=200, big_threads=0, runs=20, creates=200, modify_threads=50,
                    sdk_threads=40, rate=100, rate_threads=20, validate_runs=20_000),
    "full": Preset(threads=1000, big_threads=5000, runs=20, creates=1000, modify_threads=1000,
                   sdk_threads=100, rate=200, rate_threads=100, validate_runs=100_000),
}


@dataclass(frozen=True)
class Figure:
    name: str
    seconds: float
    requests: int
    ideal: float
    target: str
    peak_mib: float
    note: str = ""

    @property
    def ratio(self) -> float:
        return self.seconds / self.ideal if self.ideal else 0.0


# -- the emulator -----------------------------------------------------------------------------


def spec_for(thread: int, run: int) -> dict[str, Any]:
    return {"assistant_id": "asst_demo", "instructions": f"Run {run} of thread {thread}."}


async def seed(state: Path, threads: int, runs: int) -> list[str]:
    """Threads and their managed runs, created in-process (no latency, instant timing)."""
    config = EmulatorConfig(state_path=str(state), timing=RunTiming.instant(),
                            fixtures=load_fixtures(DEMO_FIXTURES_PATH))
    transport = httpx.ASGITransport(app=create_app(config))
    settings = ClientSettings(base_url="http://emulator/v1", concurrency=16)
    async with AssistantsClient(settings, transport=transport) as client:
        http = client._http  # createThread: reconciler itself never calls it

        async def one(t: int) -> str:
            thread_id: str = (await http.post("threads", json={})).json()["id"]
            for r in range(runs):
                spec = spec_for(t, r)
                reserved = identity.reserved_metadata(
                    project=PROJECT, name=f"run-{r}", spec=spec, revision=0,
                    user_metadata={"bench": "yes"},
                )
                await client.create_run(thread_id, {**spec, "metadata": {"bench": "yes",
                                                                          **reserved}})
            return thread_id

        created = list(await asyncio.gather(*(one(t) for t in range(threads))))
        # Every run read once here, so that it has settled (instant timing) in the saved
        # state: otherwise the first command timed would pay for the emulator advancing
        # every run's status (a write per run), which no real server makes a client wait for.
        await asyncio.gather(*(client.list_runs(thread_id) for thread_id in created))
        return created


def emulator_stats(base_url: str) -> dict[str, int] | None:
    """The emulator's request counters by status, or None when it keeps none."""
    report = emulator_report(base_url)
    return None if report is None else dict(report.get("by_status", {}))


def emulator_report(base_url: str) -> dict[str, Any] | None:
    """The emulator's whole ``/_emulator/stats`` answer, or None when it has none."""
    root = base_url.removesuffix("/v1")
    try:
        answer = httpx.get(f"{root}/_emulator/stats", timeout=5,
                           headers={"Authorization": f"Bearer {API_KEY}"})
    except httpx.TransportError:
        return None
    if answer.status_code != 200:
        return None
    report: dict[str, Any] = answer.json()
    return report


# -- manifests and commands -------------------------------------------------------------------


def write_manifests(folder: Path, thread_ids: Sequence[str], runs: int,
                    extra: int = 0, metadata: str = "yes") -> None:
    """``FILES`` manifest files declaring every run; ``extra`` threads get one run more."""
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    (folder / "reconciler.toml").write_text(f'project = "{PROJECT}"\n')
    per_file = -(-len(thread_ids) // FILES)
    for f in range(FILES):
        chunk = list(enumerate(thread_ids))[f * per_file:(f + 1) * per_file]
        declared = []
        for t, thread_id in chunk:
            for r in range(runs):
                declared.append({"name": f"run-{r}", "thread_id": thread_id,
                                 **spec_for(t, r), "metadata": {"bench": metadata}})
            if t < extra:
                declared.append({"name": "fresh", "thread_id": thread_id,
                                 **spec_for(t, 999), "metadata": {"bench": "yes"}})
        if declared:
            document = {"apiVersion": "reconciler/v1", "kind": "Runs", "runs": declared}
            (folder / f"runs-{f:02d}.yaml").write_text(yaml.safe_dump(document, sort_keys=False))


def reconciler_command() -> list[str]:
    """The installed console script beside this interpreter (what users run), else -m."""
    script = Path(sys.executable).with_name("reconciler")
    return [str(script)] if script.exists() else [sys.executable, "-m", "reconciler"]


#: Started first thing by :func:`main`, while the bench is small (see command_launcher).
LAUNCHER: Launcher | None = None


def run_command(args: Sequence[str], env: dict[str, str]) -> tuple[float, float, float, int]:
    """Wall seconds, CPU seconds, peak MiB and exit code of one whole process."""
    global LAUNCHER
    if LAUNCHER is None:
        LAUNCHER = Launcher()
    done = LAUNCHER.run([*reconciler_command(), *args], env)
    if done.code not in (0, 2):
        print(f"  ! {' '.join(args[:2])} exited {done.code}: {done.stderr_tail}")
    return done.wall, done.cpu, done.peak_mib, done.code


def env_for(base_url: str) -> dict[str, str]:
    return {**os.environ, "OPENAI_API_KEY": API_KEY, "OPENAI_BASE_URL": base_url}


def timed(name: str, args: Sequence[str], base_url: str, *, minimum: int, latency_ms: float,
          concurrency: int, target: str, note: str = "", repeat: int = 1) -> Figure:
    """One command against the emulator at ``base_url`` (the median of ``repeat`` runs, for
    a command that changes nothing); requests from its counters, per run."""
    before = emulator_stats(base_url)
    runs = [run_command(args, env_for(base_url)) for _ in range(repeat)]
    after = emulator_stats(base_url)
    seconds = statistics.median(run[0] for run in runs)
    peak = max(run[2] for run in runs)
    requests = minimum
    if before is not None and after is not None:
        requests = (sum(after.values()) - sum(before.values())) // repeat
    ideal = requests / concurrency * latency_ms / 1000
    return Figure(name, seconds, requests, ideal, target, peak, note)


def sdk_loop(base_url: str, thread_ids: Sequence[str]) -> float:
    """What a user would write without reconciler: the official SDK, thread by thread."""
    from openai import OpenAI

    warnings.simplefilter("ignore", DeprecationWarning)
    client = OpenAI(api_key=API_KEY, base_url=base_url, max_retries=0)
    started = time.perf_counter()
    for thread_id in thread_ids:
        list(client.beta.threads.runs.list(thread_id, limit=100))
    return time.perf_counter() - started


# -- the scenarios ----------------------------------------------------------------------------


@dataclass
class Bench:
    preset: Preset
    work: Path
    latency_ms: float
    concurrency: int

    def flags(self) -> list[str]:
        return ["--concurrency", str(self.concurrency)]

    def fresh_state(self, base: Path, name: str) -> Path:
        """A copy of the seeded state, so that one scenario's writes never reach another's."""
        copy = self.work / f"{name}.sqlite"
        shutil.copyfile(base, copy)
        return copy

    def warm(self, url: str, folder: Path) -> None:
        """One untimed plan of ``folder``, so that the emulator has listed every thread once."""
        run_command(["plan", str(folder), *self.flags()], env_for(url))

    def plan(self, base: Path, threads: list[str], label: str, target: str) -> Figure:
        folder = self.work / f"manifests-{label}"
        write_manifests(folder, threads, self.preset.runs)
        with emulator(self.fresh_state(base, label), self.latency_ms, api_key=API_KEY) as url:
            return timed(f"plan {len(threads):,} × {self.preset.runs} (no changes, median of 3)",
                         ["plan", str(folder), *self.flags()], url, minimum=len(threads),
                         latency_ms=self.latency_ms, concurrency=self.concurrency,
                         target=target, repeat=3)

    def apply_creates(self, base: Path, threads: list[str]) -> Figure:
        count = self.preset.creates
        folder = self.work / "manifests-creates"
        write_manifests(folder, threads, self.preset.runs, extra=count)
        with emulator(self.fresh_state(base, "creates"), self.latency_ms,
                      api_key=API_KEY) as url:
            self.warm(url, folder)
            # per new run: the plan's list, the re-read before the create, the create
            return timed(f"apply {count:,} creates on {count:,} threads",
                         ["apply", str(folder), "--auto-approve", *self.flags()], url,
                         minimum=len(threads) + 2 * count, latency_ms=self.latency_ms,
                         concurrency=self.concurrency, target="≤ 1.3×")

    def apply_modifies(self, base: Path, threads: list[str], *, rate: int = 0) -> Figure:
        chosen = threads[: self.preset.rate_threads if rate else self.preset.modify_threads]
        count = len(chosen) * self.preset.runs
        folder = self.work / f"manifests-modify-{rate}"
        write_manifests(folder, chosen, self.preset.runs, metadata="changed")
        label = f"modify-{rate}"
        with emulator(self.fresh_state(base, label), self.latency_ms, rate=rate,
                      api_key=API_KEY) as url:
            if not rate:  # a rate-limited one starts with the emulator's bucket full
                self.warm(url, folder)
            figure = timed(f"apply {count:,} modifies" + (f" at {rate}/s" if rate else ""),
                           ["apply", str(folder), "--auto-approve", *self.flags()], url,
                           minimum=len(chosen) + count, latency_ms=self.latency_ms,
                           concurrency=self.concurrency, target="≤ 1.3×")
            report = emulator_report(url) or {}
        if not rate:
            return figure
        limited = report.get("by_status", {}).get("429", 0)
        answered = figure.requests - limited  # the requests the allowance let through
        # The bucket starts full: its first second's worth is a burst above the rate. Shares
        # of what it allowed over the whole process (start-up and manifests included) and
        # over the span the command used the API (first request to last answer).
        allowed = figure.seconds * rate + rate
        first, last = report.get("first_request_at"), report.get("last_answer_at")
        span = f"{answered / ((last - first) * rate + rate):.0%} while requesting, " if (
            first is not None and last is not None) else ""
        note = (f"{span}{answered / allowed:.0%} of the whole process; {limited} of "
                f"{figure.requests} answered 429 ({limited / max(figure.requests, 1):.1%})")
        return Figure(figure.name, figure.seconds, figure.requests, answered / rate,
                      "≥ 95% of rate, < 1% 429", figure.peak_mib, note)

    def sdk(self, base: Path, threads: list[str]) -> float:
        sample = threads[: self.preset.sdk_threads]
        with emulator(self.fresh_state(base, "sdk"), self.latency_ms, api_key=API_KEY) as url:
            return sdk_loop(url, sample) * len(threads) / len(sample)

    def validate(self) -> Figure:
        runs = self.preset.validate_runs
        threads = [f"thread_{i:06d}" for i in range(runs // self.preset.runs)]
        folder = self.work / "manifests-validate"
        write_manifests(folder, threads, self.preset.runs)
        seconds, cpu, peak, _ = run_command(["validate", str(folder)], dict(os.environ))
        return Figure(f"validate {runs:,} runs in {FILES} files", seconds, 0, 0.0,
                      "< 3 s CPU at 100,000", peak, f"{cpu:.2f} s CPU")


def startup(repeat: int = 5) -> float:
    """The fastest of ``repeat`` runs of ``reconciler --help``."""
    return min(run_command(["--help"], dict(os.environ))[0] for _ in range(repeat))


HEADER = (f"{'command':<44} {'requests':>9} {'ideal':>8} {'measured':>9} {'ratio':>6} "
          f"{'peak':>8}  target")


def row(f: Figure) -> str:
    ideal = f"{f.ideal:.2f} s" if f.ideal else "—"
    ratio = f"{f.ratio:.2f}×" if f.ideal else "—"
    peak = f"{f.peak_mib:>5.0f} MiB" if f.peak_mib else "        —"
    return (f"{f.name:<44} {f.requests or '—':>9} {ideal:>8} {f.seconds:>7.2f} s "
            f"{ratio:>6} {peak}  {f.target}" + (f"  ({f.note})" if f.note else ""))


def table(figures: Sequence[Figure]) -> str:
    return "\n".join([HEADER, *(row(f) for f in figures)])


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--preset", choices=sorted(PRESETS), default="small")
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    preset = PRESETS[args.preset]
    global LAUNCHER
    LAUNCHER = Launcher()  # now, while this process is small (see command_launcher)
    with tempfile.TemporaryDirectory(prefix="reconciler-e2e-bench-") as tmp:
        bench = Bench(preset, Path(tmp), args.latency_ms, args.concurrency)
        started = time.perf_counter()
        base = bench.work / "seeded-plan.sqlite"
        threads = asyncio.run(seed(base, preset.threads, preset.runs))
        print(f"seeded {preset.threads:,} threads × {preset.runs} runs in "
              f"{time.perf_counter() - started:.1f} s; latency {args.latency_ms:g} ms, "
              f"concurrency {args.concurrency}, {os.cpu_count()} CPUs")
        figures: list[Figure] = []

        def done(figure: Figure) -> None:
            figures.append(figure)
            print("  " + row(figure), flush=True)  # as it comes: a long run shows progress

        done(bench.plan(base, threads, "plan", "≤ 1.25×"))
        sdk = bench.sdk(base, threads)
        done(Figure(f"SDK loop over the same {len(threads):,} threads", sdk,
                              len(threads), len(threads) * args.latency_ms / 1000,
                              "reconciler ≥ 20× faster", 0.0,
                              f"reconciler is {sdk / figures[0].seconds:.1f}× faster"))
        if preset.big_threads:
            big = bench.work / "seeded-big.sqlite"
            big_threads = asyncio.run(seed(big, preset.big_threads, preset.runs))
            done(bench.plan(big, big_threads, "big", "≤ 1.5×, < 1 GiB"))
        done(bench.apply_creates(base, threads))
        done(bench.apply_modifies(base, threads))
        done(bench.apply_modifies(base, threads, rate=preset.rate))
        done(bench.validate())
        done(Figure("reconciler --help (fastest of 5)", startup(), 0, 0.0, "< 0.12 s", 0.0))
        print()
        print(table(figures))
        print(f"whole bench: {time.perf_counter() - started:.0f} s")
    LAUNCHER.close()


if __name__ == "__main__":
    main()
