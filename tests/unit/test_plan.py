"""The planner with plain values: every row of PRODUCT.md §5, drift, ordering, fingerprints."""

from __future__ import annotations

import pytest

from reconciler import identity
from reconciler.changes import (
    Action,
    Change,
    Create,
    FieldChange,
    Modify,
    NoOp,
    Reason,
    Replace,
    SubmitToolOutputs,
    ToolOutput,
)
from reconciler.model import (
    DesiredState,
    LiveRun,
    SourceLocation,
    ThreadState,
    ToolCall,
)
from reconciler.planning import PlanOptions, fingerprint, plan
from tests.fixtures import (
    PROJECT,
    SPEC,
    desired,
    full_metadata,
    make,
    managed,
    only,
    state,
    unmanaged,
)

# --- no current run ---------------------------------------------------------------------


def test_create_when_no_managed_run_has_the_name() -> None:
    run = desired(
        metadata={"team": "a"}, tool_outputs={"f": "ok"},
        location=SourceLocation("runs.yaml", 4, 5),
    )
    change = only(make([run], state(threads=["thread_a"])))
    assert change.action is Action.CREATE
    assert change.reasons == (Reason.NEW,)
    assert change.address == "thread_a/report"
    assert change.payload == Create({**SPEC, "metadata": full_metadata(run)}, {"f": "ok"})
    assert change.source == "runs.yaml:4:5"
    assert change.wait_for == ()


def test_cancelled_state_with_no_run_is_a_noop() -> None:
    run = desired(state=DesiredState.CANCELLED)
    change = only(make([run], state(threads=["thread_a"])))
    assert change.action is Action.NOOP
    assert not make([run], state()).has_changes


def test_thread_missing_from_live_state_still_plans_a_create() -> None:
    assert only(make([desired()], state())).action is Action.CREATE


# --- current run, spec differs ----------------------------------------------------------


def test_replace_names_the_changed_field_with_echoed_before_value() -> None:
    run = desired(spec={**SPEC, "instructions": "New text."})
    live = managed(run, "run_old", "in_progress", spec=SPEC, fields=SPEC)
    change = only(make([run], state(live)))
    assert isinstance(change.payload, Replace)
    assert change.reasons == (Reason.IMMUTABLE_FIELD,)
    assert change.payload.forces_replace == ("instructions",)
    assert change.run_id == "run_old"
    assert change.run_status == "in_progress"
    assert change.field_changes == (
        FieldChange("instructions", "Summarise the KPIs.", "New text."),
    )
    # one generation after the run it replaces: the new run is current on any host
    assert change.payload.create_request == {
        **run.spec, "metadata": full_metadata(run, generation=2)
    }
    assert change.wait_for == ("run_old",)  # cancel is asynchronous


def test_replace_when_only_revision_changes() -> None:
    run = desired(revision=2)
    change = only(make([run], state(managed(run, "run_old", revision=1))))
    assert isinstance(change.payload, Replace)
    assert change.reasons == (Reason.REVISION,)
    assert change.payload.forces_replace == ("revision",)
    assert change.field_changes == (FieldChange("revision", 1, 2),)


def test_create_only_field_change_has_unknown_before_value() -> None:
    old = {**SPEC, "additional_messages": [{"role": "user", "content": "old"}]}
    new = {**SPEC, "additional_messages": [{"role": "user", "content": "new"}]}
    run = desired(spec=new)
    change = only(make([run], state(managed(run, "run_old", spec=old, fields=SPEC))))
    assert isinstance(change.payload, Replace)
    assert change.payload.forces_replace == ("additional_messages",)
    (field,) = change.field_changes
    assert field.known_before is False
    assert field.after == new["additional_messages"]


def test_replace_of_a_field_added_to_the_manifest_shows_the_server_value_before() -> None:
    run = desired(spec={**SPEC, "model": "gpt-4.1"})
    live = managed(run, "run_old", spec=SPEC, fields={**SPEC, "model": "gpt-4o"})
    change = only(make([run], state(live)))
    assert change.field_changes == (FieldChange("model", "gpt-4o", "gpt-4.1"),)


def test_replace_also_lists_metadata_differences() -> None:
    run = desired(spec={**SPEC, "temperature": 0.5}, metadata={"team": "b"})
    live = managed(run, "run_old", spec=SPEC, recorded_user={"team": "a"})
    change = only(make([run], state(live)))
    assert FieldChange("metadata.team", "a", "b") in change.field_changes
    assert isinstance(change.payload, Replace)
    assert change.payload.forces_replace == ("temperature",)


