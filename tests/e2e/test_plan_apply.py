"""plan → apply → plan, every action, drift, prune, target, saved plans, --wait, ordering."""

from __future__ import annotations

import json

import pytest

from tests.e2e.harness import KEY, THREAD_A, THREAD_B, Api, Workspace

pytestmark = pytest.mark.e2e

NO_CHANGES = "No changes."

TWO_RUNS = f"""\
    apiVersion: reconciler/v1
    kind: Runs
    defaults:
      assistant_id: asst_demo
      metadata: {{team: analytics}}
    runs:
      - name: weekly-report
        thread_id: {THREAD_A}
        instructions: Summarise last week's KPIs.
        metadata: {{cadence: weekly}}
      - name: backlog-triage
        thread_id: {THREAD_B}
        tools:
          - type: function
            function: {{name: lookup_ticket, parameters: {{type: object}}}}
        tool_outputs:
          lookup_ticket: '{{"status": "open"}}'
"""

WAITING_RUN = f"""\
    apiVersion: reconciler/v1
    kind: Runs
    runs:
      - name: stuck
        thread_id: {THREAD_B}
        assistant_id: asst_demo
        instructions: {{instructions}}
        tools:
          - type: function
            function: {{{{name: never_answered}}}}
        state: {{state}}
"""


def expected(
    create: int = 0, modify: int = 0, replace: int = 0, cancel: int = 0, answer: int = 0
) -> str:
    """The summary line PRODUCT.md §5 specifies, for these counts."""
    return (
        f"Plan: {create} to create, {modify} to modify, {replace} to replace, "
        f"{cancel} to cancel, {answer} to answer."
    )


def summary(text: str) -> str:
    lines = [line for line in text.splitlines() if line.startswith(("Plan:", NO_CHANGES))]
    assert lines, text
    return lines[-1]


def waiting_run(ws: Workspace, *, instructions: str = "Wait.", state: str = "active") -> None:
    ws.write("runs.yaml", WAITING_RUN.format(instructions=instructions, state=state))


def test_plan_apply_plan_shows_no_changes(env: object, ws: Workspace, api: Api) -> None:
    ws.write("runs.yaml", TWO_RUNS)
    first = ws.cli("plan", ws.path)
    assert first.code == 0, first.err
    assert summary(first.out) == expected(create=2)
    assert "weekly-report" in first.out and "backlog-triage" in first.out

    applied = ws.cli("apply", ws.path, "--auto-approve", "--wait")
    assert applied.code == 0, applied.err
    assert "Apply complete: 2 applied, 0 failed, 0 not attempted." in applied.out

    report = api.managed(THREAD_A, "weekly-report")
    assert len(report) == 1
    assert report[0]["metadata"]["team"] == "analytics"
    assert report[0]["metadata"]["cadence"] == "weekly"
    assert report[0]["metadata"]["reconciler.project"] == "e2e"
    triage = api.managed(THREAD_B, "backlog-triage")
    assert [r["status"] for r in triage] == ["completed"]  # --wait answered the tool call

    again = ws.cli("plan", ws.path, "--detailed-exitcode")
    assert again.code == 0, again.out + again.err
    assert NO_CHANGES in again.out


def test_submit_tool_outputs_when_a_run_requires_action(env: object, ws: Workspace,
                                                        api: Api) -> None:
    ws.write("runs.yaml", TWO_RUNS)
    assert ws.cli("apply", ws.path, "--auto-approve").code == 0
    assert api.managed(THREAD_B, "backlog-triage")[0]["status"] == "requires_action"

    planned = ws.cli("plan", ws.path)
    assert summary(planned.out).endswith("1 to answer.")
    applied = ws.cli("apply", ws.path, "--auto-approve")
    assert applied.code == 0, applied.err
    assert api.managed(THREAD_B, "backlog-triage")[0]["status"] == "completed"
    assert NO_CHANGES in ws.cli("plan", ws.path).out


