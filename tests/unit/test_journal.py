"""The intent journal: attempts recorded before a create survive a kill and are shared."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.errors import ReconcilerError
from reconciler.journal import (
    Intent,
    IntentJournal,
    JournalError,
    LocalJournal,
    MemoryJournal,
    open_journal,
)

REPO = Path(__file__).resolve().parents[2]
BACKEND = "http://127.0.0.1:8080/v1"

# A child that records intents, says so, then waits: killed there, or told to go on.
CHILD = """
import sys, time
from pathlib import Path
from reconciler.journal import Intent, LocalJournal
directory, prefix, count = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
journal = LocalJournal(directory)
if sys.argv[4] == "wait-first":
    sys.stdin.readline()
for i in range(count):
    journal.record(Intent(f"{prefix}-{i}", "analytics", sys.argv[5], "thread_a", f"run-{i}",
                          time.time()))
print("recorded", flush=True)
line = sys.stdin.readline().strip()
if line.startswith("resolve "):
    journal.resolve(line.split()[1])
journal.close()
print("done", flush=True)
"""


def intent(name: str, started_at: float, *, project: str = "analytics",
           backend: str = BACKEND) -> Intent:
    return Intent(attempt_id=uuid.uuid4().hex, project=project, backend=backend,
                  thread_id="thread_a", name=name, started_at=started_at)


@pytest.fixture(params=["local", "memory"])
def journal(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[IntentJournal]:
    made: IntentJournal = (
        LocalJournal(tmp_path / ".reconciler") if request.param == "local" else MemoryJournal()
    )
    yield made
    made.close()


@pytest.fixture
def children() -> Iterator[list[subprocess.Popen[str]]]:
    procs: list[subprocess.Popen[str]] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def start_child(procs: list[subprocess.Popen[str]], directory: Path, prefix: str, count: int,
                *, wait_first: bool = False) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(directory), prefix, str(count),
         "wait-first" if wait_first else "now", BACKEND],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
    )
    procs.append(proc)
    return proc


def say(proc: subprocess.Popen[str], line: str) -> None:
    assert proc.stdin is not None
    proc.stdin.write(line + "\n")
    proc.stdin.flush()


def hear(proc: subprocess.Popen[str]) -> str:
    assert proc.stdout is not None
    return proc.stdout.readline().strip()


def test_record_pending_resolve(journal: IntentJournal) -> None:
    late, early, middle = intent("late", 300.0), intent("early", 100.0), intent("mid", 200.0)
    for item in (late, early, middle):
        journal.record(item)
    journal.record(intent("other-project", 50.0, project="billing"))
    journal.record(intent("other-backend", 50.0, backend="emulator:/tmp/e.sqlite"))

    assert journal.pending("analytics", BACKEND) == [early, middle, late]
    journal.resolve(middle.attempt_id)
    assert journal.pending("analytics", BACKEND) == [early, late]
    journal.resolve(middle.attempt_id)  # idempotent
    journal.resolve("never-recorded")
    assert journal.pending("analytics", BACKEND) == [early, late]
    assert [i.name for i in journal.pending("billing", BACKEND)] == ["other-project"]
    assert journal.pending("analytics", "elsewhere") == []


def test_the_same_attempt_cannot_be_recorded_twice(journal: IntentJournal) -> None:
    item = intent("a", 1.0)
    journal.record(item)
    with pytest.raises(JournalError, match=item.attempt_id):
        journal.record(item)
    assert journal.pending("analytics", BACKEND) == [item]


def test_journal_errors_are_reconciler_errors() -> None:
    assert issubclass(JournalError, ReconcilerError)


def test_a_local_journal_is_a_wal_file_that_outlives_the_object(tmp_path: Path) -> None:
    first = LocalJournal(tmp_path)
    item = intent("a", time.time())
    first.record(item)
    first.close()
    with sqlite3.connect(tmp_path / "journal.sqlite") as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    again = LocalJournal(tmp_path)
    assert again.pending("analytics", BACKEND) == [item]
    again.close()


def test_a_thousand_records_are_kept_in_a_wal_journal_without_fsync(tmp_path: Path) -> None:
    # synchronous=NORMAL in WAL mode: a commit costs no fsync (FULL takes over a second here).
    journal = LocalJournal(tmp_path)
    items = [intent(f"run-{i}", float(i)) for i in range(1000)]
    for item in items:
        journal.record(item)
    assert journal.pending("analytics", BACKEND) == items
    assert journal._db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert journal._db.execute("PRAGMA synchronous").fetchone() == (1,)  # NORMAL
    journal.close()


def test_an_unusable_folder_is_a_journal_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(JournalError, match="cannot open the intent journal"):
        LocalJournal(blocker / ".reconciler")


def test_a_record_survives_the_process_killed_right_after(
    tmp_path: Path, children: list[subprocess.Popen[str]]
) -> None:
    child = start_child(children, tmp_path, "killed", 3)
    assert hear(child) == "recorded"
    child.send_signal(signal.SIGKILL)
    child.wait()
    journal = LocalJournal(tmp_path)
    assert [i.attempt_id for i in journal.pending("analytics", BACKEND)] == [
        "killed-0", "killed-1", "killed-2"]
    journal.close()


def test_two_processes_share_the_file(
    tmp_path: Path, children: list[subprocess.Popen[str]]
) -> None:
    journal = LocalJournal(tmp_path)
    child = start_child(children, tmp_path, "child", 300, wait_first=True)
    say(child, "go")
    mine = [intent(f"mine-{i}", time.time()) for i in range(300)]
    for item in mine:  # written while the child writes its own
        journal.record(item)
    assert hear(child) == "recorded"

    say(child, f"resolve {mine[0].attempt_id}")
    assert hear(child) == "done"
    assert child.wait() == 0
    ids = {i.attempt_id for i in journal.pending("analytics", BACKEND)}
    assert ids == {f"child-{i}" for i in range(300)} | {i.attempt_id for i in mine[1:]}
    journal.close()


def test_open_journal_chooses_the_backend_from_the_url(tmp_path: Path) -> None:
    local = open_journal(None, tmp_path)
    assert isinstance(local, LocalJournal)
    assert local.path == tmp_path / "journal.sqlite"
    local.close()
    with pytest.raises(JournalError, match="unsupported journal URL") as caught:
        open_journal("mysql://u:hunter2@db/x", tmp_path)
    assert "hunter2" not in str(caught.value)


def test_postgres_without_psycopg_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)
    with pytest.raises(JournalError) as caught:
        open_journal("postgresql://u@127.0.0.1:1/db", tmp_path)
    assert str(caught.value) == (
        "the PostgreSQL journal needs psycopg: pip install 'psycopg[binary]'"
    )
