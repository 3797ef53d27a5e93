"""Persistence across restarts, fixtures, and list speed with many runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.emulator import DEMO_FIXTURES_PATH, BackgroundServer, load_fixtures
from reconciler.emulator.config import EmulatorConfig, RunTiming
from reconciler.emulator.service import Emulator
from tests.emulator.support import SpecChecker, make_config, sdk_client


def test_state_survives_a_restart(tmp_path: Path, spec_checker: SpecChecker) -> None:
    state = str(tmp_path / "emulator.sqlite")
    with BackgroundServer(make_config(state_path=state, seed=1)) as srv:
        client = sdk_client(srv.base_url, spec_checker)
        assistant = client.beta.assistants.create(model="gpt-4o")
        thread = client.beta.threads.create(metadata={"keep": "me"})
        run = client.beta.threads.runs.create(thread.id, assistant_id=assistant.id)
    with BackgroundServer(make_config(state_path=state, seed=1)) as srv:
        client = sdk_client(srv.base_url, spec_checker)
        assert client.beta.threads.retrieve(thread.id).metadata == {"keep": "me"}
        again = client.beta.threads.runs.retrieve(run.id, thread_id=thread.id)
        assert again.status == "completed"
        newer = client.beta.threads.runs.create(thread.id, assistant_id=assistant.id)
        assert newer.id not in {run.id} and newer.id > run.id  # same seed, still unique
        assert [r.id for r in client.beta.threads.runs.list(thread.id)] == [newer.id, run.id]


def test_demo_fixtures_are_created_once(tmp_path: Path, spec_checker: SpecChecker) -> None:
    state = str(tmp_path / "demo.sqlite")
    config = make_config(state_path=state, fixtures=load_fixtures(DEMO_FIXTURES_PATH))
    with BackgroundServer(config) as srv:
        client = sdk_client(srv.base_url, spec_checker)
        assistant = client.beta.assistants.retrieve("asst_demo")
        assert assistant.model == "gpt-4o" and assistant.tools == []
        assert assistant.instructions
        client.beta.assistants.update("asst_demo", name="renamed")
        for thread_id in ("thread_demo_reports", "thread_demo_triage", "thread_demo_research"):
            assert client.beta.threads.retrieve(thread_id).id == thread_id
    with BackgroundServer(config) as srv:  # present already: left alone
        client = sdk_client(srv.base_url, spec_checker)
        assert client.beta.assistants.retrieve("asst_demo").name == "renamed"


@pytest.mark.parametrize(("text", "message"), [
    ("assistants: [{id: bad, model: gpt-4o}]", "must be a string starting with asst_"),
    ("threads: {}", "'threads' must be a list"),
    ("assistants: [{id: asst_a}]", "'model' is required"),
    ("threads: [{id: thread_a, colour: red}]", "Unrecognized request argument supplied: colour"),
    ("extra: 1", "unknown key 'extra'"),
    ("threads: [", "not valid YAML"),
])
def test_bad_fixtures_are_refused_clearly(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "fixtures.yaml"
    path.write_text(text)
    with pytest.raises(ValueError, match=message) as error:
        load_fixtures(path)
    assert str(path) in str(error.value)


def test_listing_a_thread_stays_fast_with_20000_runs() -> None:
    emulator = Emulator(EmulatorConfig(timing=RunTiming.instant()))
    store = emulator.store
    assistant = emulator.handle("createAssistant", {}, {}, {"model": "gpt-4o"})
    threads = [emulator.handle("createThread", {}, {}, {})["id"] for _ in range(1000)]
    template = emulator.handle("createRun", {"thread_id": threads[0]}, {},
                               {"assistant_id": assistant["id"]})
    record = store.get("runs", template["id"])
    assert record is not None
    with store.transaction():  # bulk load: 20 runs on each of 1,000 threads
        for n in range(20_000):
            thread_id = threads[n % 1000]
            run_id = f"run_bulk{n:020d}"
            body = {**record, "run": {**record["run"], "id": run_id, "thread_id": thread_id}}
            store.insert("runs", run_id, body, parent=thread_id)
    assert store.count("runs") == 20_001
    plan = store._db.execute(
        "EXPLAIN QUERY PLAN SELECT body FROM runs WHERE parent IS ? ORDER BY seq DESC LIMIT 21",
        ("thread_x",)).fetchall()
    assert "USING INDEX runs_by_parent" in str(plan)
    for thread_id in threads[:100]:  # the index serves every thread's list, in order
        page = emulator.handle("listRuns", {"thread_id": thread_id}, {"limit": "100"}, {})
        assert len(page["data"]) >= 20
        created = [run["created_at"] for run in page["data"]]
        assert created == sorted(created, reverse=True)
