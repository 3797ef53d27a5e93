"""Creates whose outcome is ambiguous never turn into duplicate runs, and never into a claim of
success for a run nobody saw.

A gateway in front of the emulator answers 504 at once and commits the create later, or holds a
create past the client's timeout and forwards it anyway. Apply must find each such run again by
the attempt id in its reserved metadata (within the settle window), must wait out the intents
an apply that was killed left in the journal, and must report "unknown outcome" (exit 1) when
the window ends before the run shows up. Runs are always counted on the emulator itself, never
through the gateway.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

import pytest

from reconciler.journal import Intent, LocalJournal
from tests.e2e.gateway import Gateway, RecordedRequest, Rule
from tests.e2e.harness import (
    KEY,
    THREAD_A,
    THREAD_B,
    THREAD_C,
    Api,
    BackgroundServer,
    Result,
    Workspace,
)

pytestmark = pytest.mark.e2e

PROJECT = "e2e"
NAME_KEY = "reconciler.name"
DEMO_THREADS = (THREAD_A, THREAD_B, THREAD_C)
#: Six runs, two on each demo thread: a thread's creates go one after the other.
SIX = tuple((f"run{i}", DEMO_THREADS[i % 3]) for i in range(6))
BOUND = 60.0  # seconds: the longest any single wait in this file may take


def manifest(runs: Iterable[tuple[str, str]]) -> str:
    entries = "".join(f"  - name: {name}\n    thread_id: {thread}\n" for name, thread in runs)
    return ("apiVersion: reconciler/v1\nkind: Runs\n"
            "defaults:\n  assistant_id: asst_demo\n  metadata: {suite: ambiguous}\n"
            f"runs:\n{entries}")


def point_at(monkeypatch: pytest.MonkeyPatch, base_url: str) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", base_url)
    monkeypatch.setenv("OPENAI_API_KEY", KEY)


def managed_counts(api: Api, threads: Iterable[str]) -> Counter[tuple[str, str]]:
    """How many managed runs each (thread, name) has, read from the emulator directly."""
    found: Counter[tuple[str, str]] = Counter()
    for thread in threads:
        for run in api.runs(thread):
            name = run["metadata"].get(NAME_KEY)
            if name:
                found[(thread, name)] += 1
    return found


def duplicates(counts: Counter[tuple[str, str]]) -> int:
    """Runs beyond the first of each (thread, name)."""
    return sum(n - 1 for n in counts.values() if n > 1)


def creates(requests: Sequence[RecordedRequest]) -> list[RecordedRequest]:
    return [r for r in requests if r.method == "POST" and r.path.endswith("/runs")]


def creates_by_name(requests: Sequence[RecordedRequest]) -> Counter[tuple[str, str]]:
    counted: Counter[tuple[str, str]] = Counter()
    for request in creates(requests):
        thread = request.path.removesuffix("/runs").rsplit("/", 1)[-1]
        counted[(thread, request.json()["metadata"][NAME_KEY])] += 1
    return counted


def expected(runs: Iterable[tuple[str, str]]) -> Counter[tuple[str, str]]:
    return Counter((thread, name) for name, thread in runs)


def pending_intents(ws: Workspace, backend: str) -> list[Intent]:
    """The journal's unresolved create attempts (the backend key is the base URL as given)."""
    journal = LocalJournal(ws.root / ".reconciler")
    try:
        return journal.pending(PROJECT, backend)
    finally:
        journal.close()


def show(ws: Workspace, text: str) -> None:
    """Print past the capture that ``ws.cli`` reads (seen with ``-s``)."""
    with ws.capsys.disabled():
        print(text)


def timed(ws: Workspace, *args: str) -> tuple[Result, float]:
    started = time.monotonic()
    result = ws.cli(*args)
    return result, time.monotonic() - started


