"""The shared lock and journal on a real PostgreSQL server (``pg_url``, tests/pg/support.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from reconciler.journal import Intent, JournalError, PostgresJournal, open_journal
from reconciler.lock import (
    LOCKS_TABLE,
    LockError,
    LockHeldError,
    LockHolder,
    PostgresLock,
    advisory_key,
    ensure_table,
    new_holder,
    open_lock,
    redact_url,
)
from tests.pg import support
from tests.pg.support import free_port

REPO = Path(__file__).resolve().parents[2]

CHILD = """
import sys
from reconciler.lock import PostgresLock, new_holder
lock = PostgresLock(sys.argv[1], new_holder(sys.argv[2], "reconciler apply child"))
lock.acquire(0)
print("locked", lock.holder.lock_id, flush=True)
sys.stdin.readline()
"""


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def locks() -> Iterator[list[PostgresLock]]:
    made: list[PostgresLock] = []
    yield made
    for lock in made:
        lock.release()


def make(locks: list[PostgresLock], url: str, project: str, command: str = "reconciler apply",
         **options: Any) -> PostgresLock:
    lock = PostgresLock(url, new_holder(project, command), **options)
    locks.append(lock)
    return lock


def lock_row(url: str, project: str) -> tuple[str, dict[str, object]] | None:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(f"SELECT lock_id, holder FROM {LOCKS_TABLE} WHERE project = %s",
                           (project,)).fetchone()
    return None if row is None else (row[0], row[1])


def test_two_locks_on_one_project_exclude_each_other(
    pg_url: str, project: str, locks: list[PostgresLock]
) -> None:
    first = make(locks, pg_url, project, "reconciler apply a/")
    second = make(locks, pg_url, project, "reconciler apply b/")
    first.acquire(0)
    assert lock_row(pg_url, project) == (first.holder.lock_id, first.holder.to_dict())

    with pytest.raises(LockHeldError) as caught:
        second.acquire(0)
    assert caught.value.holder == first.holder
    assert str(caught.value) == (
        f"the project '{project}' is locked by {first.holder.describe()}; "
        "waited 0s (--lock-timeout)"
    )
    assert not second.held

    first.release()
    assert lock_row(pg_url, project) is None
    first.release()  # idempotent
    second.acquire(0)
    assert lock_row(pg_url, project) == (second.holder.lock_id, second.holder.to_dict())


def test_different_projects_do_not_exclude(pg_url: str, project: str,
                                           locks: list[PostgresLock]) -> None:
    make(locks, pg_url, project).acquire(0)
    make(locks, pg_url, project + "-other").acquire(0)
    assert all(lock.held for lock in locks)


def test_the_context_manager_uses_the_constructor_timeout(
    pg_url: str, project: str, locks: list[PostgresLock]
) -> None:
    fake = FakeTime()
    holder_lock = make(locks, pg_url, project)
    with holder_lock:
        waiter = make(locks, pg_url, project, timeout=1.0, poll_interval=0.25,
                      clock=fake.clock, sleep=fake.sleep)
        with pytest.raises(LockHeldError, match="waited 1s"), waiter:
            pass
    assert fake.sleeps == [0.25, 0.25, 0.25, 0.25]
    assert not holder_lock.held


def test_a_waiter_gets_the_lock_once_it_is_released(
    pg_url: str, project: str, locks: list[PostgresLock]
) -> None:
    first = make(locks, pg_url, project)
    first.acquire(0)
    fake = FakeTime()

    def sleep(seconds: float) -> None:
        fake.sleep(seconds)
        first.release()

    waiter = make(locks, pg_url, project, poll_interval=1.0, clock=fake.clock,
                  sleep=sleep)
    waiter.acquire(30)
    assert fake.sleeps == [1.0]
    assert lock_row(pg_url, project) is not None
    assert lock_row(pg_url, project) == (waiter.holder.lock_id, waiter.holder.to_dict())


def test_a_stale_row_of_a_dead_holder_does_not_block(
    pg_url: str, project: str, locks: list[PostgresLock]
) -> None:
    ghost = new_holder(project, "reconciler apply ghost/")
    make(locks, pg_url, project).acquire(0)  # creates the table
    locks[0].release()
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f"INSERT INTO {LOCKS_TABLE} (project, lock_id, holder) VALUES "
                     "(%s, %s, %s::jsonb)", (project, ghost.lock_id, '{"junk": 1}'))
    lock = make(locks, pg_url, project)
    lock.acquire(0)
    assert lock_row(pg_url, project) == (lock.holder.lock_id, lock.holder.to_dict())


def test_a_holder_killed_with_sigkill_frees_the_lock(
    pg_url: str, project: str, locks: list[PostgresLock]
) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, pg_url, project],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
    )
    try:
        assert child.stdout is not None
        word, lock_id = child.stdout.readline().split()
        assert word == "locked"
        with pytest.raises(LockHeldError) as caught:
            make(locks, pg_url, project).acquire(0)
        seen = caught.value.holder
        assert seen is not None
        assert (seen.pid, seen.lock_id, seen.command) == (
            child.pid, lock_id, "reconciler apply child")
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    # The server notices the closed connection on its own; give it a bounded while.
    survivor = make(locks, pg_url, project, poll_interval=0.05)
    survivor.acquire(30)
    assert lock_row(pg_url, project) == (survivor.holder.lock_id, survivor.holder.to_dict())


def test_concurrent_first_uses_create_the_table_once(pg_url: str) -> None:
    table = f"reconciler_ddl_test_{uuid.uuid4().hex[:8]}"
    ddl = f"CREATE TABLE IF NOT EXISTS {table} (id int)"
    failures: list[BaseException] = []
    start = threading.Barrier(4)

    def create() -> None:
        try:
            with psycopg.connect(pg_url, autocommit=True) as conn:
                start.wait()
                ensure_table(conn, table, ddl)
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=create) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    with psycopg.connect(pg_url, autocommit=True) as conn:
        assert conn.execute("SELECT to_regclass(%s) IS NOT NULL", (table,)).fetchone() == (True,)
        conn.execute(f"DROP TABLE {table}")


def test_open_lock_returns_a_working_postgres_lock(pg_url: str, project: str,
                                                   tmp_path: Path) -> None:
    lock = open_lock(pg_url, tmp_path, new_holder(project, "c"), timeout=0)
    with lock:
        assert lock_row(pg_url, project) is not None
    assert lock_row(pg_url, project) is None
    assert not (tmp_path / "lock").exists()  # nothing local was used


def test_advisory_key_is_pinned() -> None:
    # first 8 bytes of sha256(b"reconciler:analytics") = b4cefd1c172723e4, as a signed int
    assert advisory_key("analytics") == -5418115004590775324
    assert advisory_key("demo") == 8149863823906398152
    assert advisory_key("analytics") == int.from_bytes(
        bytes.fromhex("b4cefd1c172723e4"), "big", signed=True)


@pytest.mark.parametrize(("url", "expected"), [
    ("postgresql://ci:s3cr%40t@db.example:5432/locks",
     "postgresql://ci:***@db.example:5432/locks"),
    ("postgres://ci:p@ss:word@db/locks?sslmode=require",
     "postgres://ci:***@db/locks?sslmode=require"),
    ("postgresql://db/locks?user=ci&password=hunter2&sslmode=require",
     "postgresql://db/locks?user=ci&password=***&sslmode=require"),
    ("postgresql://ci@db/locks", "postgresql://ci@db/locks"),
    ("host=db user=ci password='a b'", "host=db user=ci password=***"),
    ("host=db password=hunter2 user=ci", "host=db password=*** user=ci"),
])
def test_redact_url_hides_the_password(url: str, expected: str) -> None:
    assert redact_url(url) == expected


def test_a_refused_connection_is_one_sentence_without_the_password() -> None:
    port = free_port()  # closed again at once: nothing listens there
    url = f"postgresql://ci:hunter2@127.0.0.1:{port}/locks"
    with pytest.raises(LockError) as caught:
        PostgresLock(url, new_holder("p", "c")).acquire(0)
    message = str(caught.value)
    assert not isinstance(caught.value, LockHeldError)
    assert "hunter2" not in message and "\n" not in message
    assert message.startswith(
        f"cannot connect to the PostgreSQL lock database postgresql://ci:***@127.0.0.1:{port}"
        "/locks: ")
    assert "refused" in message


def test_a_password_echoed_by_libpq_is_removed() -> None:
    # libpq quotes a malformed password back in its complaint
    url = "postgresql://ci:top secret@127.0.0.1:1/locks"
    with pytest.raises(LockError) as caught:
        PostgresLock(url, new_holder("p", "c")).acquire(0)
    assert "top secret" not in str(caught.value)
    assert "\n" not in str(caught.value)


# --- the journal ----------------------------------------------------------------------------------


def intent(project: str, name: str, started_at: float) -> Intent:
    return Intent(uuid.uuid4().hex, project, "http://127.0.0.1:1/v1", "thread_a", name,
                  started_at)


def test_postgres_journal_record_pending_resolve(pg_url: str, project: str) -> None:
    journal = PostgresJournal(pg_url)
    other = PostgresJournal(pg_url)  # another runner on the same database
    try:
        late, early = intent(project, "late", 2.0), intent(project, "early", 1.0)
        journal.record(late)
        other.record(early)
        assert journal.pending(project, late.backend) == [early, late]
        assert other.pending(project, late.backend) == [early, late]
        assert journal.pending(project, "elsewhere") == []
        assert journal.pending(project + "-x", late.backend) == []

        other.resolve(late.attempt_id)
        other.resolve(late.attempt_id)  # idempotent
        assert journal.pending(project, late.backend) == [early]
        with pytest.raises(JournalError, match=early.attempt_id):
            journal.record(early)
        journal.record(intent(project, "after-a-refusal", 3.0))  # the connection still works
    finally:
        journal.close()
        other.close()


def test_open_journal_returns_a_postgres_journal(pg_url: str, project: str,
                                                 tmp_path: Path) -> None:
    journal = open_journal(pg_url, tmp_path)
    try:
        assert isinstance(journal, PostgresJournal)
        item = intent(project, "a", time.time())
        journal.record(item)
        assert journal.pending(project, item.backend) == [item]
    finally:
        journal.close()
    assert not (tmp_path / "journal.sqlite").exists()


def test_an_unreachable_journal_is_a_journal_error() -> None:
    url = f"postgresql://ci:hunter2@127.0.0.1:{free_port()}/locks"
    with pytest.raises(JournalError) as caught:
        PostgresJournal(url)
    assert "hunter2" not in str(caught.value) and "\n" not in str(caught.value)
    assert str(caught.value).startswith("cannot connect to the PostgreSQL journal database")


def test_holder_round_trips_through_jsonb(pg_url: str, project: str,
                                          locks: list[PostgresLock]) -> None:
    lock = make(locks, pg_url, project)
    lock.acquire(0)
    row = lock_row(pg_url, project)
    assert row is not None and LockHolder.from_dict(row[1]) == lock.holder


def test_without_server_binaries_the_fixture_fails_and_says_what_installs_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(support, "find_pg_bindir", lambda: None)
    with pytest.raises(pytest.fail.Exception, match=r"`\.ci/run` installs them"):
        support.start_postgres()