@pytest.mark.parametrize("status", ["queued", "in_progress", "requires_action"])
def test_cancelled_state_and_changed_spec_cancels_an_active_run(status: str) -> None:
    run = desired(spec={**SPEC, "temperature": 1.5}, state=DesiredState.CANCELLED)
    change = only(make([run], state(managed(run, "run_1", status, spec=SPEC))))
    assert change.action is Action.CANCEL
    assert change.reasons == (Reason.STATE_CANCELLED,)
    assert change.run_id == "run_1"


def test_cancelled_state_and_changed_spec_on_an_ended_run_is_a_noop() -> None:
    run = desired(spec={**SPEC, "temperature": 1.5}, state=DesiredState.CANCELLED)
    change = only(make([run], state(managed(run, "run_1", "completed", spec=SPEC))))
    assert change.action is Action.NOOP
    assert change.reasons == (Reason.FINISHED,)


# --- current run, same spec -------------------------------------------------------------


@pytest.mark.parametrize("status", ["queued", "in_progress", "requires_action"])
def test_cancelled_state_cancels_an_active_run(status: str) -> None:
    run = desired(state=DesiredState.CANCELLED)
    change = only(make([run], state(managed(run, "run_1", status))))
    assert change.action is Action.CANCEL
    assert change.reasons == (Reason.STATE_CANCELLED,)
    assert change.run_status == status


@pytest.mark.parametrize("status", ["cancelling", "cancelled", "completed", "failed", "expired"])
def test_cancelled_state_on_a_cancelling_or_ended_run_is_a_noop(status: str) -> None:
    run = desired(state=DesiredState.CANCELLED)
    result = make([run], state(managed(run, "run_1", status)))
    assert only(result).action is Action.NOOP
    assert not result.has_changes


def test_up_to_date_run_is_a_noop() -> None:
    run = desired(metadata={"team": "a"})
    result = make([run], state(managed(run, "run_1", "in_progress")))
    change = only(result)
    assert change.action is Action.NOOP
    assert change.reasons == (Reason.UP_TO_DATE,)
    assert change.drift == ()
    assert not result.has_changes


def test_a_noop_is_a_whole_change_equal_to_one_built_field_by_field() -> None:
    """The planner builds its many no-ops cheaply; they must be ordinary Change values."""
    run = desired(metadata={"team": "a"}, location=SourceLocation("runs.yaml", 3, 5))
    change = only(make([run], state(managed(run, "run_1", "completed"))))
    assert change == Change(
        "thread_a", "report", (Reason.UP_TO_DATE,), NoOp(), run_id="run_1",
        run_status="completed", source="runs.yaml:3:5",
    )
    assert change.action is Action.NOOP


def test_server_filled_fields_never_show_as_changes() -> None:
    run = desired(spec={"assistant_id": "asst_1"})
    echoed = {
        "assistant_id": "asst_1", "model": "gpt-4o", "instructions": "From the assistant.",
        "tools": [{"type": "code_interpreter"}], "temperature": 1.0, "top_p": 1.0,
    }
    change = only(make([run], state(managed(run, "run_1", fields=echoed))))
    assert change.action is Action.NOOP
    assert change.field_changes == ()


def test_modify_sends_the_full_metadata_and_lists_each_key() -> None:
    run = desired(metadata={"team": "b", "cadence": "weekly"})
    live = managed(run, "run_1", recorded_user={"team": "a", "old": "x"})
    change = only(make([run], state(live)))
    assert isinstance(change.payload, Modify)
    assert change.reasons == (Reason.METADATA_CHANGED,)
    assert change.payload.metadata == full_metadata(run)
    assert set(change.field_changes) == {
        FieldChange("metadata.cadence", None, "weekly"),
        FieldChange("metadata.old", "x", None),
        FieldChange("metadata.team", "a", "b"),
    }
    assert change.drift == ()  # the live metadata is what the last apply recorded


def test_submit_tool_outputs_when_every_pending_call_is_answered() -> None:
    run = desired(tool_outputs={"lookup": '{"status": "open"}', "other": "1"})
    calls = [ToolCall("call_2", "lookup", "{}"), ToolCall("call_1", "lookup", '{"id": 1}')]
    change = only(make([run], state(managed(run, "run_1", "requires_action", calls=calls))))
    assert isinstance(change.payload, SubmitToolOutputs)
    assert change.reasons == (Reason.TOOL_CALLS_PENDING,)
    assert change.payload.tool_outputs == (
        ToolOutput("call_2", '{"status": "open"}'), ToolOutput("call_1", '{"status": "open"}'),
    )


