"""Export: API run objects → manifest text and adoptions, checked by loading the text back."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from reconciler import identity
from reconciler.export import Export, ExportError, export_runs, run_name_for
from reconciler.manifest import load_manifests
from reconciler.model import DesiredRun, DesiredState, LiveState
from reconciler.planning import PlanOptions, plan
from reconciler.runs import thread_state
from tests.fixtures import sent_metadata

PROJECT = "analytics"
THREAD = "thread_abc"


def api_run(run_id: str, created_at: int, **overrides: Any) -> dict[str, Any]:
    """A run object as the API echoes it, server-filled defaults included."""
    run: dict[str, Any] = {
        "id": run_id,
        "object": "thread.run",
        "created_at": created_at,
        "thread_id": THREAD,
        "assistant_id": "asst_demo",
        "status": "completed",
        "model": "gpt-4o",
        "instructions": "Be brief.",
        "tools": [],
        "metadata": {},
        "temperature": 1.0,
        "top_p": 1.0,
        "max_prompt_tokens": None,
        "max_completion_tokens": None,
        "truncation_strategy": {"type": "auto", "last_messages": None},
        "tool_choice": "auto",
        "parallel_tool_calls": True,
        "response_format": "auto",
        "required_action": None,
    }
    run.update(overrides)
    return run


def managed_metadata(
    name: str, spec: Mapping[str, Any], user: Mapping[str, str] | None = None,
    *, project: str = PROJECT, revision: int = 0,
) -> dict[str, str]:
    """Metadata as `apply` leaves it on a run it created from ``spec``."""
    user = dict(user or {})
    return {**user, **identity.reserved_metadata(
        project=project, name=name, spec=spec, revision=revision, user_metadata=user,
    )}


def loaded(result: Export) -> dict[str, DesiredRun]:
    manifests = load_manifests([("export.yaml", result.text)])
    assert manifests.problems == ()
    return {run.name: run for run in manifests.runs}


def adopted_plan_changes(
    result: Export, runs: Sequence[Mapping[str, Any]], thread_id: str = THREAD
) -> list[str]:
    """Apply the adoptions to the run objects, then plan the export against them."""
    updates = {a.run_id: sent_metadata(a) for a in result.adoptions}
    live_runs = [
        {**run, "metadata": dict(updates.get(run["id"], run["metadata"]))} for run in runs
    ]
    live = LiveState(threads={thread_id: thread_state(thread_id, live_runs)})
    desired = load_manifests([("export.yaml", result.text)]).runs
    computed = plan(desired, live, PlanOptions(project=PROJECT))
    return [f"{c.name}:{c.action.value}" for c in computed.actionable]


def test_an_unmanaged_run_is_declared_with_every_echoed_field_and_adopted() -> None:
    run = api_run(
        "run_00000001c4LOWEZJwricH1NS", 100,
        metadata={"team": "analytics"},
        max_completion_tokens=2048,
        truncation_strategy={"type": "last_messages", "last_messages": 10},
        tools=[{"type": "function", "function": {"name": "lookup", "parameters": {}}}],
        tool_choice={"type": "function", "function": {"name": "lookup"}},
        response_format={"type": "json_object"},
    )
    result = export_runs({THREAD: [run]}, project=PROJECT)

    runs = loaded(result)
    assert list(runs) == ["run-wezjwrich1ns"]
    desired = runs["run-wezjwrich1ns"]
    assert desired.thread_id == THREAD
    assert desired.state is DesiredState.ACTIVE
    assert desired.metadata == {"team": "analytics"}
    assert dict(desired.spec) == {
        "assistant_id": "asst_demo",
        "model": "gpt-4o",
        "instructions": "Be brief.",
        "tools": [{"type": "function", "function": {"name": "lookup", "parameters": {}}}],
        "temperature": 1.0,
        "top_p": 1.0,
        "max_completion_tokens": 2048,
        "truncation_strategy": {"type": "last_messages", "last_messages": 10},
        "tool_choice": {"type": "function", "function": {"name": "lookup"}},
        "parallel_tool_calls": True,
        "response_format": {"type": "json_object"},
    }
    assert result.runs == 1 and result.skipped == ()

    (adoption,) = result.adoptions
    assert (adoption.thread_id, adoption.run_id, adoption.name) == (
        THREAD, run["id"], "run-wezjwrich1ns"
    )
    meta = sent_metadata(adoption)
    assert meta["team"] == "analytics"
    assert meta[identity.KEY_PROJECT] == PROJECT
    assert meta[identity.KEY_NAME] == "run-wezjwrich1ns"
    assert identity.decode_spec(meta[identity.KEY_SPEC]).digest == identity.spec_hash(
        desired.spec, 0
    )
    assert meta[identity.KEY_META] == identity.metadata_hash({"team": "analytics"})
    assert adopted_plan_changes(result, [run]) == []


def test_the_text_is_a_readable_manifest_with_header_and_defaults() -> None:
    result = export_runs(
        {THREAD: [api_run("run_1", 1)]}, project=PROJECT, exported_at="2026-11-26T18:00:00Z",
    )
    lines = result.text.splitlines()
    assert lines[0] == "# yaml-language-server: $schema=../schemas/manifest.schema.json"
    assert "2026-11-26T18:00:00Z" in result.text and repr(PROJECT) in result.text
    assert "apiVersion: reconciler/v1" in lines and "kind: Runs" in lines
    assert "defaults:" in lines and f"  thread_id: {THREAD}" in lines
    assert "  assistant_id: asst_demo" in lines
    assert "  - name: run-1" in lines
    assert "{" not in result.text  # block style throughout
    assert "additional_messages" in result.text  # the create-only fields are named
    custom = export_runs({THREAD: [api_run("run_1", 1)]}, project=PROJECT, schema_ref="s.json")
    assert custom.text.startswith("# yaml-language-server: $schema=s.json\n")


def test_multi_line_instructions_become_a_literal_block_and_load_unchanged() -> None:
    text = "You are a careful analyst.\n\nRules:\n  - cite sources\n  - no guessing\n"
    result = export_runs({THREAD: [api_run("run_1", 1, instructions=text)]}, project=PROJECT)
    assert "    instructions: |\n      You are a careful analyst.\n\n      Rules:\n" in result.text
    assert loaded(result)["run-1"].spec["instructions"] == text


@pytest.mark.parametrize("value", ["09", "1e5", "yes", "null", "true", "0o17", " padded", "~"])
def test_strings_a_yaml_1_2_loader_would_read_otherwise_stay_strings(value: str) -> None:
    run = api_run("run_1", 1, instructions=value, metadata={"quarter": value})
    desired = loaded(export_runs({THREAD: [run]}, project=PROJECT))["run-1"]
    assert desired.spec["instructions"] == value
    assert desired.metadata == {"quarter": value}


def test_runs_of_another_project_are_skipped_with_the_reason() -> None:
    ours_spec = {"assistant_id": "asst_demo"}
    theirs = api_run("run_theirs", 2, metadata=managed_metadata("report", ours_spec,
                                                                 project="billing"))
    ours = api_run("run_ours", 1, metadata=managed_metadata("report", ours_spec))
    result = export_runs({THREAD: [theirs, ours]}, project=PROJECT)

    assert list(loaded(result)) == ["report"]
    assert result.skipped[0].run_id == "run_theirs"
    assert "billing" in result.skipped[0].reason
    assert all(a.run_id != "run_theirs" for a in result.adoptions)
    assert "# skipped run_theirs: managed by another project ('billing')" in result.text


def test_a_managed_run_keeps_its_name_and_spec_and_needs_no_adoption() -> None:
    spec = {"assistant_id": "asst_demo", "instructions": "Be brief.", "max_prompt_tokens": 4096}
    user = {"cadence": "weekly"}
    run = api_run("run_1", 1, max_prompt_tokens=4096,
                  metadata=managed_metadata("weekly-report", spec, user, revision=2))
    result = export_runs({THREAD: [run]}, project=PROJECT)

    desired = loaded(result)["weekly-report"]
    # Server-filled fields (model, temperature, …) were not in the manifest: not written.
    assert dict(desired.spec) == spec
    assert desired.revision == 2 and desired.metadata == user
    assert result.adoptions == ()
    assert adopted_plan_changes(result, [run]) == []


def test_a_managed_run_created_with_create_only_fields_says_so_and_is_re_recorded() -> None:
    spec = {"assistant_id": "asst_demo",
            "additional_messages": [{"role": "user", "content": "hi"}]}
    run = api_run("run_1", 1, metadata=managed_metadata("greet", spec))
    result = export_runs({THREAD: [run]}, project=PROJECT)

    assert "created with additional_messages" in result.text
    desired = loaded(result)["greet"]
    assert dict(desired.spec) == {"assistant_id": "asst_demo"}
    (adoption,) = result.adoptions
    assert identity.decode_spec(sent_metadata(adoption)[identity.KEY_SPEC]).digest == (
        identity.spec_hash(desired.spec, 0)
    )
    assert adopted_plan_changes(result, [run]) == []


@pytest.mark.parametrize("status", ["cancelled", "cancelling"])
def test_a_cancelled_run_is_declared_cancelled(status: str) -> None:
    result = export_runs({THREAD: [api_run("run_1", 1, status=status)]}, project=PROJECT)
    assert loaded(result)["run-1"].state is DesiredState.CANCELLED
    assert "    state: cancelled\n" in result.text
    assert adopted_plan_changes(result, [api_run("run_1", 1, status=status)]) == []


def test_latest_only_exports_the_newest_unmanaged_run_of_each_thread() -> None:
    runs = [api_run("run_old", 1), api_run("run_new", 3), api_run("run_mid", 2)]
    latest = export_runs({THREAD: runs}, project=PROJECT)
    assert list(loaded(latest)) == ["run-new"]
    assert [a.run_id for a in latest.adoptions] == ["run_new"]
    assert latest.skipped == ()

    every = export_runs({THREAD: runs}, project=PROJECT, latest_only=False)
    assert list(loaded(every)) == ["run-old", "run-mid", "run-new"]  # oldest first
    assert every.runs == 3 and len(every.adoptions) == 3
    assert adopted_plan_changes(every, runs) == []


def test_older_runs_of_a_managed_name_are_skipped_even_when_exporting_every_run() -> None:
    spec = {"assistant_id": "asst_demo"}
    old = api_run("run_old", 1, status="cancelled", metadata=managed_metadata("daily", spec))
    new = api_run("run_new", 2, metadata=managed_metadata("daily", spec))
    assert list(loaded(export_runs({THREAD: [old, new]}, project=PROJECT))) == ["daily"]

    result = export_runs({THREAD: [old, new]}, project=PROJECT, latest_only=False)
    assert list(loaded(result)) == ["daily"]
    assert [s.run_id for s in result.skipped] == ["run_old"]
    assert "run_new" in result.skipped[0].reason


def test_names_from_run_ids_are_valid_and_unique_per_thread() -> None:
    assert run_name_for("run_ABC_def") == "run-abc-def"
    runs = [api_run("run_a_xyz", 1), api_run("run_b_XYZ", 2), api_run("run_a_xyz_", 3)]
    spec = {"assistant_id": "asst_demo"}
    runs.append(api_run("run_c", 0, metadata=managed_metadata("run-b-xyz", spec)))
    result = export_runs({THREAD: runs}, project=PROJECT, latest_only=False)
    names = list(loaded(result))
    assert sorted(names) == ["run-a-xyz", "run-a-xyz-2", "run-b-xyz",
                             "run-b-xyz-2"]


def test_a_value_the_schema_refuses_is_left_out_with_a_comment() -> None:
    run = api_run("run_1", 1, max_prompt_tokens=100, temperature=2.5)
    result = export_runs({THREAD: [run]}, project=PROJECT)
    spec = loaded(result)["run-1"].spec
    assert "max_prompt_tokens" not in spec and "temperature" not in spec
    assert "# max_prompt_tokens not exported: must be at least 256, got 100" in result.text
    assert "# temperature not exported: must be at most 2, got 2.5" in result.text


def test_runs_that_cannot_be_declared_or_adopted_are_skipped() -> None:
    crowded = api_run("run_crowded", 2, metadata={f"k{i}": "v" for i in range(13)})
    orphan = api_run("run_orphan", 1, assistant_id=None)
    result = export_runs({THREAD: [crowded, orphan]}, project=PROJECT, latest_only=False)
    assert loaded(result) == {}
    reasons = {s.run_id: s.reason for s in result.skipped}
    assert "at most 12 pairs" in reasons["run_crowded"]
    assert "assistant_id" in reasons["run_orphan"]
    assert "runs: []" in result.text


def test_one_document_per_thread_and_assistant_id_per_run_when_not_shared() -> None:
    result = export_runs(
        {
            "thread_a": [api_run("run_1", 1, thread_id="thread_a")],
            "thread_b": [api_run("run_2", 1, thread_id="thread_b", assistant_id="asst_x"),
                         api_run("run_3", 2, thread_id="thread_b", assistant_id="asst_y")],
        },
        project=PROJECT, latest_only=False,
    )
    assert result.text.count("\n---\n") == 1
    manifests = load_manifests([("export.yaml", result.text)])
    found = {(r.thread_id, r.name): r.spec["assistant_id"] for r in manifests.runs}
    assert found == {
        ("thread_a", "run-1"): "asst_demo",
        ("thread_b", "run-2"): "asst_x",
        ("thread_b", "run-3"): "asst_y",
    }
    assert "    assistant_id: asst_x\n" in result.text


def test_a_waiting_run_names_the_functions_it_waits_on() -> None:
    run = api_run(
        "run_1", 1, status="requires_action",
        tools=[{"type": "function", "function": {"name": "lookup_ticket"}}],
        required_action={"type": "submit_tool_outputs", "submit_tool_outputs": {"tool_calls": [
            {"id": "call_1", "type": "function",
             "function": {"name": "lookup_ticket", "arguments": "{}"}},
        ]}},
    )
    result = export_runs({THREAD: [run]}, project=PROJECT)
    assert "waits for answers to lookup_ticket" in result.text
    assert adopted_plan_changes(result, [run]) == []


def test_an_export_that_would_not_load_is_an_error() -> None:
    run = api_run("run_1", 1, tools=[{"type": "code_interpreter"}],
                  tool_choice={"type": "function", "function": {"name": "missing"}})
    with pytest.raises(ExportError, match="does not load") as caught:
        export_runs({THREAD: [run]}, project=PROJECT)
    assert any("missing" in p for p in caught.value.problems)
