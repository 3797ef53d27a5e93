"""The floor under a plan on this machine: the emulator's answers with almost no client at all.

``e2e_bench.py`` sets each command beside ``requests ÷ concurrency × latency``, an ideal that
takes the server's own time as zero. On a small machine the emulator shares the CPUs with
the client, so this prints what the same requests take from the barest client there is (raw
asyncio sockets, one hand-written GET each, the body only counted), then the read phase of
reconciler's client in-process, then the whole ``reconciler plan`` process, all against one
emulator process with the same latency and concurrency, in one run.

Then what a plan must do before its first request, since a manifest error means nothing is
sent to the API: the interpreter's start-up alone (``python -c pass``), ``reconciler
validate`` of the same manifests as a whole process, and libyaml producing the files' events
with no value built from them (the least any YAML reader with positions pays, shared over
the usable CPUs at best). Their sum with the bare client's reads is the floor of a plan that
validates before it sends, on this machine, beside the ideal.

Run: ``python bench/floor_bench.py [--threads 1000] [--runs 20]``. Asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from e2e_bench import API_KEY, env_for, run_command, seed, write_manifests
from emulator_process import emulator

from reconciler.client import AssistantsClient, ClientSettings
from reconciler.live import read_live_state

_EventLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


async def _bare_get(host: str, port: int, paths: asyncio.Queue[str]) -> int:
    """GETs over one kept-alive connection until the queue is empty; bytes of body read."""
    reader, writer = await asyncio.open_connection(host, port)
    total = 0
    while not paths.empty():
        path = paths.get_nowait()
        writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer "
                     f"{API_KEY}\r\nOpenAI-Beta: assistants=v2\r\n\r\n".encode())
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length:"))
        total += len(await reader.readexactly(length))
    writer.close()
    return total


async def bare_client(base_url: str, threads: list[str], concurrency: int) -> float:
    """Seconds for the barest client to list every thread, ``concurrency`` at a time."""
    host, port = base_url.removeprefix("http://").split("/")[0].split(":")
    paths: asyncio.Queue[str] = asyncio.Queue()
    for thread_id in threads:
        paths.put_nowait(f"/v1/threads/{thread_id}/runs?limit=100&order=desc")
    started = time.perf_counter()
    await asyncio.gather(*(_bare_get(host, int(port), paths) for _ in range(concurrency)))
    return time.perf_counter() - started


CPU_PER_REQUEST: list[float] = []  # reconciler's client, milliseconds, one per read


async def reconciler_read(base_url: str, threads: list[str], concurrency: int) -> float:
    settings = ClientSettings(base_url=base_url, api_key=API_KEY, concurrency=concurrency)
    async with AssistantsClient(settings) as client:
        started, cpu = time.perf_counter(), time.process_time()
        await read_live_state(client, threads)
        CPU_PER_REQUEST.append((time.process_time() - cpu) * 1000 / len(threads))
        return time.perf_counter() - started


def interpreter_start() -> float:
    """Seconds of ``python -c pass``: what every command pays before its first import."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    return time.perf_counter() - started


def yaml_events_cpu(folder: Path) -> float:
    """CPU seconds for libyaml to produce every event of the folder's manifests (no values,
    no checks): the least any YAML reader that keeps positions can spend on them."""
    cpu = time.process_time()
    for path in sorted(folder.glob("*.yaml")):
        loader = _EventLoader(path.read_text())
        try:
            while not isinstance(loader.get_event(), yaml.StreamEndEvent):
                pass
        finally:
            loader.dispose()
    return time.process_time() - cpu


def usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def print_load_floor(folder: Path, reads: dict[str, float], ideal: float) -> None:
    """Start-up, validation and parsing beside the reads, and their sum beside the ideal."""
    start = statistics.median(interpreter_start() for _ in range(5))
    validate = [run_command(["validate", str(folder)], dict(os.environ)) for _ in range(3)]
    events = statistics.median(yaml_events_cpu(folder) for _ in range(3))
    cpus = usable_cpus()
    print(f"  {'python -c pass':<44} median {start:5.2f} s")
    print(f"  {'reconciler validate, whole process':<44} median "
          f"{statistics.median(v[0] for v in validate):5.2f} s, "
          f"{statistics.median(v[1] for v in validate):.2f} s CPU")
    print(f"  {'libyaml events only, one core':<44} median {events:5.2f} s CPU "
          f"({events / cpus:.2f} s on {cpus} CPUs at best)")
    for name, read in reads.items():
        floor = start + events / cpus + read
        print(f"  floor of a plan that validates before it sends (start-up + events on {cpus} "
              f"CPUs + {name}): {floor:.2f} s, {floor / ideal:.2f}× the ideal")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--threads", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="reconciler-floor-") as tmp:
        state = Path(tmp) / "state.sqlite"
        threads = asyncio.run(seed(state, args.threads, args.runs))
        folder = Path(tmp) / "manifests"
        write_manifests(folder, threads, args.runs)
        ideal = len(threads) / args.concurrency * args.latency_ms / 1000
        print(f"{len(threads):,} threads × {args.runs} runs, latency {args.latency_ms:g} ms, "
              f"concurrency {args.concurrency}: ideal {ideal:.2f} s")
        with emulator(state, args.latency_ms, api_key=API_KEY) as url:
            asyncio.run(bare_client(url, threads, args.concurrency))  # the emulator warmed
            figures = {
                "bare asyncio client, lists only": [
                    asyncio.run(bare_client(url, threads, args.concurrency)) for _ in range(3)],
                "reconciler's client, read phase in-process": [
                    asyncio.run(reconciler_read(url, threads, args.concurrency))
                    for _ in range(3)],
                "reconciler plan, whole process": [
                    run_command(["plan", str(folder), "--concurrency", str(args.concurrency)],
                                env_for(url))[0] for _ in range(3)],
            }
        for name, seconds in figures.items():
            median = statistics.median(seconds)
            print(f"  {name:<44} median {median:5.2f} s  {median / ideal:4.2f}× the ideal  "
                  f"(runs: {', '.join(f'{s:.2f}' for s in seconds)})")
        print(f"  reconciler's client CPU per list request (its threads' runs read into "
              f"LiveRuns): median {statistics.median(CPU_PER_REQUEST):.2f} ms")
        print_load_floor(folder, {
            "the bare reads": statistics.median(figures["bare asyncio client, lists only"]),
            "reconciler's reads": statistics.median(
                figures["reconciler's client, read phase in-process"]),
        }, ideal)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
