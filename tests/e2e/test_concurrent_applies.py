"""Several ``reconciler apply`` processes started at the same instant against one emulator.

With the project lock (a local lock file, or a PostgreSQL advisory lock) exactly one applies
and the others are refused at once, naming the holder; with ``--lock-timeout`` the others wait
and then find nothing left to do. With ``--lock=false`` only the re-read before each create
protects: duplicates are counted and printed (to stderr, shown by pytest ``-s`` even under
xdist, see ``say``), not asserted to be zero; with ``instant`` runs (only the re-read stands
between two creates) and with ``fast`` ones (the API's one active run per thread helps too).

Every child imports the package first and waits on stdin (``tests.e2e.processes.prepared``),
so the commands overlap for real; the emulator adds 40 ms to each response so that an apply
of ten runs holds the lock for about half a second.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import pytest

from reconciler.emulator import BackgroundServer, RunTiming, parse_latency
from tests.e2e.harness import start_server
from tests.e2e.processes import (
    Finished,
    InProcess,
    cli_env,
    declared_names,
    duplicates,
    managed_counts,
    manifest,
    prepared,
    release,
    run_cli,
    say,
    write_project,
)

pytestmark = pytest.mark.e2e

RUNS = 10
#: Added to every response: with the lock, the winner holds it for 2 + 2 × 4 round trips and
#: more, so a loser delayed by a busy machine still meets it; without, it only paces the race.
LOCKED_LATENCY = "40ms"
NO_LOCK_LATENCY = "20ms"
APPLIED_ALL = f"Apply complete: {RUNS} applied, 0 failed, 0 not attempted."
NO_CHANGES = "No changes. Live runs match the manifests."
LOCKED = "is locked by"
STALE = "saved plan is stale"
UNNAMED = "is locked by another process (its lock record could not be read)"
NO_LOCK_REPETITIONS = {"instant": 5, "fast": 3}

Lock = Literal["local", "pg"]


@pytest.fixture
def emulator() -> Iterator[BackgroundServer]:
    with start_server(latency=parse_latency(LOCKED_LATENCY)) as srv:
        yield srv


@pytest.fixture
def here(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> InProcess:
    return InProcess(monkeypatch, capsys)


def lock_url(lock: Lock, request: pytest.FixtureRequest) -> str | None:
    """The PostgreSQL URL for ``pg`` (the fixture is started only when a test needs it)."""
    if lock == "local":
        return None
    url: str = request.getfixturevalue("pg_url")
    return url


def new_project(root: Path, tag: str, toml_extra: str = "") -> tuple[Path, str]:
    """A project folder with ten runs; a fresh name, as the PostgreSQL lock is shared."""
    project = f"conc-{tag}-{uuid.uuid4().hex[:8]}"
    write_project(root, project, manifest(RUNS, suite="concurrent"), toml_extra)
    return root, project


def no_traceback(result: Finished) -> None:
    everything = result.out + result.err
    assert "Traceback" not in everything, result.text
    assert "internal error" not in everything, result.text


def assert_refused_by_lock(loser: Finished, holder: Finished) -> str:
    """Exit 1 at once, one line on stderr naming the holder's pid and command.

    Returns how the holder was named. A loser that tries the lock in the instant between the
    winner taking it and writing its holder record (LocalLock / PostgresLock ``_try_once``
    read the record once) cannot name it and says so: a known package race, accepted here
    and printed, so that these tests do not flake on it.
    """
    no_traceback(loser)
    assert loser.code == 1, loser.text
    errors = loser.err.strip().splitlines()
    assert len(errors) == 1 and errors[0].startswith("Error: "), loser.text
    assert LOCKED in loser.err, loser.text
    assert "Apply complete" not in loser.out, loser.text  # refused before planning
    if UNNAMED in loser.err:
        return "holder NOT named (record not written yet)"
    assert f"(pid {holder.pid}, `reconciler apply " in loser.err, (holder.pid, loser.text)
    return "holder named"


def the_winner(results: list[Finished]) -> tuple[Finished, list[Finished]]:
    winners = [r for r in results if r.code == 0]
    everything = "\n".join(r.text for r in results)
    assert len(winners) == 1, everything
    winner = winners[0]
    no_traceback(winner)
    assert APPLIED_ALL in winner.out, everything
    return winner, [r for r in results if r is not winner]


def exactly_one_run_per_name(emulator: BackgroundServer, project: str) -> None:
    counts = managed_counts(emulator.base_url, project)
    assert counts == declared_names(RUNS), counts


# -- 1, 2: two or three applies at once, the local or the PostgreSQL lock --------------------


@pytest.mark.parametrize("lock", ["local", "pg"])
@pytest.mark.parametrize("processes", [2, 3])
def test_concurrent_applies_one_applies_the_others_are_refused(
    lock: Lock, processes: int, emulator: BackgroundServer, tmp_path: Path,
    request: pytest.FixtureRequest, here: InProcess,
) -> None:
    root, project = new_project(tmp_path / "project", f"{lock}{processes}")
    env = cli_env(emulator.base_url, RECONCILER_LOCK_URL=lock_url(lock, request))
    with prepared([["apply", str(root), "--auto-approve"]] * processes, env) as children:
        results = release(children)
    winner, losers = the_winner(results)
    assert len(losers) == processes - 1
    named = [f"pid {r.pid} ({assert_refused_by_lock(r, winner)})" for r in losers]
    exactly_one_run_per_name(emulator, project)
    final = here.plan(root, emulator.base_url)
    assert final.code == 0, final.text
    say(f"concurrent[{lock} x{processes}]: pid {winner.pid} applied {RUNS}; refused: "
        f"{', '.join(named)}")


# -- 3: one saved plan applied twice at once -------------------------------------------------


@pytest.mark.parametrize("lock", ["local", "pg"])
def test_one_saved_plan_applied_twice_at_once(
    lock: Lock, emulator: BackgroundServer, tmp_path: Path, request: pytest.FixtureRequest,
    here: InProcess,
) -> None:
    root, project = new_project(tmp_path / "project", f"saved-{lock}")
    env = cli_env(emulator.base_url, RECONCILER_LOCK_URL=lock_url(lock, request))
    plan_file = root / "p.json"
    saved = run_cli(["plan", str(root), "--out", str(plan_file)], env)
    assert saved.code == 0, saved.text
    with prepared([["apply", str(plan_file)]] * 2, env) as children:
        results = release(children)
    winner, (loser,) = the_winner(results)
    no_traceback(loser)
    assert loser.code == 1, loser.text
    if LOCKED in loser.err:
        how = f"by the lock, {assert_refused_by_lock(loser, winner)}"
    else:  # it took the lock after the winner had finished: the plan no longer holds
        assert STALE in loser.err, loser.text
        assert "Apply complete" not in loser.out, loser.text
        how = "as stale"
    exactly_one_run_per_name(emulator, project)
    final = here.plan(root, emulator.base_url)
    assert final.code == 0, final.text
    say(f"saved plan twice [{lock}]: pid {winner.pid} applied it; pid {loser.pid} refused "
        f"{how}")


# -- 4: --lock-timeout: the second apply waits its turn --------------------------------------


@pytest.mark.parametrize("lock", ["local", "pg"])
def test_with_a_lock_timeout_the_second_apply_waits_then_has_nothing_to_do(
    lock: Lock, emulator: BackgroundServer, tmp_path: Path, request: pytest.FixtureRequest,
    here: InProcess,
) -> None:
    root, project = new_project(tmp_path / "project", f"wait-{lock}")
    env = cli_env(emulator.base_url, RECONCILER_LOCK_URL=lock_url(lock, request))
    command = ["apply", str(root), "--auto-approve", "--lock-timeout", "30"]
    with prepared([command] * 2, env) as children:
        results = release(children)
    everything = "\n".join(r.text for r in results)
    assert [r.code for r in results] == [0, 0], everything
    for result in results:
        no_traceback(result)
        assert LOCKED not in result.err, everything
    applied = [r for r in results if APPLIED_ALL in r.out]
    assert len(applied) == 1, everything
    (waited,) = [r for r in results if r is not applied[0]]
    assert NO_CHANGES in waited.out, everything  # and its report says it changed nothing
    assert waited.out.rstrip().endswith(
        "Apply complete: 0 applied, 0 failed, 0 not attempted."), everything
    exactly_one_run_per_name(emulator, project)
    final = here.plan(root, emulator.base_url)
    assert final.code == 0, final.text


@pytest.mark.parametrize("lock", ["local", "pg"])
def test_with_a_lock_timeout_a_saved_plan_applied_twice_is_stale_the_second_time(
    lock: Lock, emulator: BackgroundServer, tmp_path: Path, request: pytest.FixtureRequest,
    here: InProcess,
) -> None:
    root, project = new_project(tmp_path / "project", f"waitplan-{lock}")
    env = cli_env(emulator.base_url, RECONCILER_LOCK_URL=lock_url(lock, request))
    plan_file = root / "p.json"
    assert run_cli(["plan", str(root), "--out", str(plan_file)], env).code == 0
    with prepared([["apply", str(plan_file), "--lock-timeout", "30"]] * 2, env) as children:
        results = release(children)
    _, (second,) = the_winner(results)
    no_traceback(second)
    assert second.code == 1 and STALE in second.err and LOCKED not in second.err, second.text
    assert "Apply complete" not in second.out, second.text
    exactly_one_run_per_name(emulator, project)
    final = here.plan(root, emulator.base_url)
    assert final.code == 0, final.text


# -- 5: --lock=false: only the re-read before each create protects ---------------------------

#: Per create, an apply that finds an attempt of another apply in the shared journal waits up
#: to request_timeout + settle window for it: keep both short.
NO_LOCK_TOML = "request_timeout = 5\n"
NO_LOCK_APPLY = ["--auto-approve", "--lock=false", "--settle-window", "0.5",
                 "--settle-poll", "0.05", "--poll-interval", "0.05"]
#: ``instant``: a run ends the moment it is created, so only the re-read protects; ``fast``:
#: runs stay active ~0.25 s, and the API's one active run per thread refuses a second create
#: while the first runs (the loser waits, reads again, and finds the run made meanwhile).
TIMINGS = {"instant": RunTiming.instant(), "fast": RunTiming.fast()}
_SKIPPED = re.compile(r"(\d+) created meanwhile by another apply")


@pytest.mark.parametrize(("processes", "timing"), [(2, "instant"), (3, "instant"), (3, "fast")])
def test_without_a_lock_concurrent_applies_make_few_duplicates_and_converge(
    processes: int, timing: str, tmp_path: Path, here: InProcess,
) -> None:
    per_repetition: list[int] = []
    repetitions = NO_LOCK_REPETITIONS[timing]
    for repetition in range(repetitions):
        with start_server(latency=parse_latency(NO_LOCK_LATENCY),
                          timing=TIMINGS[timing]) as emulator:
            root, project = new_project(tmp_path / f"rep{repetition}", f"nolock{processes}",
                                        NO_LOCK_TOML)
            env = cli_env(emulator.base_url)
            command = ["apply", str(root), *NO_LOCK_APPLY]
            with prepared([command] * processes, env) as children:
                results = release(children)
            everything = "\n".join(r.text for r in results)
            for result in results:
                no_traceback(result)
                assert result.code in (0, 1), everything
                assert LOCKED not in result.err, everything
            counts = managed_counts(emulator.base_url, project)
            assert set(counts) == set(declared_names(RUNS)), (counts, everything)  # none lost
            extra = duplicates(counts)
            # each process creates each name at most once: more would be a retry duplicating
            assert extra <= (processes - 1) * RUNS, (counts, everything)
            per_repetition.append(extra)

            again = here.cli(emulator.base_url, "apply", str(root), "--auto-approve")
            no_traceback(again)
            assert again.code == 0, f"{again.text}\n{everything}"
            final = here.plan(root, emulator.base_url)
            assert final.code == 0, f"{final.text}\n{everything}"
            skipped = sum(int(m) for r in results for m in _SKIPPED.findall(r.out))
            failures = "".join(
                f"\n    pid {r.pid} exit {r.code}: {(r.out.strip().splitlines() or [''])[-1]} / "
                f"{r.err.strip()}" for r in results if r.code != 0
            )
            say(f"lock=false {timing} x{processes} repetition {repetition + 1}: exit codes "
                f"{[r.code for r in results]}, {extra} duplicate run(s), {skipped} create(s) "
                f"skipped as created meanwhile; the next apply: "
                f"{'No changes' if NO_CHANGES in again.out else again.out.strip()[-80:]}"
                f"{failures}")
    say(f"lock=false {timing} x{processes}: {sum(per_repetition)} duplicate run(s) in total "
        f"over {repetitions} repetitions of {RUNS} runs ({per_repetition}); worst case "
        f"without the re-read {(processes - 1) * RUNS * repetitions}")

