"""The emulator as its own process on loopback, as the benchmarks run it.

In its own process so that it never shares a CPU-bound interpreter with the client being
measured; ``latency_ms``, ``rate`` and ``api_key`` are ``emulator serve``'s knobs.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def emulator(state: Path, latency_ms: float, *, rate: int = 0, api_key: str | None = None,
             demo: bool = False) -> Iterator[str]:
    """``reconciler emulator serve`` on ``state`` (instant timing); yields its base URL once
    it answers."""
    port = free_port()
    args = [sys.executable, "-m", "reconciler", "emulator", "serve", "--port", str(port),
            "--state", str(state), "--timing", "instant"]
    env = dict(os.environ)
    if demo:
        args.append("--demo")
    if api_key:
        args += ["--api-key-env", "BENCH_KEY"]
        env["BENCH_KEY"] = api_key
    if latency_ms:
        args += ["--latency", f"{latency_ms:g}ms"]
    if rate:
        args += ["--rate-limit", f"{rate}/s"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                # the stats path: answered once serving, and not counted as a request
                httpx.get(f"{base_url.removesuffix('/v1')}/_emulator/stats", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise SystemExit("the emulator did not start") from None
                time.sleep(0.05)
        yield base_url
    finally:
        proc.terminate()
        proc.wait(timeout=10)
