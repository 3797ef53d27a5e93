"""``kill -9`` of an apply at a random point, then plain re-runs: they converge with no
duplicate run and no lost action, and the lock of the killed apply blocks nobody.

Each seed gets a fresh emulator (instant timing, 2 ms latency) behind a gateway that counts
requests: the apply is killed when its Nth create or its Nth request of any kind arrives (drawn
from ``random.Random(seed)``, see ``KillPoint``), either at once with that request dropped, at
once with the request still forwarded (a create then lands after its sender died), or a few
milliseconds later (the process is between requests: journalling, planning the next step).
Then ``apply`` is run again, at most ``MAX_RERUNS`` times, until it exits 0. Run once with the
local lock file, once with the PostgreSQL lock and once with ``--lock=false``; one summary line
per seed ("seed → re-runs needed") goes to stderr (``say``), which pytest ``-s`` shows even
under xdist.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import re
import signal
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pytest

from reconciler.emulator import parse_latency
from reconciler.journal import open_journal
from reconciler.session import STATE_FOLDER
from tests.e2e.gateway import Gateway, _Incoming, _Reply
from tests.e2e.harness import start_server
from tests.e2e.processes import (
    Finished,
    InProcess,
    cli_env,
    declared_names,
    duplicates,
    kill,
    managed_counts,
    manifest,
    run_cli,
    say,
    write_project,
)

pytestmark = pytest.mark.e2e

SEEDS = range(20)
RUNS = 12
#: Runs that call a function and are answered from tool_outputs; a thread's last run (9, 10,
#: 11) must not (see ``manifest``).
TOOL_RUNS = frozenset({1, 2, 3, 5})
#: A whole apply of this manifest makes about 40 requests: kill points are drawn below that.
KILL_REQUESTS = (1, 36)
MAX_RERUNS = 4
APPLY = ["--auto-approve", "--settle-window", "0.5", "--settle-poll", "0.05",
         "--poll-interval", "0.05"]
#: A create that the killed apply may have had on the wire is waited for request_timeout +
#: settle window after it was journalled: keep both short (the emulator answers in ms).
TOML_EXTRA = "request_timeout = 1\n"
SUMMARY = re.compile(
    r"^Apply complete: (?P<applied>\d+) applied, (?:\d+ created meanwhile by another apply, )?"
    r"(?P<failed>\d+) failed, (?:(?P<unknown>\d+) with an unknown outcome, )?"
    r"(?P<left>\d+) not attempted\.$"
)

KillHow = Literal["drop", "forward", "later"]
LockMode = Literal["local", "pg", "nolock"]


@dataclass(frozen=True)
class KillPoint:
    """Where a seed kills the apply: at the ``nth`` create (POST …/runs) or ``nth`` request.

    ``drop``: killed as that request arrives, which then goes nowhere; ``forward``: killed as
    it arrives, and it still reaches the emulator (a create then lands after its sender died);
    ``later``: killed ``delay`` seconds after it arrived, between requests.
    """

    counted: Literal["create", "request"]
    nth: int
    how: KillHow
    delay: float

    @classmethod
    def draw(cls, seed: int) -> KillPoint:
        rng = random.Random(seed)
        counted: Literal["create", "request"] = rng.choice(("create", "request"))
        nth = rng.randint(1, RUNS - 1) if counted == "create" else rng.randint(*KILL_REQUESTS)
        how: KillHow = rng.choice(("drop", "forward", "later"))
        return cls(counted, nth, how, round(rng.uniform(0.0, 0.03), 4))

    def counts(self, incoming: _Incoming) -> bool:
        if self.counted == "request":
            return True
        return incoming.method == "POST" and incoming.path.endswith("/runs")

    def describe(self) -> str:
        later = f" +{self.delay * 1000:.0f}ms" if self.how == "later" else ""
        return f"{self.how}{later} at {self.counted} #{self.nth}"


class KillingGateway(Gateway):
    """A pass-through gateway that SIGKILLs one process at its ``KillPoint``."""

    def __init__(self, upstream: str) -> None:
        super().__init__(upstream)
        self.counted = 0
        self.killed_after: int | None = None  # requests seen when the kill was sent
        self.killed_during = ""  # the last request that had arrived by then
        self._target: tuple[int, KillPoint] | None = None

    def arm(self, pid: int, point: KillPoint) -> None:
        with self._lock:
            self._target = (pid, point)

    def disarm(self) -> None:
        with self._lock:
            self._target = None

    def _kill(self, pid: int) -> None:
        with self._lock:
            if self._target is None:
                return  # disarmed: the process has ended, and its pid may be reused
            self._target = None
            self.killed_after = len(self._requests)
            last = self._requests[-1] if self._requests else None
            self.killed_during = f"{last.method} {last.path.rsplit('/', 1)[-1]}" if last else ""
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)

    async def _respond(self, incoming: _Incoming) -> _Reply:
        with self._lock:
            target = self._target
            fire = False
            if target is not None and target[1].counts(incoming):
                self.counted += 1
                fire = self.counted == target[1].nth
        if fire and target is not None:
            pid, point = target
            if point.how == "drop":
                self._kill(pid)
                raise ConnectionResetError("the client was killed")  # nothing is forwarded
            if point.how == "forward":
                self._kill(pid)
            else:
                asyncio.get_running_loop().call_later(point.delay, self._kill, pid)
        return await super()._respond(incoming)


@dataclass
class SeedResult:
    mode: str
    seed: int
    point: KillPoint
    killed_after: int | None  # None: the apply finished before its kill point
    killed_during: str
    reruns: list[Finished]
    leftovers: int  # journalled creates still unresolved once everything converged

    def line(self) -> str:
        codes = ",".join(str(r.code) for r in self.reruns)
        if self.killed_after is None:
            where = f"{self.point.describe()}: finished before it"
        else:
            where = (f"{self.point.describe()}: killed after {self.killed_after} requests "
                     f"(last {self.killed_during})")
        first = self.reruns[0].out
        notes = [f"journal leftovers {self.leftovers}"]
        if n := first.count("an earlier apply may have created this run"):
            notes.append(f"{n} journalled create(s) looked for")
        if n := first.count("after a lost answer"):
            notes.append(f"{n} found by attempt id")
        return (f"crash[{self.mode}] seed {self.seed:2d}: {where} → {len(self.reruns)} "
                f"re-run(s) needed (exit codes {codes}; {', '.join(notes)})")


def check_rerun(step: Finished) -> None:
    """A re-run's output: no traceback; a failure says what failed, in one line on stderr."""
    everything = step.out + step.err
    assert "Traceback" not in everything, step.text
    assert "internal error" not in everything, step.text
    assert "is locked by" not in step.err, f"a killed holder blocked the re-run:\n{step.text}"
    if step.code == 0:
        assert step.err.strip() == "", step.text
        return
    assert step.code == 1, step.text
    errors = step.err.strip().splitlines()
    assert len(errors) == 1 and errors[0].startswith("Error: "), step.text
    out_lines = step.out.strip().splitlines()
    summary = SUMMARY.match(out_lines[-1]) if out_lines else None
    if "Apply complete:" in step.out:
        # the summary is the last thing on stdout, and it counts what did not get done
        assert summary is not None, step.text
        assert int(summary["failed"]) + int(summary["unknown"] or 0) + int(summary["left"]), (
            step.text)
        if int(summary["failed"]):
            assert re.search(r"^\S+/run-\d\d: .*failed", step.out, re.M), step.text
    # else: the apply stopped before acting (the plan could not be read): the one line says why


