"""The local project lock: exclusion in and across processes, crashes, timeouts, force-unlock."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

import reconciler.lock.local as lock_module
from reconciler.errors import ReconcilerError
from reconciler.lock import (
    LocalLock,
    LockError,
    LockHeldError,
    LockHolder,
    LockStatus,
    PostgresLock,
    force_unlock_local,
    local_lock_status,
    new_holder,
    open_lock,
)

REPO = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 12, 1, 20, 10, 0, 123456, tzinfo=UTC)

# A child that takes the lock, says so, and holds it until a line arrives on stdin.
CHILD = """
import sys
from pathlib import Path
from reconciler.lock import LocalLock, new_holder
lock = LocalLock(Path(sys.argv[1]), new_holder(sys.argv[2], "reconciler apply child"))
lock.acquire(0)
print("locked", lock.holder.lock_id, flush=True)
sys.stdin.readline()
lock.release()
print("released", flush=True)
"""


class FakeTime:
    """A monotonic clock that only moves when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class Child:
    """A child process holding the lock; ``let_go`` makes it release and exit."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdin is not None and proc.stdout is not None
        self.proc, self.stdin, self.stdout = proc, proc.stdin, proc.stdout
        word, self.lock_id = self.stdout.readline().split()
        assert word == "locked"

    @property
    def pid(self) -> int:
        return self.proc.pid

    def let_go(self) -> None:
        self.stdin.write("\n")
        self.stdin.flush()
        assert self.stdout.readline().strip() == "released"
        assert self.proc.wait() == 0

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()


Spawn = Callable[[Path, str], Child]


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Spawn]:
    children: list[subprocess.Popen[str]] = []

    def start(directory: Path, project: str) -> Child:
        proc = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(directory), project],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=tmp_path,
            env=dict(os.environ, PYTHONPATH=str(REPO)),
        )
        children.append(proc)
        return Child(proc)

    yield start
    for proc in children:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def holder(project: str = "analytics", command: str = "reconciler apply manifests/") -> LockHolder:
    return new_holder(project, command, now=NOW)


# --- the holder record ---------------------------------------------------------------------------


def test_new_holder_describes_this_process() -> None:
    h = holder()
    assert h.project == "analytics"
    assert h.pid == os.getpid()
    assert h.command == "reconciler apply manifests/"
    assert h.since == "2026-12-01T20:10:00Z"
    assert len(h.lock_id) == 32 and int(h.lock_id, 16) >= 0
    assert h.who and h.host
    assert new_holder("analytics", "x").lock_id != h.lock_id


def test_since_is_utc_whatever_the_zone_given() -> None:
    paris = datetime(2026, 12, 1, 21, 10, 0, tzinfo=timezone(timedelta(hours=1)))
    assert new_holder("p", "c", now=paris).since == "2026-12-01T20:10:00Z"
    assert new_holder("p", "c", now=datetime(2026, 12, 1, 20, 10)).since == "2026-12-01T20:10:00Z"


def test_who_is_unknown_when_the_user_cannot_be_named(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_user() -> str:
        raise OSError("no user")

    monkeypatch.setattr("getpass.getuser", no_user)
    assert new_holder("p", "c").who == "unknown"


def test_describe_names_everything_a_person_needs() -> None:
    h = LockHolder(lock_id="3f2a", project="x", who="alice", host="ci-7", pid=4242,
                   command="reconciler apply manifests/ --auto-approve",
                   since="2026-12-01T20:10:00Z")
    assert h.describe() == (
        "alice@ci-7 (pid 4242, `reconciler apply manifests/ --auto-approve`) "
        "since 2026-12-01T20:10:00Z, lock id 3f2a"
    )


def test_the_record_round_trips_through_json() -> None:
    h = holder()
    assert LockHolder.from_dict(json.loads(json.dumps(h.to_dict()))) == h


@pytest.mark.parametrize("junk", [
    None, [], "lock", {}, {"lock_id": "a"},
    {**holder().to_dict(), "pid": "42"},
    {**holder().to_dict(), "pid": True},
    {**holder().to_dict(), "who": None},
])
def test_a_junk_record_is_a_lock_error(junk: object) -> None:
    with pytest.raises(LockError):
        LockHolder.from_dict(junk)


def test_lock_errors_are_reconciler_errors() -> None:
    assert issubclass(LockHeldError, LockError)
    assert issubclass(LockError, ReconcilerError)


# --- acquiring and releasing ---------------------------------------------------------------------


def test_acquire_records_the_holder_and_release_removes_the_file(tmp_path: Path) -> None:
    directory = tmp_path / "proj" / ".reconciler"
    h = holder()
    lock = LocalLock(directory, h)
    lock.acquire(0)
    assert lock.held
    assert LockHolder.from_dict(json.loads((directory / "lock").read_text())) == h
    lock.release()
    assert not lock.held
    assert not (directory / "lock").exists()
    lock.release()  # idempotent
    lock.acquire(0)
    lock.release()


def test_the_context_manager_releases_even_on_error(tmp_path: Path) -> None:
    lock = LocalLock(tmp_path, holder())
    with pytest.raises(RuntimeError), lock:
        assert local_lock_status(tmp_path).held
        raise RuntimeError("boom")
    assert not lock.held
    assert local_lock_status(tmp_path) == LockStatus(holder=None, held=False)


def test_two_locks_in_one_process_exclude_each_other(tmp_path: Path) -> None:
    first, second = holder(command="reconciler apply a/"), holder(command="reconciler apply b/")
    with LocalLock(tmp_path, first):
        with pytest.raises(LockHeldError) as caught:
            LocalLock(tmp_path, second).acquire(0)
        assert caught.value.holder == first
        message = str(caught.value)
        assert message == (
            f"the project 'analytics' is locked by {first.describe()}; waited 0s "
            f"(--lock-timeout); if that process is gone for good, "
            f"`reconciler lock force-unlock {first.lock_id}` breaks it"
        )
        for part in (first.who, first.host, str(first.pid), first.command, first.since,
                     first.lock_id):
            assert part in message
    with LocalLock(tmp_path, second):
        pass


def test_the_timeout_polls_on_the_injected_clock(tmp_path: Path) -> None:
    fake = FakeTime()
    with LocalLock(tmp_path, holder()):
        waiter = LocalLock(tmp_path, holder(), poll_interval=0.3, clock=fake.clock,
                           sleep=fake.sleep)
        with pytest.raises(LockHeldError) as caught:
            waiter.acquire(1.0)
    # tries at 0, 0.3, 0.6, 0.9 and 1.0: the last wait is cut to the deadline
    assert fake.sleeps == pytest.approx([0.3, 0.3, 0.3, 0.1])
    assert "waited 1s (--lock-timeout)" in str(caught.value)


def test_a_zero_timeout_tries_once_without_sleeping(tmp_path: Path) -> None:
    fake = FakeTime()
    with LocalLock(tmp_path, holder()), pytest.raises(LockHeldError):
        LocalLock(tmp_path, holder(), clock=fake.clock, sleep=fake.sleep).acquire(0)
    assert fake.sleeps == []


def test_a_waiter_gets_the_lock_when_the_holder_lets_go(tmp_path: Path) -> None:
    first = LocalLock(tmp_path, holder())
    first.acquire(0)
    fake = FakeTime()

    def sleep(seconds: float) -> None:
        fake.sleep(seconds)
        if len(fake.sleeps) == 2:
            first.release()

    second_holder = holder()
    waiter = LocalLock(tmp_path, second_holder, timeout=10, poll_interval=1, clock=fake.clock,
                       sleep=sleep)
    with waiter:
        assert len(fake.sleeps) == 2
        assert local_lock_status(tmp_path) == LockStatus(holder=second_holder, held=True)


def test_a_file_unlinked_between_open_and_flock_is_not_taken(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = LocalLock(tmp_path, holder())
    first.acquire(0)
    real_flock = lock_module._try_flock
    calls: list[int] = []

    def flock_after_release(fd: int) -> bool:
        calls.append(fd)
        if len(calls) == 1:
            first.release()  # unlinks the file the waiter has just opened
        return real_flock(fd)

    monkeypatch.setattr(lock_module, "_try_flock", flock_after_release)
    second_holder = holder()
    second = LocalLock(tmp_path, second_holder)
    second.acquire(0)
    assert len(calls) == 2  # the orphaned inode was dropped and a fresh file taken
    monkeypatch.undo()
    assert local_lock_status(tmp_path) == LockStatus(holder=second_holder, held=True)
    with pytest.raises(LockHeldError):
        LocalLock(tmp_path, holder()).acquire(0)
    second.release()


def test_an_unusable_folder_is_a_lock_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(LockError, match="cannot create the lock folder") as caught:
        LocalLock(blocker / ".reconciler", holder()).acquire(0)
    assert not isinstance(caught.value, LockHeldError)


# --- across processes ----------------------------------------------------------------------------


def test_a_lock_held_by_another_process_names_it(tmp_path: Path, spawn: Spawn) -> None:
    child = spawn(tmp_path, "analytics")
    with pytest.raises(LockHeldError) as caught:
        LocalLock(tmp_path, holder()).acquire(0)
    seen = caught.value.holder
    assert seen is not None
    assert (seen.pid, seen.command, seen.lock_id) == (
        child.pid, "reconciler apply child", child.lock_id)
    assert f"pid {child.pid}" in str(caught.value)
    status = local_lock_status(tmp_path)
    assert status.held and status.holder == seen

    child.let_go()
    with LocalLock(tmp_path, holder()):
        pass


def test_a_holder_killed_with_sigkill_leaves_the_lock_free(tmp_path: Path, spawn: Spawn) -> None:
    child = spawn(tmp_path, "analytics")
    with pytest.raises(LockHeldError):
        LocalLock(tmp_path, holder()).acquire(0)
    child.kill()

    stale = local_lock_status(tmp_path)
    assert not stale.held
    assert stale.holder is not None and stale.holder.pid == child.pid  # the stale record

    mine = holder()
    with LocalLock(tmp_path, mine):
        assert local_lock_status(tmp_path) == LockStatus(holder=mine, held=True)


# --- status and force-unlock ---------------------------------------------------------------------


def test_status_without_a_lock_file(tmp_path: Path) -> None:
    assert local_lock_status(tmp_path / "nowhere") == LockStatus(holder=None, held=False)


def test_status_does_not_take_the_lock(tmp_path: Path) -> None:
    h = holder()
    with LocalLock(tmp_path, h):
        assert local_lock_status(tmp_path) == LockStatus(holder=h, held=True)
        assert local_lock_status(tmp_path).held  # the probe did not steal or break it


def test_force_unlock_with_a_wrong_id_refuses(tmp_path: Path) -> None:
    h = holder()
    with LocalLock(tmp_path, h):
        with pytest.raises(LockError, match="does not match") as caught:
            force_unlock_local(tmp_path, "0" * 32)
        assert h.lock_id in str(caught.value)
        assert local_lock_status(tmp_path) == LockStatus(holder=h, held=True)


def test_force_unlock_without_a_lock_refuses(tmp_path: Path) -> None:
    with pytest.raises(LockError, match="no lock"):
        force_unlock_local(tmp_path, "abc")


def test_force_unlock_lets_a_new_holder_in_past_a_hung_one(tmp_path: Path) -> None:
    hung_holder = holder(command="reconciler apply hung/")
    hung = LocalLock(tmp_path, hung_holder)
    hung.acquire(0)
    assert force_unlock_local(tmp_path, hung_holder.lock_id) == hung_holder
    assert not (tmp_path / "lock").exists()

    new_holder_ = holder(command="reconciler apply new/")
    new = LocalLock(tmp_path, new_holder_)
    new.acquire(0)  # the hung holder still has its flock, on the unlinked file
    hung.release()  # must leave the new holder's file alone
    assert local_lock_status(tmp_path) == LockStatus(holder=new_holder_, held=True)
    with pytest.raises(LockHeldError) as caught:
        LocalLock(tmp_path, holder()).acquire(0)
    assert caught.value.holder == new_holder_
    new.release()
    assert not (tmp_path / "lock").exists()


def test_force_unlock_clears_a_stale_record(tmp_path: Path, spawn: Spawn) -> None:
    child = spawn(tmp_path, "analytics")
    child.kill()
    removed = force_unlock_local(tmp_path, child.lock_id)
    assert removed.pid == child.pid
    assert local_lock_status(tmp_path) == LockStatus(holder=None, held=False)


def test_force_unlock_refuses_an_unreadable_record(tmp_path: Path) -> None:
    (tmp_path / "lock").write_text("{not json")
    with pytest.raises(LockError, match="no readable record"):
        force_unlock_local(tmp_path, "abc")
    assert (tmp_path / "lock").exists()


# --- choosing a backend --------------------------------------------------------------------------


def test_open_lock_chooses_the_backend_from_the_url(tmp_path: Path) -> None:
    h = holder()
    assert isinstance(open_lock(None, tmp_path, h, timeout=3), LocalLock)
    for url in ("postgresql://u@db/reconciler", "postgres://u@db/reconciler"):
        chosen = open_lock(url, tmp_path, h, timeout=3)
        assert isinstance(chosen, PostgresLock) and chosen.timeout == 3  # no connection yet
    with pytest.raises(LockError, match="unsupported lock URL") as caught:
        open_lock("redis://u:hunter2@cache/0", tmp_path, h, timeout=0)
    assert "hunter2" not in str(caught.value)


def test_postgres_without_psycopg_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # makes `import psycopg` fail
    with pytest.raises(LockError) as caught:
        PostgresLock("postgresql://u@127.0.0.1:1/db", holder()).acquire(0)
    assert str(caught.value) == (
        "the PostgreSQL lock needs psycopg: pip install 'psycopg[binary]'"
    )


def test_a_loser_waits_a_moment_for_the_winners_record_to_name_it(tmp_path: Path) -> None:
    """The winner takes the flock, then writes its record: a loser arriving in between still
    names it (seen with three applies started at one instant)."""
    import fcntl

    winner = new_holder("race", "reconciler apply m/")
    folder = tmp_path / ".reconciler"
    folder.mkdir()
    fd = os.open(folder / "lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)  # held, with no record yet
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        if len(sleeps) == 3:  # the winner finishes writing its record
            os.pwrite(fd, json.dumps(winner.to_dict()).encode(), 0)

    loser = LocalLock(folder, new_holder("race", "other"), sleep=sleep)
    try:
        with pytest.raises(LockHeldError) as caught:
            loser.acquire(0)
    finally:
        os.close(fd)
    assert caught.value.holder == winner
    assert winner.lock_id in str(caught.value)
    assert sleeps == [0.05, 0.05, 0.05]