def test_unanswered_tool_call_is_a_noop_naming_the_function() -> None:
    run = desired(tool_outputs={"lookup": "x"})
    calls = [ToolCall("call_1", "lookup", "{}"), ToolCall("call_2", "escalate", "{}")]
    result = make([run], state(managed(run, "run_1", "requires_action", calls=calls)))
    change = only(result)
    assert change.action is Action.NOOP
    assert change.reasons == (Reason.UNANSWERED_TOOL_CALLS,)
    assert change.unanswered == ("escalate",)
    assert not result.has_changes


def test_modify_and_submit_are_two_changes_for_one_address() -> None:
    run = desired(metadata={"team": "b"}, tool_outputs={"lookup": "x"})
    live = managed(
        run, "run_1", "requires_action", recorded_user={"team": "a"},
        calls=[ToolCall("call_1", "lookup", "{}")],
    )
    result = make([run], state(live))
    assert [c.action for c in result.changes] == [Action.MODIFY, Action.SUBMIT_TOOL_OUTPUTS]
    assert {c.address for c in result.changes} == {"thread_a/report"}


def test_newest_managed_run_is_the_current_one() -> None:
    run = desired()
    newest = managed(run, "run_new", created_at=200)
    older = managed(run, "run_old", "in_progress", created_at=100, spec={"assistant_id": "x"})
    result = make([run], state(newest, older))
    assert only(result).action is Action.NOOP
    assert only(result).run_id == "run_new"


# --- ownership and prune ----------------------------------------------------------------


def test_undeclared_active_run_is_shown_without_prune_and_cancelled_with_it() -> None:
    gone = desired(name="gone")
    live = state(managed(gone, "run_gone", "in_progress"))
    kept = only(make([], live))
    assert kept.action is Action.NOOP
    assert kept.reasons == (Reason.NOT_DECLARED,)
    assert kept.run_id == "run_gone"
    pruned = only(make([], live, prune=True))
    assert pruned.action is Action.CANCEL
    assert pruned.reasons == (Reason.PRUNE,)
    assert pruned.address == "thread_a/gone"


@pytest.mark.parametrize("status", ["completed", "cancelled", "cancelling", "expired"])
def test_undeclared_run_that_ended_is_omitted(status: str) -> None:
    live = state(managed(desired(name="gone"), "run_gone", status))
    assert make([], live, prune=True).changes == ()


def test_runs_of_other_projects_and_unmanaged_runs_are_never_touched() -> None:
    other = managed(desired(name="theirs"), "run_theirs", "in_progress", project="billing")
    foreign = unmanaged("run_foreign", "queued")
    result = make([], state(other, foreign), prune=True)
    assert result.changes == ()


def test_another_projects_run_with_the_same_name_is_not_the_current_run() -> None:
    run = desired()
    other = managed(run, "run_theirs", "completed", project="billing")
    change = only(make([run], state(other)))
    assert change.action is Action.CREATE


# --- drift ------------------------------------------------------------------------------


def test_metadata_edited_outside_is_drift_and_modified_back() -> None:
    run = desired(metadata={"team": "a", "cadence": "weekly"})
    live = managed(run, "run_1", user={"team": "hacked", "cadence": "weekly", "extra": "1"})
    change = only(make([run], state(live)))
    assert change.action is Action.MODIFY
    (drift,) = change.drift
    assert drift.kind == "metadata"
    # the recorded hash is the manifest's: only the keys edited outside, with their old values
    assert drift.fields == (
        FieldChange("metadata.extra", None, "1"), FieldChange("metadata.team", "a", "hacked"),
    )


def test_drift_on_one_key_lists_that_key_even_when_the_manifest_changed_too() -> None:
    # applied {team: a, cadence: weekly}; then the manifest says cadence: daily, and someone
    # edited team outside: the recorded metadata is found by its hash, cadence is no drift
    run = desired(metadata={"team": "a", "cadence": "daily"})
    live = managed(run, "run_1", user={"team": "ops", "cadence": "weekly"},
                   recorded_user={"team": "a", "cadence": "weekly"})
    change = only(make([run], state(live)))
    (drift,) = change.drift
    assert drift.fields == (FieldChange("metadata.team", "a", "ops"),)
    assert "not recorded" not in drift.message and "keys are now" not in drift.message
    assert isinstance(change.payload, Modify)
    assert {f.path for f in change.payload.field_changes} == {"metadata.team", "metadata.cadence"}