def crash_and_recover(mode: LockMode, seed: int, root: Path, pg_url: str | None,
                      here: InProcess) -> SeedResult:
    point = KillPoint.draw(seed)
    project = f"crash-{mode}-{seed}-{uuid.uuid4().hex[:6]}"
    write_project(root, project, manifest(RUNS, suite="crash", tools=TOOL_RUNS), TOML_EXTRA)
    lock_flags = ["--lock=false"] if mode == "nolock" else []
    apply = ["apply", str(root), *APPLY, *lock_flags]
    with (
        start_server(latency=parse_latency("2ms")) as emulator,
        KillingGateway(emulator.base_url) as gateway,
    ):
        env = cli_env(gateway.base_url, RECONCILER_LOCK_URL=pg_url if mode == "pg" else None)
        victim = subprocess.Popen([sys.executable, "-m", "reconciler", *apply], env=env,
                                  stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
        try:
            gateway.arm(victim.pid, point)
            try:
                out, err = victim.communicate(timeout=60)
            finally:
                gateway.disarm()
        finally:
            kill(victim)
        if gateway.killed_after is None:  # it ran to the end before its kill point
            assert victim.returncode == 0, f"{out}{err}"
        else:
            assert victim.returncode == -signal.SIGKILL, f"{victim.returncode}: {out}{err}"

        reruns: list[Finished] = []
        while len(reruns) < MAX_RERUNS:
            step = run_cli(apply, env)
            reruns.append(step)
            check_rerun(step)
            if step.code == 0:
                break
        history = "\n".join(r.text for r in reruns)
        assert reruns[-1].code == 0, f"no convergence in {MAX_RERUNS} re-runs:\n{history}"

        counts = managed_counts(emulator.base_url, project)
        assert duplicates(counts) == 0, (counts, history)  # 0 duplicates
        assert counts == declared_names(RUNS), (counts, history)  # 0 lost, nothing extra
        final = here.plan(root, gateway.base_url)
        assert final.code == 0, f"{final.text}\n{history}"
        journal = open_journal(pg_url if mode == "pg" else None, root / STATE_FOLDER)
        try:
            leftovers = len(journal.pending(project, gateway.base_url))
        finally:
            journal.close()
    return SeedResult(mode, seed, point, gateway.killed_after, gateway.killed_during, reruns,
                      leftovers)


@pytest.fixture
def here(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> InProcess:
    return InProcess(monkeypatch, capsys)


def report(result: SeedResult) -> None:
    say(result.line())


@pytest.mark.parametrize("seed", SEEDS)
def test_kill_then_rerun_with_the_local_lock(seed: int, tmp_path: Path, here: InProcess) -> None:
    report(crash_and_recover("local", seed, tmp_path / "project", None, here))


@pytest.mark.parametrize("seed", SEEDS)
def test_kill_then_rerun_with_the_postgres_lock(seed: int, tmp_path: Path, pg_url: str,
                                                here: InProcess) -> None:
    report(crash_and_recover("pg", seed, tmp_path / "project", pg_url, here))


@pytest.mark.parametrize("seed", SEEDS)
def test_kill_then_rerun_without_a_lock(seed: int, tmp_path: Path, here: InProcess) -> None:
    report(crash_and_recover("nolock", seed, tmp_path / "project", None, here))


def test_the_kill_points_cover_every_kind() -> None:
    """The seeds kill at creates and at other requests, early and late, in all three ways."""
    points = [KillPoint.draw(seed) for seed in SEEDS]
    assert {p.how for p in points} == {"drop", "forward", "later"}, points
    creates = [p.nth for p in points if p.counted == "create"]
    requests = [p.nth for p in points if p.counted == "request"]
    assert len(creates) >= 5 and len(requests) >= 5, points
    assert min(requests) <= 12 and max(requests) >= 30, requests  # first creates … last polls
    assert {(p.counted, p.how) for p in points} >= {("create", "drop"), ("create", "forward")}