def test_metadata_change_is_a_modify_in_place(env: object, ws: Workspace, api: Api) -> None:
    ws.write("runs.yaml", TWO_RUNS)
    assert ws.cli("apply", ws.path, "--auto-approve", "--wait").code == 0
    before = api.managed(THREAD_A, "weekly-report")[0]

    ws.write("runs.yaml", TWO_RUNS.replace("cadence: weekly", "cadence: daily"))
    planned = ws.cli("plan", ws.path)
    assert summary(planned.out) == expected(modify=1)
    assert "cadence" in planned.out and "daily" in planned.out

    assert ws.cli("apply", ws.path, "--auto-approve").code == 0
    after = api.managed(THREAD_A, "weekly-report")
    assert [r["id"] for r in after] == [before["id"]]
    assert after[0]["metadata"]["cadence"] == "daily"
    assert NO_CHANGES in ws.cli("plan", ws.path).out


def test_immutable_change_replaces_and_names_the_field(env: object, ws: Workspace,
                                                       api: Api) -> None:
    waiting_run(ws)
    assert ws.cli("apply", ws.path, "--auto-approve").code == 0
    old = api.managed(THREAD_B, "stuck")[0]
    assert old["status"] == "requires_action"

    waiting_run(ws, instructions="Wait differently.")
    planned = ws.cli("plan", ws.path)
    assert summary(planned.out) == expected(replace=1)
    assert "instructions" in planned.out

    applied = ws.cli("apply", ws.path, "--auto-approve")
    assert applied.code == 0, applied.out + applied.err
    runs = api.managed(THREAD_B, "stuck")
    assert len(runs) == 2
    assert runs[0]["instructions"] == "Wait differently."
    assert runs[1]["id"] == old["id"] and runs[1]["status"] == "cancelled"
    assert NO_CHANGES in ws.cli("plan", ws.path).out


def test_server_filled_fields_never_show_as_changes(env: object, ws: Workspace,
                                                    api: Api) -> None:
    ws.write("runs.yaml", f"""\
        apiVersion: reconciler/v1
        kind: Runs
        runs:
          - name: bare
            thread_id: {THREAD_A}
            assistant_id: asst_demo
    """)
    assert ws.cli("apply", ws.path, "--auto-approve").code == 0
    run = api.managed(THREAD_A, "bare")[0]
    assert run["model"] and run["instructions"]  # copied from the assistant by the server
    assert NO_CHANGES in ws.cli("plan", ws.path).out


def test_state_cancelled_cancels_an_active_run(env: object, ws: Workspace, api: Api) -> None:
    waiting_run(ws)
    assert ws.cli("apply", ws.path, "--auto-approve").code == 0
    waiting_run(ws, state="cancelled")
    planned = ws.cli("plan", ws.path)
    assert summary(planned.out) == expected(cancel=1)
    assert ws.cli("apply", ws.path, "--auto-approve").code == 0
    assert [r["status"] for r in api.managed(THREAD_B, "stuck")] == ["cancelled"]
    assert NO_CHANGES in ws.cli("plan", ws.path).out


def test_revision_bump_asks_for_a_fresh_run(env: object, ws: Workspace, api: Api) -> None:
    ws.write("runs.yaml", TWO_RUNS)
    assert ws.cli("apply", ws.path, "--auto-approve", "--wait").code == 0
    ws.write("runs.yaml", TWO_RUNS.replace(
        "instructions: Summarise last week's KPIs.",
        "instructions: Summarise last week's KPIs.\n        revision: 1",
    ))
    planned = ws.cli("plan", ws.path)
    assert "1 to replace" in summary(planned.out)
    assert "revision" in planned.out
    assert ws.cli("apply", ws.path, "--auto-approve").code == 0
    assert len(api.managed(THREAD_A, "weekly-report")) == 2