def test_drift_says_not_recorded_only_when_no_candidate_matches_the_hash() -> None:
    # applied {team: a}; the manifest now says b, the run says z: "a" is nowhere to be seen
    run = desired(metadata={"team": "b"})
    live = managed(run, "run_1", user={"team": "z"}, recorded_user={"team": "a"})
    (drift,) = only(make([run], state(live))).drift
    assert drift.fields == (FieldChange("metadata.team", None, "z", known_before=False),)
    assert drift.message.endswith("was changed outside reconciler; its keys are now:")


def test_metadata_edited_outside_to_match_the_manifest_rerecords_the_hash() -> None:
    run = desired(metadata={"team": "b"})
    live = managed(run, "run_1", user={"team": "b"}, recorded_user={"team": "a"})
    change = only(make([run], state(live)))
    assert isinstance(change.payload, Modify)
    assert change.payload.metadata == full_metadata(run)
    assert [d.kind for d in change.drift] == ["metadata"]


@pytest.mark.parametrize("status", ["cancelling", "cancelled"])
def test_run_cancelled_outside_is_drift_without_action(status: str) -> None:
    run = desired()
    result = make([run], state(managed(run, "run_1", status)))
    change = only(result)
    assert change.action is Action.NOOP
    (drift,) = change.drift
    assert drift.kind == "cancelled"
    assert "revision" in drift.message
    assert result.drifted == (change,)
    assert not result.has_changes


# --- targets ----------------------------------------------------------------------------


def test_targets_keep_only_named_runs_by_name_or_address() -> None:
    runs = [desired("a"), desired("b"), desired("c", thread="thread_b")]
    by_name = make(runs, state(), targets=frozenset({"b"}))
    assert [c.name for c in by_name.changes] == ["b"]
    assert by_name.partial
    by_address = make(runs, state(), targets=frozenset({"thread_b/c"}))
    assert [c.address for c in by_address.changes] == ["thread_b/c"]
    assert not make(runs, state()).partial


def test_target_skipped_create_is_not_waited_for() -> None:
    runs = [desired("a"), desired("b")]
    change = only(make(runs, state(), targets=frozenset({"b"})))
    assert change.wait_for == ()


def test_targets_apply_to_undeclared_runs() -> None:
    live = state(managed(desired(name="gone"), "r1", "queued"))
    assert make([], live, prune=True, targets=frozenset({"other"})).changes == ()
    assert len(make([], live, prune=True, targets=frozenset({"gone"})).changes) == 1


# --- ordering ---------------------------------------------------------------------------


def test_threads_in_manifest_order_and_actions_ordered_within_a_thread() -> None:
    create = desired("create")
    modify = desired("modify", metadata={"k": "new"})
    submit = desired("submit", tool_outputs={"f": "x"})
    cancel = desired("cancel", state=DesiredState.CANCELLED)
    replace = desired("replace", revision=1)
    other = desired("other", thread="thread_0")
    live = state(
        managed(modify, "r_mod", recorded_user={"k": "old"}),
        managed(submit, "r_sub", "requires_action", calls=[ToolCall("c1", "f", "{}")]),
        managed(cancel, "r_can", "in_progress"),
        managed(replace, "r_rep", revision=0),
    )
    result = make([create, modify, other, submit, cancel, replace], live)
    assert [c.name for c in result.changes] == [
        "cancel", "modify", "submit", "create", "replace", "other",
    ]
    create_change, replace_change = result.changes[3], result.changes[4]
    # r_sub stays active (answering it only resumes it); r_can is being cancelled.
    assert create_change.wait_for == ("r_sub", "r_can")
    assert replace_change.wait_for == ("r_sub", "r_can", "thread_a/create")
    assert result.changes[5].wait_for == ()


def test_replace_that_frees_the_thread_goes_before_creates() -> None:
    new = desired("new")
    changed = desired("changed", revision=1)
    live = state(managed(changed, "r_busy", "in_progress", revision=0))
    result = make([new, changed], live)
    assert [c.name for c in result.changes] == ["changed", "new"]
    assert result.changes[0].wait_for == ("r_busy",)
    assert result.changes[1].wait_for == ("r_busy", "thread_a/changed")


def test_active_runs_of_others_are_waited_for_by_id() -> None:
    live = state(
        unmanaged("run_foreign", "in_progress"),
        managed(desired(name="theirs"), "run_theirs", "cancelling", project="billing"),
        unmanaged("run_done", "completed"),
    )
    change = only(make([desired()], live))
    assert change.wait_for == ("run_foreign", "run_theirs")


