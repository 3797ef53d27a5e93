"""Helpers for tests that run the CLI as real processes: several at once, or killed midway.

``launch`` starts ``reconciler …`` as a child that imports the package first, reports that it
is ready on a pipe of its own, and then waits on standard input: ``release`` lets every
prepared child go at the same instant, so their commands really overlap instead of being
staggered by interpreter start-up.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from reconciler.cli import run
from tests.e2e.harness import KEY, THREAD_A, THREAD_B, THREAD_C

THREADS = (THREAD_A, THREAD_B, THREAD_C)
READY_FD_ENV = "RECONCILER_TEST_READY_FD"
WAIT_SECONDS = 60.0

#: The child: pay every import (psycopg too, when there) before the start signal, say so on
#: the ready pipe, wait for one line on stdin, then run the CLI exactly as the console script.
_LAUNCHER = textwrap.dedent(f"""\
    import contextlib, os, sys
    import reconciler.apply, reconciler.journal, reconciler.live, reconciler.lock
    from reconciler.cli import main
    with contextlib.suppress(ImportError):
        import psycopg
    fd = int(os.environ.pop({READY_FD_ENV!r}))
    os.write(fd, b"r")
    os.close(fd)
    sys.stdin.readline()
    sys.argv = ["reconciler", *sys.argv[1:]]
    main()
""")


@dataclass
class Finished:
    """A CLI process that ended: its pid (as the lock names it), exit code and output."""

    pid: int
    code: int
    out: str
    err: str

    @property
    def text(self) -> str:
        return f"[pid {self.pid} exit {self.code}]\n{self.out}{self.err}"


def say(text: str) -> None:
    """A line for the report: straight to the process's stderr, past pytest's capture (and
    capsys), which pytest ``-s`` shows even under xdist."""
    stream = sys.__stderr__ or sys.stderr
    stream.write(text + "\n")
    stream.flush()


def cli_env(base_url: str, **extra: str | None) -> dict[str, str]:
    """The environment of a CLI process: this one's, minus OPENAI_* and any lock URL."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("OPENAI_") and k != "RECONCILER_LOCK_URL"}
    env.update(OPENAI_BASE_URL=base_url, OPENAI_API_KEY=KEY, NO_COLOR="1")
    for name, value in extra.items():
        if value is not None:
            env[name] = value
    return env


def write_project(root: Path, project: str, manifest: str, toml_extra: str = "") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "reconciler.toml").write_text(f'project = "{project}"\n{toml_extra}')
    (root / "runs.yaml").write_text(manifest)
    return root


def manifest(count: int, *, suite: str, tools: frozenset[int] = frozenset()) -> str:
    """``count`` runs ``run-00``… spread round-robin over the three demo threads.

    The runs whose index is in ``tools`` call a function and answer it from ``tool_outputs``.
    Keep a thread's last run out of ``tools``: without ``--wait`` nothing answers a run once
    no later create on its thread waits for it, and the final plan would show the answer.
    """
    lines = [
        "apiVersion: reconciler/v1",
        "kind: Runs",
        "defaults:",
        "  assistant_id: asst_demo",
        f"  metadata: {{suite: {suite}}}",
        "runs:",
    ]
    for i in range(count):
        lines += [f"  - name: run-{i:02d}", f"    thread_id: {THREADS[i % len(THREADS)]}",
                  f"    instructions: Step {i}."]
        if i in tools:
            lines += [
                "    tools:",
                "      - type: function",
                "        function: {name: lookup, parameters: {type: object}}",
                "    tool_choice: required",
                "    tool_outputs: {lookup: '{\"ok\": true}'}",
            ]
    return "\n".join(lines) + "\n"


def declared_names(count: int) -> dict[tuple[str, str], int]:
    """(thread, name) → 1 for every run ``manifest(count)`` declares."""
    return {(THREADS[i % len(THREADS)], f"run-{i:02d}"): 1 for i in range(count)}


def managed_counts(base_url: str, project: str) -> dict[tuple[str, str], int]:
    """How many runs of ``project`` the server holds per (thread, name)."""
    headers = {"Authorization": f"Bearer {KEY}", "OpenAI-Beta": "assistants=v2"}
    counts: dict[tuple[str, str], int] = {}
    with httpx.Client(base_url=base_url + "/", headers=headers, timeout=30,
                      trust_env=False) as http:
        for thread in THREADS:
            after: str | None = None
            while True:
                params: dict[str, Any] = {"limit": 100}
                if after:
                    params["after"] = after
                response = http.get(f"threads/{thread}/runs", params=params)
                response.raise_for_status()
                body = response.json()
                for run in body["data"]:
                    meta = run["metadata"]
                    if meta.get("reconciler.project") == project and meta.get("reconciler.name"):
                        key = (thread, meta["reconciler.name"])
                        counts[key] = counts.get(key, 0) + 1
                if not body.get("has_more"):
                    break
                after = body["last_id"]
    return counts