def test_drift_is_shown_apart_and_reverted(env: object, ws: Workspace, api: Api) -> None:
    ws.write("runs.yaml", TWO_RUNS)
    assert ws.cli("apply", ws.path, "--auto-approve", "--wait").code == 0
    run = api.managed(THREAD_A, "weekly-report")[0]
    api.modify(THREAD_A, run["id"], {**run["metadata"], "cadence": "hourly"})

    planned = ws.cli("plan", ws.path)
    assert "outside reconciler" in planned.out
    assert "1 to modify" in summary(planned.out)
    assert ws.cli("apply", ws.path, "--auto-approve").code == 0
    assert api.managed(THREAD_A, "weekly-report")[0]["metadata"]["cadence"] == "weekly"
    assert NO_CHANGES in ws.cli("plan", ws.path).out


def test_cancelled_outside_is_drift_not_a_change(env: object, ws: Workspace, api: Api) -> None:
    waiting_run(ws)
    assert ws.cli("apply", ws.path, "--auto-approve").code == 0
    api.cancel(THREAD_B, api.managed(THREAD_B, "stuck")[0]["id"])
    planned = ws.cli("plan", ws.path, "--detailed-exitcode")
    assert planned.code == 0, planned.out
    assert "outside reconciler" in planned.out
    assert "revision" in planned.out


def test_prune_cancels_undeclared_managed_runs_only(env: object, ws: Workspace,
                                                    api: Api) -> None:
    waiting_run(ws)
    assert ws.cli("apply", ws.path, "--auto-approve").code == 0
    foreign = api.create(THREAD_A, {"assistant_id": "asst_demo",
                                    "tools": [{"type": "function",
                                               "function": {"name": "other"}}]})
    ws.write("runs.yaml", f"""\
        apiVersion: reconciler/v1
        kind: Runs
        runs:
          - name: other
            thread_id: {THREAD_B}
            assistant_id: asst_demo
            state: cancelled
          - name: reader
            thread_id: {THREAD_A}
            assistant_id: asst_demo
            state: cancelled
    """)
    without = ws.cli("plan", ws.path, "--detailed-exitcode")
    assert without.code == 0  # shown, but nothing to do without --prune
    assert "stuck" in without.out and "--prune" in without.out

    with_prune = ws.cli("plan", ws.path, "--prune")
    assert "1 to cancel" in summary(with_prune.out)
    assert ws.cli("apply", ws.path, "--prune", "--auto-approve").code == 0
    assert api.managed(THREAD_B, "stuck")[0]["status"] == "cancelled"
    untouched = [r for r in api.runs(THREAD_A) if r["id"] == foreign["id"]]
    assert untouched[0]["status"] == "requires_action"


def test_target_limits_the_plan(env: object, ws: Workspace, api: Api) -> None:
    ws.write("runs.yaml", TWO_RUNS)
    planned = ws.cli("plan", ws.path, "--target", "weekly-report")
    assert summary(planned.out).startswith("Plan: 1 to create")
    assert ws.cli("apply", ws.path, "--target", f"{THREAD_A}/weekly-report",
                  "--auto-approve").code == 0
    assert len(api.managed(THREAD_A, "weekly-report")) == 1
    assert api.managed(THREAD_B, "backlog-triage") == []
    unknown = ws.cli("plan", ws.path, "--target", "nope")
    assert unknown.code == 1 and "nope" in unknown.err


def test_saved_plan_applies_exactly_and_stale_plan_is_refused(env: object, ws: Workspace,
                                                              api: Api) -> None:
    ws.write("runs.yaml", TWO_RUNS)
    plan_file = ws.root / "plan.json"
    saved = ws.cli("plan", ws.path, "--out", str(plan_file))
    assert saved.code == 0 and plan_file.exists()
    shown = ws.cli("show", str(plan_file))
    assert summary(shown.out) == summary(saved.out)
    as_json = ws.cli("show", str(plan_file), "--format", "json")
    assert json.loads(as_json.out) == json.loads(plan_file.read_text())

    applied = ws.cli("apply", str(plan_file))
    assert applied.code == 0, applied.err
    assert len(api.managed(THREAD_A, "weekly-report")) == 1

    # the plan was computed before those runs existed: applying it again must be refused
    stale = ws.cli("apply", str(plan_file))
    assert stale.code == 1
    assert "stale" in stale.err
    assert len(api.managed(THREAD_A, "weekly-report")) == 1


