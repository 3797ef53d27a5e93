"""What teams do to a project, end to end: saved plans moved elsewhere, SQL edits of managed
runs, emptied threads and files, and the project lock held by someone else."""

from __future__ import annotations

import base64
import json
import os
import textwrap
from pathlib import Path

import pytest

from reconciler.lock import LocalLock, new_holder
from tests.e2e.gateway import RecordingStub
from tests.e2e.harness import KEY, THREAD_A, THREAD_B, THREAD_C, Api, BackgroundServer, Workspace

pytestmark = pytest.mark.e2e

TWO_THREADS = f"""\
    apiVersion: reconciler/v1
    kind: Runs
    defaults:
      assistant_id: asst_demo
    runs:
      - name: first
        thread_id: {THREAD_A}
      - name: second
        thread_id: {THREAD_B}
"""


@pytest.fixture
def keyed(monkeypatch: pytest.MonkeyPatch) -> None:
    """The key in the environment, but no base URL: where the plan was made must decide."""
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)


# --- a saved plan binds its backend -----------------------------------------------------------


def test_a_saved_plan_moved_elsewhere_applies_where_it_was_made(
    keyed: None, server: BackgroundServer, ws: Workspace, api: Api, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    manifests = tmp_path / "m"
    manifests.mkdir()
    (manifests / "reconciler.toml").write_text('project = "e2e"\n')
    (manifests / "runs.yaml").write_text(textwrap.dedent(TWO_THREADS))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    planfile = elsewhere / "p.json"
    planned = ws.cli("plan", str(manifests), "--base-url", server.base_url, "--out",
                     str(planfile))
    assert planned.code == 0, planned.err
    text = planfile.read_text()
    assert json.loads(text)["backend"] == {
        "base_url": server.base_url, "auth": "bearer", "api_version": None,
    }
    assert KEY not in text and base64.b64encode(KEY.encode()).decode() not in text

    monkeypatch.chdir(elsewhere)  # no reconciler.toml here, no OPENAI_BASE_URL anywhere
    applied = ws.cli("apply", "p.json")
    assert applied.code == 0, applied.out + applied.err
    assert len(api.managed(THREAD_A, "first")) == 1
    assert len(api.managed(THREAD_B, "second")) == 1


def test_a_saved_plan_refuses_flags_env_or_config_that_point_elsewhere(
    keyed: None, server: BackgroundServer, ws: Workspace, api: Api, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ws.write("runs.yaml", TWO_THREADS)
    planfile = str(tmp_path / "p.json")
    assert ws.cli("plan", ws.path, "--base-url", server.base_url, "--out", planfile).code == 0
    with RecordingStub() as stub:
        refused = ws.cli("apply", planfile, "--base-url", stub.base_url)
        assert refused.code == 1
        assert f"computed against {server.base_url}" in refused.err
        assert f"--base-url points at {stub.base_url}" in refused.err

        monkeypatch.setenv("OPENAI_BASE_URL", stub.base_url)
        by_env = ws.cli("apply", planfile)
        assert by_env.code == 1 and "OPENAI_BASE_URL points at" in by_env.err
        monkeypatch.delenv("OPENAI_BASE_URL")

        (tmp_path / "reconciler.toml").write_text(
            f'project = "e2e"\nbase_url = "{stub.base_url}"\n'
        )
        by_config = ws.cli("apply", planfile)
        assert by_config.code == 1 and "reconciler.toml points at" in by_config.err
        (tmp_path / "reconciler.toml").write_text('project = "other"\n')
        by_project = ws.cli("apply", planfile)
        assert by_project.code == 1
        assert "belongs to project 'e2e'" in by_project.err
        assert stub.requests == []  # nothing, and so no key, ever went to the other host
    assert KEY not in refused.err + by_env.err + by_config.err
    assert api.managed(THREAD_A, "first") == []


def test_the_same_url_spelled_differently_is_the_same_backend(
    keyed: None, server: BackgroundServer, ws: Workspace, api: Api, tmp_path: Path,
) -> None:
    ws.write("runs.yaml", TWO_THREADS)
    planfile = str(tmp_path / "p.json")
    assert ws.cli("plan", ws.path, "--base-url", server.base_url, "--out", planfile).code == 0
    shouted = server.base_url.replace("http://127.0.0.1", "HTTP://127.0.0.1") + "/"
    applied = ws.cli("apply", planfile, "--base-url", shouted)
    assert applied.code == 0, applied.err
    assert len(api.managed(THREAD_A, "first")) == 1


def test_an_old_format_plan_file_is_refused_with_advice(ws: Workspace, tmp_path: Path) -> None:
    old = tmp_path / "p.json"
    old.write_text(json.dumps({"format_version": "1.0", "options": {}, "changes": []}))
    result = ws.cli("apply", str(old))
    assert result.code == 1
    assert "format version '1.0'" in result.err and "plan --out" in result.err


# --- SQL writes keep a managed run managed ----------------------------------------------------


def test_sql_update_of_a_managed_run_keeps_its_reserved_keys(
    env: BackgroundServer, ws: Workspace, api: Api, monkeypatch: pytest.MonkeyPatch,
) -> None:
    ws.write("runs.yaml", TWO_THREADS)
    assert ws.cli("apply", ws.path, "--auto-approve").code == 0
    (run,) = api.managed(THREAD_A, "first")
    monkeypatch.chdir(ws.root)
    sql = ("UPDATE openai.assistants.runs SET data__metadata='{\"team\":\"x\"}' "
           f"WHERE thread_id='{THREAD_A}' AND run_id='{run['id']}'")
    updated = ws.cli("query", sql)
    assert updated.code == 0, updated.err
    assert "kept its 4 reserved reconciler.* keys" in updated.err
    (after,) = api.managed(THREAD_A, "first")
    assert after["id"] == run["id"] and after["metadata"]["team"] == "x"
    assert {k: v for k, v in after["metadata"].items() if k.startswith("reconciler.")} == {
        k: v for k, v in run["metadata"].items() if k.startswith("reconciler.")
    }
    planned = ws.cli("plan", ws.path)
    assert "changed outside reconciler" in planned.out  # shown as drift
    assert "0 to create" in planned.out  # and no twin is proposed
    assert "1 to modify" in planned.out  # the manifest's metadata is put back


def test_sql_cannot_forge_or_change_reserved_keys(
    env: BackgroundServer, ws: Workspace, api: Api, monkeypatch: pytest.MonkeyPatch,
) -> None:
    ws.write("runs.yaml", TWO_THREADS)
    assert ws.cli("apply", ws.path, "--auto-approve").code == 0
    (run,) = api.managed(THREAD_A, "first")
    monkeypatch.chdir(ws.root)
    forged = ws.cli("query", "UPDATE openai.assistants.runs SET data__metadata="
                    "'{\"reconciler.project\":\"thief\"}' "
                    f"WHERE thread_id='{THREAD_A}' AND run_id='{run['id']}'")
    assert forged.code == 1 and "'reconciler.project' is reserved" in forged.err
    inserted = ws.cli("query", "INSERT INTO openai.assistants.runs (thread_id, data__assistant_id,"
                      " data__metadata) SELECT "
                      f"'{THREAD_A}', 'asst_demo', '{{\"reconciler.name\":\"first\"}}'")
    assert inserted.code == 1 and "'reconciler.name' is reserved" in inserted.err
    assert api.managed(THREAD_A, "first") == [api.managed(THREAD_A, "first")[0]]
    assert api.managed(THREAD_A, "first")[0]["metadata"] == run["metadata"]


def test_a_run_stripped_of_its_reserved_keys_is_drift_not_a_twin(
    env: BackgroundServer, ws: Workspace, api: Api,
) -> None:
    ws.write("runs.yaml", TWO_THREADS)
    assert ws.cli("apply", ws.path, "--auto-approve").code == 0
    (run,) = api.managed(THREAD_A, "first")
    api.modify(THREAD_A, run["id"], {"team": "x"})  # what a careless script does
    planned = ws.cli("plan", ws.path, "--detailed-exitcode")
    assert planned.code == 0, planned.out
    assert f"run {run['id']} matches this run's spec but is not marked as managed" in planned.out
    applied = ws.cli("apply", ws.path, "--auto-approve")
    assert applied.code == 0
    assert [r["id"] for r in api.runs(THREAD_A)] == [run["id"]]  # no twin was created
    told = ws.cli("plan", ws.path, "--detailed-exitcode", "--recreate-unmarked")
    assert told.code == 2 and "1 to create" in told.out


# --- empty sets are explicit ------------------------------------------------------------------


def test_a_thread_emptied_to_runs_list_is_still_read_and_pruned(
    env: BackgroundServer, ws: Workspace, api: Api,
) -> None:
    ws.write("runs.yaml", TWO_THREADS.replace("assistant_id: asst_demo", "assistant_id: asst_demo"
                                              "\n      tools: [{type: function, function: "
                                              "{name: hold}}]"))
    assert ws.cli("apply", ws.path, "--auto-approve").code == 0
    (held,) = api.managed(THREAD_A, "first")
    assert held["status"] == "requires_action"  # still active: there is something to prune
    ws.write("runs.yaml", f"""\
        apiVersion: reconciler/v1
        kind: Runs
        defaults:
          thread_id: {THREAD_A}
        runs: []
        ---
        apiVersion: reconciler/v1
        kind: Runs
        defaults:
          assistant_id: asst_demo
          tools: [{{type: function, function: {{name: hold}}}}]
        runs:
          - name: second
            thread_id: {THREAD_B}
    """)
    planned = ws.cli("plan", ws.path, "--prune", "--detailed-exitcode")
    assert planned.code == 2, planned.out + planned.err
    assert "1 to cancel" in planned.out and f"{THREAD_A}/first" in planned.out
    assert ws.cli("apply", ws.path, "--prune", "--auto-approve").code == 0
    assert api.managed(THREAD_A, "first")[0]["status"] in ("cancelling", "cancelled")


def test_an_empty_or_comment_only_file_is_an_error_naming_it(ws: Workspace) -> None:
    ws.write("empty.yaml", "# everything was deleted in a hurry\n")
    result = ws.cli("validate", str(ws.root / "empty.yaml"))
    assert result.code == 1
    assert "empty.yaml:1:1: holds no manifest" in result.err
    assert "0 runs" not in result.out


def test_prune_with_nothing_declared_needs_allow_empty(env: BackgroundServer,
                                                       ws: Workspace) -> None:
    ws.write("runs.yaml", f"""\
        apiVersion: reconciler/v1
        kind: Runs
        defaults: {{thread_id: {THREAD_A}}}
        runs: []
    """)
    refused = ws.cli("plan", ws.path, "--prune")
    assert refused.code == 1 and "--allow-empty" in refused.err
    allowed = ws.cli("plan", ws.path, "--prune", "--allow-empty")
    assert allowed.code == 0, allowed.err


# --- the lock ---------------------------------------------------------------------------------


def test_a_held_lock_refuses_apply_naming_the_holder_and_can_be_shown(
    env: BackgroundServer, ws: Workspace, api: Api, monkeypatch: pytest.MonkeyPatch,
) -> None:
    ws.write("runs.yaml", TWO_THREADS)
    holder = new_holder("e2e", "reconciler apply manifests/ --auto-approve")
    with LocalLock(ws.root / ".reconciler", holder):
        refused = ws.cli("apply", ws.path, "--auto-approve")
        assert refused.code == 1
        assert "the project 'e2e' is locked by" in refused.err
        assert f"pid {os.getpid()}" in refused.err and holder.lock_id in refused.err
        assert "reconciler apply manifests/ --auto-approve" in refused.err
        shown = ws.cli("lock", "show", ws.path)
        assert shown.code == 0 and f"Locked by {holder.describe()}" in shown.out
        stray = api.create(THREAD_C, {"assistant_id": "asst_demo"})
        (ws.root / ".exported").mkdir()  # hidden: not read as a manifest by the applies below
        adopt = ws.cli("export", "--thread", THREAD_C, "--adopt", "--auto-approve",
                       "--out", str(ws.root / ".exported" / "adopted.yaml"))
        assert adopt.code == 1 and "is locked by" in adopt.err
        assert "reconciler.project" not in api.runs(THREAD_C)[0]["metadata"]
        assert api.runs(THREAD_C)[0]["id"] == stray["id"]
        unlocked = ws.cli("apply", ws.path, "--auto-approve", "--lock=false")
        assert unlocked.code == 0, unlocked.err  # told to: the re-read before each create guards
    assert api.managed(THREAD_A, "first") != []
    after = ws.cli("lock", "show", ws.path)
    assert after.code == 0 and "Not locked" in after.out
    assert ws.cli("apply", ws.path, "--auto-approve").code == 0  # released with its holder
