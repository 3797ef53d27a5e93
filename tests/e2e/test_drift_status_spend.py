"""What Terraform users reach for, end to end against the emulator over a loopback socket:
``plan --drift-only``, ``reconciler status`` and the spend guard (``apply --max-creates``).

Drift is made the way it happens: another client edits or cancels a run through the API.
"""

from __future__ import annotations

import json

import pytest
from jsonschema import Draft202012Validator

from reconciler.schemas import load_schema
from tests.e2e.harness import THREAD_A, THREAD_B, THREAD_C, Api, Workspace

pytestmark = pytest.mark.e2e

#: A run that completes at once, and one that waits for a tool call nobody answers.
TWO_RUNS = f"""\
    apiVersion: reconciler/v1
    kind: Runs
    defaults:
      assistant_id: asst_demo
    runs:
      - name: report
        thread_id: {THREAD_A}
        metadata: {{{{cadence: weekly}}}}
        revision: {{revision}}
      - name: stuck
        thread_id: {THREAD_B}
        tools:
          - type: function
            function: {{{{name: never_answered}}}}
"""

THREE_RUNS = f"""\
    apiVersion: reconciler/v1
    kind: Runs
    defaults:
      assistant_id: asst_demo
    runs:
      - {{name: one, thread_id: {THREAD_A}, max_prompt_tokens: 4000, max_completion_tokens: 1000}}
      - {{name: two, thread_id: {THREAD_B}, max_prompt_tokens: 2000}}
      - {{name: three, thread_id: {THREAD_C}}}
"""


def two_runs(ws: Workspace, revision: int = 0) -> None:
    ws.write("runs.yaml", TWO_RUNS.format(revision=revision))


def managed_count(api: Api) -> int:
    return sum(
        1 for thread in (THREAD_A, THREAD_B, THREAD_C) for run in api.runs(thread)
        if run["metadata"].get("reconciler.project") == "e2e"
    )


def test_drift_only_shows_what_changed_outside_and_exits_two(env: object, ws: Workspace,
                                                             api: Api) -> None:
    two_runs(ws)
    assert ws.cli("apply", ws.path, "--auto-approve").code == 0
    clean = ws.cli("plan", ws.path, "--drift-only", "--detailed-exitcode")
    assert clean.code == 0, clean.out + clean.err
    assert "No drift" in clean.out

    stuck = api.managed(THREAD_B, "stuck")[0]
    api.cancel(THREAD_B, stuck["id"])
    # A run cancelled elsewhere is no change to apply, so the plain plan still exits 0 …
    assert ws.cli("plan", ws.path, "--detailed-exitcode").code == 0
    # … but it is drift.
    cancelled = ws.cli("plan", ws.path, "--drift-only", "--detailed-exitcode")
    assert cancelled.code == 2, cancelled.out + cancelled.err
    assert f"{THREAD_B}/stuck: run {stuck['id']} was cancelled outside reconciler" in cancelled.out

    report = api.managed(THREAD_A, "report")[0]
    api.modify(THREAD_A, report["id"], {**report["metadata"], "cadence": "hourly"})
    both = ws.cli("plan", ws.path, "--drift-only")
    assert both.code == 0  # without --detailed-exitcode drift is no failure
    assert f"{THREAD_A}/report: the metadata of run {report['id']}" in both.out
    assert '"hourly"' in both.out
    assert "Plan:" not in both.out and "will have its metadata updated" not in both.out
    assert both.out.rstrip().splitlines()[-1] == (
        "Drift: 2 changes outside reconciler on 2 runs (1 metadata, 1 cancelled)."
    )

    as_json = ws.cli("plan", ws.path, "--drift-only", "--format", "json")
    data = json.loads(as_json.out)
    Draft202012Validator(load_schema("drift")).validate(data)
    assert [(d["address"], d["kind"]) for d in data["drift"]] == [
        (f"{THREAD_A}/report", "metadata"), (f"{THREAD_B}/stuck", "cancelled"),
    ]
    markdown = ws.cli("plan", ws.path, "--drift-only", "--format", "markdown")
    assert markdown.out.startswith("### Reconciler drift report for project `e2e`")

    # The drift is still there, and the plan itself (which reverts the metadata) unchanged.
    assert "1 to modify" in ws.cli("plan", ws.path).out


def test_drift_only_is_not_a_plan_to_save(env: object, ws: Workspace) -> None:
    two_runs(ws)
    refused = ws.cli("plan", ws.path, "--drift-only", "--out", str(ws.root / "drift.json"))
    assert refused.code == 1
    assert "not a plan apply can execute" in refused.err and "--out" in refused.err
    assert not (ws.root / "drift.json").exists()
    annotated = ws.cli("plan", ws.path, "--drift-only", "--format", "github")
    assert annotated.code == 1 and "text, json or markdown" in annotated.err