def test_stale_after_a_change_outside(env: object, ws: Workspace, api: Api) -> None:
    ws.write("runs.yaml", TWO_RUNS)
    assert ws.cli("apply", ws.path, "--auto-approve", "--wait").code == 0
    ws.write("runs.yaml", TWO_RUNS.replace("cadence: weekly", "cadence: daily"))
    plan_file = ws.root / "plan.json"
    assert ws.cli("plan", ws.path, "--out", str(plan_file)).code == 0
    run = api.managed(THREAD_A, "weekly-report")[0]
    api.modify(THREAD_A, run["id"], {**run["metadata"], "owner": "someone"})
    stale = ws.cli("apply", str(plan_file))
    assert stale.code == 1 and "stale" in stale.err
    assert "owner" in api.managed(THREAD_A, "weekly-report")[0]["metadata"]


def test_one_active_run_per_thread_is_ordered(env: object, ws: Workspace, api: Api) -> None:
    ws.write("runs.yaml", f"""\
        apiVersion: reconciler/v1
        kind: Runs
        defaults:
          thread_id: {THREAD_B}
          assistant_id: asst_demo
        runs:
          - name: first
            tools:
              - type: function
                function: {{name: lookup}}
            tool_outputs: {{lookup: found}}
          - name: second
            instructions: After the first.
    """)
    planned = ws.cli("plan", ws.path)
    assert "Plan: 2 to create" in summary(planned.out)
    assert "wait" in planned.out.lower()
    applied = ws.cli("apply", ws.path, "--auto-approve", "--wait")
    assert applied.code == 0, applied.out + applied.err
    first, second = api.managed(THREAD_B, "first"), api.managed(THREAD_B, "second")
    assert first[0]["status"] == "completed" and second[0]["status"] == "completed"
    assert first[0]["created_at"] <= second[0]["created_at"]


def test_apply_waits_for_a_busy_thread_and_times_out(env: object, ws: Workspace,
                                                     api: Api) -> None:
    api.create(THREAD_A, {"assistant_id": "asst_demo",
                          "tools": [{"type": "function", "function": {"name": "x"}}]})
    ws.write("runs.yaml", TWO_RUNS)
    applied = ws.cli("apply", ws.path, "--auto-approve", "--timeout", "0.5")
    assert applied.code == 1
    assert "timed out" in applied.out + applied.err
    assert "1 applied, 1 failed" in applied.out  # the other thread went ahead
    assert api.managed(THREAD_A, "weekly-report") == []


def test_api_key_never_reaches_output_or_plan_file(env: object, ws: Workspace) -> None:
    ws.write("runs.yaml", TWO_RUNS)
    plan_file = ws.root / "plan.json"
    outputs = [
        ws.cli("plan", ws.path, "--out", str(plan_file)),
        ws.cli("--debug", "apply", ws.path, "--auto-approve", "--wait"),
        ws.cli("--debug", "apply", str(plan_file)),  # stale: an error path
        ws.cli("plan", ws.path, "--format", "json"),
        ws.cli("plan", ws.path, "--format", "markdown"),
    ]
    for result in outputs:
        assert KEY not in result.out and KEY not in result.err
    assert KEY not in plan_file.read_text()


def test_wrong_key_is_a_clear_error_without_the_key(env: object, ws: Workspace,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    wrong = "sk-wrong-key-abcdefghijklmnop0123"
    monkeypatch.setenv("OPENAI_API_KEY", wrong)
    ws.write("runs.yaml", TWO_RUNS)
    for args in (("plan", ws.path), ("--debug", "plan", ws.path)):
        result = ws.cli(*args)
        assert result.code == 1
        assert "401" in result.err and "request id req_" in result.err
        assert wrong not in result.err + result.out and KEY not in result.err