def test_many_creates_on_one_thread_wait_only_for_the_previous_one() -> None:
    runs = [desired(f"r{i}") for i in range(2000)]
    result = make(runs, state(unmanaged("busy", "queued")))
    assert result.changes[0].wait_for == ("busy",)
    assert all(
        c.wait_for == ("busy", prev.address)
        for prev, c in zip(result.changes, result.changes[1:], strict=False)
    )


# --- fingerprints -----------------------------------------------------------------------


def _thread(*runs: LiveRun) -> ThreadState:
    return ThreadState("thread_a", runs)


def test_plan_holds_a_fingerprint_for_every_thread_read() -> None:
    live = state(managed(desired(), "r1"), threads=["thread_a", "thread_z"])
    result = make([desired()], live)
    assert set(result.fingerprints) == {"thread_a", "thread_z"}
    assert result.fingerprints["thread_a"] == fingerprint(live.threads["thread_a"], PROJECT)


def test_fingerprint_ignores_queued_to_in_progress() -> None:
    run = desired()
    queued = _thread(managed(run, "r1", "queued"), unmanaged("u1", "queued"))
    running = _thread(managed(run, "r1", "in_progress"), unmanaged("u1", "in_progress"))
    assert fingerprint(queued, PROJECT) == fingerprint(running, PROJECT)


def test_fingerprint_ignores_ended_unmanaged_runs_and_other_facts() -> None:
    run = desired()
    base = _thread(managed(run, "r1", "completed"))
    with_history = _thread(managed(run, "r1", "completed"), unmanaged("u_old", "completed"))
    assert fingerprint(base, PROJECT) == fingerprint(with_history, PROJECT)


@pytest.mark.parametrize(
    "changed",
    [
        _thread(managed(desired(), "r1", "completed")),  # run ended
        _thread(managed(desired(), "r1", "cancelling")),  # cancelled
        _thread(managed(desired(), "r1", "requires_action", calls=[ToolCall("c", "f", "")])),
        _thread(managed(desired(), "r1", "in_progress", user={"team": "x"})),  # metadata
        _thread(managed(desired(), "r1", "in_progress"), managed(desired("b"), "r2", "queued")),
        _thread(managed(desired(), "r1", "in_progress"), unmanaged("u1", "queued")),
        _thread(),  # run gone
    ],
)
def test_fingerprint_changes_when_a_relevant_fact_changes(changed: ThreadState) -> None:
    base = _thread(managed(desired(), "r1", "in_progress"))
    assert fingerprint(base, PROJECT) != fingerprint(changed, PROJECT)


def test_fingerprint_sees_which_calls_are_pending() -> None:
    one = _thread(managed(desired(), "r1", "requires_action", calls=[ToolCall("c1", "f", "")]))
    two = _thread(managed(desired(), "r1", "requires_action", calls=[ToolCall("c2", "f", "")]))
    assert fingerprint(one, PROJECT) != fingerprint(two, PROJECT)


def test_fingerprint_depends_on_the_project() -> None:
    thread = _thread(managed(desired(), "r1", "in_progress"))
    assert fingerprint(thread, PROJECT) != fingerprint(thread, "billing")


# --- twins and stripped runs -----------------------------------------------------------------


def test_twins_of_the_current_run_are_shown_as_drift_and_not_acted_on() -> None:
    run = desired()
    first = managed(run, "run_b", created_at=100)
    twin = managed(run, "run_a", created_at=100)  # the same generation: one create, twice
    change = only(make([run], state(first, twin)))
    assert change.action is Action.NOOP and change.run_id == "run_b"  # ties: the larger id
    (drift,) = change.drift
    assert drift.kind == "duplicate"
    assert "1 other run of this name and generation exist beside the current run run_b: run_a" \
        in drift.message


def test_a_run_that_lost_only_its_owner_key_is_not_twinned() -> None:
    run = desired()
    live = managed(run, "run_x")
    stripped = LiveRun(live.id, live.thread_id, live.status, live.created_at,
                       {k: v for k, v in live.metadata.items() if k != identity.KEY_PROJECT})
    change = only(make([run], state(stripped)))
    assert change.action is Action.NOOP and change.reasons == (Reason.UNMARKED,)
    assert "still names itself 'report'" in change.drift[0].message
    told = plan([run], state(stripped), PlanOptions(PROJECT, recreate_unmarked=True))
    assert [c.action for c in told.changes] == [Action.CREATE]
    assert told.changes[0].drift[0].kind == "unmarked"


def test_a_foreign_run_with_another_spec_is_no_twin() -> None:
    run = desired()
    other = LiveRun("run_y", run.thread_id, "completed", 5, {},
                    fields={"assistant_id": "asst_other"})
    assert only(make([run], state(other))).action is Action.CREATE