def test_status_lists_managed_runs_per_thread(env: object, ws: Workspace, api: Api,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    two_runs(ws)
    assert ws.cli("apply", ws.path, "--auto-approve").code == 0
    first = api.managed(THREAD_A, "report")[0]
    two_runs(ws, revision=1)  # a replacement: generation 2 beside generation 1
    assert ws.cli("apply", ws.path, "--auto-approve").code == 0
    current = next(r for r in api.managed(THREAD_A, "report") if r["id"] != first["id"])
    twin = api.create(THREAD_A, {"assistant_id": "asst_demo", "metadata": current["metadata"]})
    ws.write("runs.yaml", TWO_RUNS.format(revision=1).split("      - name: stuck")[0])

    result = ws.cli("status", ws.path, "--format", "json")
    assert result.code == 0, result.err
    data = json.loads(result.out)
    Draft202012Validator(load_schema("status")).validate(data)
    rows = {
        run["run_id"]: (thread["thread_id"], run["name"], run["role"], run["generation"],
                        run["declared"])
        for thread in data["threads"] for run in thread["runs"]
    }
    # The twin is current: same generation, later on the server's clock (or a later id).
    assert rows == {
        twin["id"]: (THREAD_A, "report", "current", 2, True),
        current["id"]: (THREAD_A, "report", "twin", 2, True),
        first["id"]: (THREAD_A, "report", "older", 1, True),
    }
    assert [t["thread_id"] for t in data["threads"]] == [THREAD_A]  # the manifests' threads
    stuck = api.managed(THREAD_B, "stuck")[0]

    both = ws.cli("status", ws.path, "--thread", THREAD_B)
    assert both.code == 0, both.err
    assert f"\n{THREAD_A}\n" in both.out and f"\n{THREAD_B}\n" in both.out
    assert f"  stuck   {stuck['id']}  requires_action" in both.out
    assert both.out.rstrip().splitlines()[-1] == (
        "4 managed runs on 2 threads: 2 current, 1 older, 1 twin; 1 no longer declared, "
        "0 declared with no managed run yet."
    )
    monkeypatch.chdir(ws.root)  # without PATHS, reconciler.toml is looked for from here
    by_thread = ws.cli("status", "--thread", THREAD_B, "--format", "json")
    runs = json.loads(by_thread.out)["threads"][0]["runs"]
    assert [(r["run_id"], r["status"], r["declared"]) for r in runs] == [
        (stuck["id"], "requires_action", None)
    ]


def test_status_needs_threads_and_exits_one_on_errors(env: object, ws: Workspace,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ws.root)
    nothing = ws.cli("status")
    assert nothing.code == 1 and "PATHS or --thread" in nothing.err
    missing = ws.cli("status", "--thread", "thread_missing")
    assert missing.code == 1 and "thread_missing" in missing.err
    assert "Traceback" not in nothing.err + missing.err


def test_max_creates_refuses_before_anything_is_sent(env: object, ws: Workspace,
                                                     api: Api) -> None:
    ws.write("runs.yaml", THREE_RUNS)
    planned = ws.cli("plan", ws.path)
    assert (
        "Token ceilings of the 3 runs to create: prompt ≤ 6,000, completion ≤ 1,000; "
        "2 unbounded." in planned.out
    )
    refused = ws.cli("apply", ws.path, "--auto-approve", "--max-creates", "2")
    assert refused.code == 1
    assert refused.err.strip() == (
        "Error: the plan would create 3 runs (creates and replaces count) but --max-creates "
        "allows 2; nothing was changed: raise the limit, or plan fewer runs with --target"
    )
    assert managed_count(api) == 0

    (ws.root / "reconciler.toml").write_text('project = "e2e"\nmax_creates = 2\n')
    from_file = ws.cli("apply", ws.path, "--auto-approve")
    assert from_file.code == 1 and "but max_creates in " in from_file.err
    assert managed_count(api) == 0

    saved = str(ws.root / "plan.json")
    assert ws.cli("plan", ws.path, "--out", saved).code == 0
    stale_free = ws.cli("apply", saved, "--max-creates", "1")
    assert stale_free.code == 1 and "would create 3 runs" in stale_free.err
    assert stale_free.out == ""  # refused before the plan was even checked against the API
    assert managed_count(api) == 0

    applied = ws.cli("apply", saved, "--max-creates", "3")  # the flag wins over the file
    assert applied.code == 0, applied.err
    assert managed_count(api) == 3