def duplicates(counts: dict[tuple[str, str], int]) -> int:
    """Runs beyond the first per (thread, name)."""
    return sum(n - 1 for n in counts.values() if n > 1)


@dataclass
class InProcess:
    """The CLI in this process (``reconciler.cli.run``, what the console script calls): one
    interpreter start less where a test only needs a final apply or check."""

    monkeypatch: pytest.MonkeyPatch
    capsys: pytest.CaptureFixture[str]

    def cli(self, base_url: str, *args: str) -> Finished:
        """``reconciler ARGS…`` against ``base_url``, with the local lock."""
        self.monkeypatch.setenv("OPENAI_BASE_URL", base_url)
        self.monkeypatch.setenv("OPENAI_API_KEY", KEY)
        self.monkeypatch.delenv("RECONCILER_LOCK_URL", raising=False)
        self.capsys.readouterr()
        code = run(["--no-color", *args])
        out, err = self.capsys.readouterr()
        return Finished(os.getpid(), code, out, err)

    def plan(self, root: Path, base_url: str) -> Finished:
        """``plan ROOT --detailed-exitcode``: 0 when the live runs match the manifests."""
        return self.cli(base_url, "plan", str(root), "--detailed-exitcode")


def run_cli(args: Sequence[str], env: dict[str, str], *,
            timeout: float = WAIT_SECONDS) -> Finished:
    """Run ``reconciler ARGS…`` (``python -m reconciler``) to its end."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "reconciler", *args], env=env, stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        kill(proc)
    return Finished(proc.pid, proc.returncode, out, err)


class Prepared:
    """A child that has imported everything and waits for ``release`` to run its command."""

    def __init__(self, args: Sequence[str], env: dict[str, str]) -> None:
        read_end, write_end = os.pipe()
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", _LAUNCHER, *args],
                env={**env, READY_FD_ENV: str(write_end)}, pass_fds=(write_end,),
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            )
        finally:
            os.close(write_end)
        self._ready_fd = read_end

    def wait_ready(self, timeout: float) -> None:
        try:
            ready, _, _ = select.select([self._ready_fd], [], [], timeout)
            if not ready or not os.read(self._ready_fd, 1):
                raise AssertionError(
                    f"the CLI process {self.proc.pid} did not get ready: "
                    f"{self.proc.poll()=}, stderr: {self._stderr_now()}"
                )
        finally:
            os.close(self._ready_fd)

    def _stderr_now(self) -> str:
        if self.proc.poll() is None or self.proc.stderr is None:
            return ""
        return self.proc.stderr.read()

    def go(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()  # communicate() closes it

    def finish(self, timeout: float) -> Finished:
        out, err = self.proc.communicate(timeout=timeout)
        return Finished(self.proc.pid, self.proc.returncode, out, err)


@contextlib.contextmanager
def prepared(commands: Iterable[Sequence[str]], env: dict[str, str]) -> Iterator[list[Prepared]]:
    """Start every command as a ``Prepared`` child; kill whatever is left on the way out."""
    children: list[Prepared] = []
    try:
        for args in commands:
            children.append(Prepared(args, env))
        deadline = time.monotonic() + WAIT_SECONDS
        for child in children:
            child.wait_ready(max(0.1, deadline - time.monotonic()))
        yield children
    finally:
        for child in children:
            kill(child.proc)


def release(children: Sequence[Prepared], *, timeout: float = WAIT_SECONDS) -> list[Finished]:
    """Let every child go at once (one line each on stdin), then collect them all."""
    for child in children:
        child.go()
    deadline = time.monotonic() + timeout
    return [child.finish(max(0.1, deadline - time.monotonic())) for child in children]


def kill(proc: subprocess.Popen[str]) -> None:
    """SIGKILL ``proc`` if it still runs, reap it and close its pipes (never anything else)."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)
    for pipe in (proc.stdin, proc.stdout, proc.stderr):
        if pipe is not None:
            with contextlib.suppress(OSError):
                pipe.close()