def test_504_while_the_backend_commits_late_is_found_not_repeated(
    server: BackgroundServer, api: Api, ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws.write("runs.yaml", manifest(SIX))
    rules = [Rule(mode="504_then_commit", delay=1.5)]
    with Gateway(server.base_url, rules) as gateway:
        point_at(monkeypatch, gateway.base_url)
        result, _ = timed(ws, "apply", ws.path, "--auto-approve", "--settle-window", "5",
                          "--settle-poll", "0.1")
        gateway.wait_idle(timeout=BOUND)
        assert result.code == 0, result.out + result.err
        assert result.out.count("after a lost answer") == len(SIX), result.out
        assert "Apply complete: 6 applied, 0 failed, 0 not attempted." in result.out
        assert "unknown outcome" not in result.out + result.err
        assert gateway.committed == len(SIX)
        assert gateway.failures == []
        assert creates_by_name(gateway.requests) == expected(SIX)  # one create per name

        counts = managed_counts(api, DEMO_THREADS)
        assert counts == expected(SIX), counts
        assert duplicates(counts) == 0

        again = ws.cli("plan", ws.path, "--detailed-exitcode")
        assert again.code == 0, again.out + again.err
        assert len(creates(gateway.requests)) == len(SIX)  # planning sent no create
    assert pending_intents(ws, gateway.base_url) == []  # every attempt resolved


def test_504_with_a_window_shorter_than_the_commit_is_honest_then_converges(
    server: BackgroundServer, api: Api, ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The documented limit: a settle window shorter than the gateway's commit delay.

    Each create's window (0.5 s) passes before its run lands (3 s), so apply sends again, up to
    its five tries, and every one of those sends lands later: duplicates it cannot prevent. It
    must not claim success: it exits 1, says the outcome is unknown, and stops the thread. Once
    everything has landed, one more apply with a long window converges.
    """
    ws.write("runs.yaml", manifest(SIX))
    first_wave = {(thread, name) for name, thread in SIX[:3]}
    rules = [Rule(mode="504_then_commit", delay=3.0)]
    with Gateway(server.base_url, rules) as gateway:
        point_at(monkeypatch, gateway.base_url)
        first = ws.cli("apply", ws.path, "--auto-approve", "--settle-window", "0.5",
                       "--settle-poll", "0.05")
        span = time.monotonic() - creates(gateway.requests)[0].time
        sent = creates_by_name(gateway.requests)
        gateway.wait_idle(timeout=BOUND)
        counts = managed_counts(api, DEMO_THREADS)
        seen = duplicates(counts)
        show(ws, f"\n[window < commit] first apply: exit {first.code} {span:.2f}s after its "
                 f"first create; creates per name {dict(sent)}; runs per name once all landed "
                 f"{dict(counts)}: {seen} duplicate(s)\n{first.out}{first.err}")
        assert "Traceback" not in first.err
        # honest: a duplicate or an unknown outcome is never an exit 0
        if seen or "unknown outcome" in first.out + first.err:
            assert first.code == 1, first.out + first.err
        # what happens: the first run of each thread is tried five times and never seen, the
        # second is not attempted; each of the fifteen sends commits later
        assert first.code == 1, first.out + first.err
        assert set(sent) == first_wave and set(sent.values()) == {5}, sent
        assert gateway.committed == sum(sent.values()) == 15
        assert counts == sent and seen == 12, counts
        assert ("Apply complete: 0 applied, 0 failed, 3 with an unknown outcome, "
                "3 not attempted.") in first.out
        assert "Error: the outcome of 3 creates is unknown" in first.err
        assert "after a lost answer" not in first.out  # it claimed no run it never saw

        final = ws.cli("apply", ws.path, "--auto-approve", "--settle-window", "30",
                       "--settle-poll", "0.1")
        gateway.wait_idle(timeout=BOUND)
        show(ws, f"[window < commit] converging apply: exit {final.code}\n{final.out}"
                 f"{final.err}")
        assert final.code == 0, final.out + final.err
        assert "3 runs already match the manifests." in final.out  # the late commits
        assert final.out.count("after a lost answer") == 3, final.out  # the second wave
        assert "Apply complete: 3 applied, 0 failed, 0 not attempted." in final.out
        plan = ws.cli("plan", ws.path, "--detailed-exitcode")
        assert plan.code == 0, plan.out + plan.err
        after = managed_counts(api, DEMO_THREADS)
        assert after == counts + expected(SIX[3:]), after  # no new duplicate
        left = pending_intents(ws, gateway.base_url)
        show(ws, f"[window < commit] {duplicates(after)} duplicate(s) remain, the plan shows "
                 f"no changes; {len(left)} intent(s) left in the journal: "
                 f"{sorted((i.thread_id, i.name) for i in left)}")


def test_backend_slower_than_the_client_timeout_is_found_by_attempt_id(
    server: BackgroundServer, api: Api, ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    (ws.root / "reconciler.toml").write_text(f'project = "{PROJECT}"\nrequest_timeout = 1\n')
    ws.write("runs.yaml", manifest(SIX))
    rules = [Rule(mode="slow", delay=2.5)]
    with Gateway(server.base_url, rules) as gateway:
        point_at(monkeypatch, gateway.base_url)
        result, _ = timed(ws, "apply", ws.path, "--auto-approve", "--settle-window", "5",
                          "--settle-poll", "0.1")
        gateway.wait_idle(timeout=BOUND)
        assert result.code == 0, result.out + result.err
        assert result.out.count("timed out") >= len(SIX), result.out  # the client gave up
        assert result.out.count("after a lost answer") == len(SIX), result.out
        assert "Apply complete: 6 applied, 0 failed, 0 not attempted." in result.out
        assert gateway.committed == len(SIX)
        assert creates_by_name(gateway.requests) == expected(SIX)

        counts = managed_counts(api, DEMO_THREADS)
        assert counts == expected(SIX), counts
        assert duplicates(counts) == 0
        again = ws.cli("plan", ws.path, "--detailed-exitcode")
        assert again.code == 0, again.out + again.err


def cli_env(base_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    env.update(OPENAI_BASE_URL=base_url, OPENAI_API_KEY=KEY, NO_COLOR="1")
    return env


def new_threads(api: Api, count: int) -> list[str]:
    made = []
    for _ in range(count):
        response = api.http.post("threads", json={})
        response.raise_for_status()
        made.append(str(response.json()["id"]))
    return made


def test_kill_while_creates_are_in_flight_then_restart_waits_out_the_journal(
    server: BackgroundServer, api: Api, ws: Workspace, tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    # one run per thread: all eight creates are on the wire at once
    threads = [*DEMO_THREADS, *new_threads(api, 5)]
    runs = [(f"k{i}", thread) for i, thread in enumerate(threads)]
    ws.write("runs.yaml", manifest(runs))
    journal = LocalJournal(ws.root / ".reconciler")
    request.addfinalizer(journal.close)
    rules = [Rule(mode="504_then_commit", delay=2.0)]
    args = [sys.executable, "-m", "reconciler", "apply", ws.path, "--auto-approve",
            "--settle-window", "4", "--settle-poll", "0.1"]
    with Gateway(server.base_url, rules) as gateway:
        env = cli_env(gateway.base_url)
        log = tmp_path / "killed.log"
        with log.open("w") as out:
            victim = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT,
                                      start_new_session=True)
        try:
            deadline = time.monotonic() + BOUND
            while len(creates(gateway.requests)) < len(runs):
                assert victim.poll() is None, log.read_text()
                assert time.monotonic() < deadline, "the creates never reached the gateway"
                time.sleep(0.02)
            killed_at = time.monotonic()
            victim.send_signal(signal.SIGKILL)
            victim.wait(timeout=10)
        finally:
            if victim.poll() is None:
                victim.kill()
                victim.wait(timeout=10)
        assert victim.returncode == -signal.SIGKILL
        seen_before = len(gateway.requests)
        before = len(creates(gateway.requests))
        first_create = creates(gateway.requests)[0].time
        assert creates_by_name(gateway.requests) == expected(runs)
        assert api.runs(THREAD_A) == []  # nothing has landed yet: the restart must wait
        left = journal.pending(PROJECT, gateway.base_url)
        assert sorted((i.thread_id, i.name) for i in left) == sorted(expected(runs))
        assert {_attempt(r) for r in creates(gateway.requests)} == {i.attempt_id for i in left}

        restarted = subprocess.run(args, env=env, capture_output=True, text=True,
                                   timeout=BOUND + 30)
        restart_took = time.monotonic() - killed_at
        gateway.wait_idle(timeout=BOUND)
        output = restarted.stdout + restarted.stderr
        restart_first = gateway.requests[seen_before].time - first_create
        show(ws, f"\n[kill/restart] restart: first request {restart_first:.2f}s after the first "
                 f"create (the commits land at 2 s), finished {restart_took:.1f}s after the "
                 f"kill\n{output}")
        assert restarted.returncode == 0, output
        assert len(creates(gateway.requests)) == before  # not one new create
        assert gateway.committed == len(runs)
        # normally the restart plans all eight before the first commit lands (2 s after the
        # creates); a run that landed before its plan read is simply already there
        planned = {(t, n) for n, t in runs if f"# {t}/{n} will be created" in output}
        assert len(planned) >= len(runs) - 2, output  # the restart was not that late
        assert output.count("an earlier apply may have created this run") == len(planned)
        assert output.count("after a lost answer") == len(planned), output
        assert f"Apply complete: {len(planned)} applied, 0 failed, 0 not attempted." in output
        still = {(i.thread_id, i.name) for i in journal.pending(PROJECT, gateway.base_url)}
        assert not still & planned, still  # every intent it waited on is resolved

        counts = managed_counts(api, threads)
        assert counts == expected(runs), counts
        assert duplicates(counts) == 0
        final = subprocess.run([sys.executable, "-m", "reconciler", "plan", ws.path,
                                "--detailed-exitcode"], env=env, capture_output=True,
                               text=True, timeout=BOUND)
        assert final.returncode == 0, final.stdout + final.stderr


def test_an_unknown_outcome_is_never_reported_as_success(
    server: BackgroundServer, api: Api, ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs = [("lonely", THREAD_A)]
    ws.write("runs.yaml", manifest(runs))
    rules = [Rule(mode="504_then_commit", delay=60.0, limit=1000)]  # commits after the test
    with Gateway(server.base_url, rules) as gateway:
        point_at(monkeypatch, gateway.base_url)
        result, took = timed(ws, "apply", ws.path, "--auto-approve", "--settle-window", "0.3",
                             "--settle-poll", "0.05")
        sent = creates(gateway.requests)
        base_url = gateway.base_url
    # the gateway stopped: its pending forwards were cancelled, nothing will ever land
    output = result.out + result.err
    show(ws, f"\n[never commits] exit {result.code} after {took:.1f}s, {len(sent)} create(s)\n"
          f"{output}")
    assert result.code == 1, output
    assert "Traceback" not in result.err
    assert "with an unknown outcome" in result.out
    assert "Apply complete: 0 applied, 0 failed, 1 with an unknown outcome, 0 not attempted." \
        in result.out
    assert "unknown" in result.err and f"{THREAD_A}/lonely" in result.err
    assert "may or may not have made a run" in result.out
    assert 1 <= len(sent) <= 5
    assert gateway.committed == 0
    assert api.managed(THREAD_A, "lonely") == []

    pending = pending_intents(ws, base_url)
    attempts = {_attempt(r) for r in sent}
    assert pending, "the unresolved attempt is gone from the journal"
    assert all(i.thread_id == THREAD_A and i.name == "lonely" for i in pending)
    assert {i.attempt_id for i in pending} <= attempts
    assert _attempt(sent[-1]) in {i.attempt_id for i in pending}


def _attempt(request: RecordedRequest) -> str:
    spec: str = request.json()["metadata"]["reconciler.spec"]
    found = [p.removeprefix("a=") for p in spec.split(";") if p.startswith("a=")]
    assert len(found) == 1, spec
    return found[0]


def test_a_commit_landing_between_resends_is_not_reported_as_success(
    server: BackgroundServer, api: Api, ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A commit delay between one window and five (the tries): sends 1-3 at ~0, 0.55, 1.1 s,
    attempt 1 lands at 1.2 s and is found while attempt 3 settles; 2 and 3 land at 1.75, 2.3 s.
    """
    runs = [("between", THREAD_A)]
    ws.write("runs.yaml", manifest(runs))
    rules = [Rule(mode="504_then_commit", delay=1.2)]
    with Gateway(server.base_url, rules) as gateway:
        point_at(monkeypatch, gateway.base_url)
        result = ws.cli("apply", ws.path, "--auto-approve", "--settle-window", "0.5",
                        "--settle-poll", "0.05")
        gateway.wait_idle(timeout=BOUND)
        counts = managed_counts(api, [THREAD_A])
        show(ws, f"\n[between re-sends] exit {result.code}; {len(creates(gateway.requests))} "
                 f"create(s); {duplicates(counts)} duplicate(s)\n{result.out}{result.err}")
    assert "Traceback" not in result.err
    assert "created meanwhile" not in result.out  # every run there came from this apply
    assert result.code == 1 or duplicates(counts) == 0, result.out + result.err
    if duplicates(counts):  # the host committed later than the window: said, and named
        assert "runs were created for this name" in result.out, result.out
        assert "raise settle_window" in result.out
