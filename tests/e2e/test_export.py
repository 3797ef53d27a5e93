"""Export then adopt runs made outside reconciler: the next plan shows no changes."""

from __future__ import annotations

from typing import Any

import pytest

from reconciler.export import Export, export_runs
from reconciler.manifest import load_manifests
from tests.e2e.harness import THREAD_A, THREAD_B, Api, Workspace
from tests.fixtures import sent_metadata

pytestmark = pytest.mark.e2e

PROJECT = "e2e"  # the workspace's reconciler.toml says so
INSTRUCTIONS = "Summarise last week's KPIs.\n\nFormat:\n  - one line per KPI\n  - no prose\n"


def adopt(api: Api, result: Export) -> None:
    """What `reconciler export --adopt` does after writing the file."""
    for adoption in result.adoptions:
        assert adoption.run_id is not None
        api.modify(adoption.thread_id, adoption.run_id, dict(sent_metadata(adoption)))


def declared(result: Export) -> list[tuple[Any, ...]]:
    runs = load_manifests([("exported.yaml", result.text)]).runs
    return [(r.thread_id, r.name, dict(r.spec), dict(r.metadata), r.state) for r in runs]


def export(api: Api, *threads: str, latest_only: bool = True) -> Export:
    return export_runs(
        {thread: api.runs(thread) for thread in threads},
        project=PROJECT, latest_only=latest_only, exported_at="2026-11-26T18:00:00Z",
    )


def test_exported_and_adopted_runs_plan_as_no_changes(env: object, ws: Workspace,
                                                      api: Api) -> None:
    foreign = api.create(THREAD_A, {
        "assistant_id": "asst_demo",
        "metadata": {"reconciler.project": "billing", "reconciler.name": "invoice"},
    })
    report = api.create(THREAD_A, {
        "assistant_id": "asst_demo",
        "instructions": INSTRUCTIONS,
        "additional_instructions": "Mention the week number.",
        "max_completion_tokens": 1024,
        "temperature": 0.2,
        "metadata": {"team": "analytics", "quarter": "2025"},
    })
    triage = api.create(THREAD_B, {
        "assistant_id": "asst_demo",
        "tools": [{"type": "function", "function": {"name": "lookup_ticket",
                                                    "parameters": {"type": "object"}}}],
        "tool_choice": "required",
    })
    api.cancel(THREAD_B, triage["id"])

    result = export(api, THREAD_A, THREAD_B)
    ws.write("exported.yaml", result.text)

    assert result.runs == 2
    assert {(a.thread_id, a.run_id) for a in result.adoptions} == {
        (THREAD_A, report["id"]), (THREAD_B, triage["id"]),
    }
    assert [(s.run_id, "billing" in s.reason) for s in result.skipped] == [(foreign["id"], True)]
    assert "instructions: |" in result.text and "state: cancelled" in result.text
    assert "additional_instructions" in result.text  # said to be lost, in a comment

    before = ws.cli("plan", ws.path, "--detailed-exitcode")
    assert before.code == 0, before.out + before.err  # not adopted yet: no twin without asking
    assert before.out.count("not marked as managed") == 2
    recreate = ws.cli("plan", ws.path, "--detailed-exitcode", "--recreate-unmarked")
    assert recreate.code == 2, recreate.out + recreate.err
    assert "Plan: 1 to create" in recreate.out  # the cancelled one is declared cancelled

    adopt(api, result)
    planned = ws.cli("plan", ws.path, "--detailed-exitcode")
    assert planned.code == 0, planned.out + planned.err
    assert "No changes." in planned.out

    adopted = {r["id"]: r for r in api.runs(THREAD_A)}[report["id"]]
    assert adopted["metadata"]["team"] == "analytics"
    assert adopted["metadata"]["reconciler.project"] == PROJECT
    untouched = {r["id"]: r for r in api.runs(THREAD_A)}[foreign["id"]]
    assert untouched["metadata"] == foreign["metadata"]

    again = export(api, THREAD_A, THREAD_B)
    assert again.adoptions == ()  # now managed, and recorded as exported
    assert declared(again) == declared(result)


def test_every_run_of_a_thread_can_be_exported(env: object, ws: Workspace, api: Api) -> None:
    created: list[dict[str, Any]] = [
        api.create(THREAD_A, {"assistant_id": "asst_demo", "metadata": {"n": str(n)}})
        for n in range(3)
    ]
    result = export(api, THREAD_A, latest_only=False)
    adopted_ids = {a.run_id for a in result.adoptions}
    assert {run["id"] for run in created} <= adopted_ids
    assert len({a.name for a in result.adoptions}) == len(result.adoptions)

    ws.write("exported.yaml", result.text)
    adopt(api, result)
    planned = ws.cli("plan", ws.path, "--detailed-exitcode")
    assert planned.code == 0, planned.out + planned.err
