"""The saved plan: versioned JSON that round-trips, matches its schema, and refuses junk."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from reconciler.changes import (
    Action,
    Change,
    Create,
    Drift,
    FieldChange,
    Modify,
    Reason,
    Replace,
    SubmitToolOutputs,
    ToolOutput,
)
from reconciler.planfile import PlanFileError, plan_from_dict, plan_from_json, plan_to_dict
from reconciler.planning import Binding, Plan, PlanOptions
from reconciler.schemas import load_schema
from tests.fixtures import busy_plan


def rich_plan() -> Plan:
    """The busy plan plus values JSON must not lose: nested JSON, unicode, targets, unknowns."""
    base = busy_plan(prune=True)
    extra = Change(
        "thread_z", "odd", (), Modify({"note": "x"}, (
            FieldChange("metadata.note", "café ☕", None),
            FieldChange("additional_messages", None, [{"role": "user", "content": [1.5, None]}],
                        known_before=False),
        )),
        run_id="run_z", run_status="completed",
        drift=(Drift("metadata", "edited", (FieldChange("metadata.a", None, "1",
                                                        known_before=False),)),),
        source="m.yaml:1:1",
    )
    return Plan(
        PlanOptions("analytics", prune=True, targets=frozenset({"odd", "thread_a/fresh"}),
                    recreate_unmarked=True),
        (*base.changes, extra),
        dict(base.fingerprints),
        backend=Binding("https://llm.example.com/openai", "azure", "2024-05-01-preview"),
    )


def saved(plan: Plan) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(json.dumps(plan_to_dict(plan)))
    return data


def test_round_trip_through_json_gives_an_equal_plan() -> None:
    original = rich_plan()
    again = plan_from_dict(saved(original))
    assert again == original
    assert plan_from_json(json.dumps(plan_to_dict(original))) == original


def test_round_trip_keeps_what_apply_needs() -> None:
    original = busy_plan()
    again = plan_from_dict(saved(original))
    by_action = {c.action: c.payload for c in again.changes}
    submit = by_action[Action.SUBMIT_TOOL_OUTPUTS]
    assert isinstance(submit, SubmitToolOutputs)
    assert submit.tool_outputs == (ToolOutput("call_1", '{"status": "open", "id": 7}'),)
    create = by_action[Action.CREATE]
    assert isinstance(create, Create)
    assert create == next(c.payload for c in original.changes if c.action is Action.CREATE)
    assert again.fingerprints == original.fingerprints
    assert [c.wait_for for c in again.changes] == [c.wait_for for c in original.changes]


def test_representation_matches_the_schema_and_carries_a_summary() -> None:
    data = saved(busy_plan())
    Draft202012Validator.check_schema(load_schema("plan"))
    assert list(Draft202012Validator(load_schema("plan")).iter_errors(data)) == []
    assert data["format_version"] == "2.0"
    assert data["backend"] is None  # computed by the pure planner alone: apply refuses it
    assert data["summary"]["create"] == 1
    assert data["summary"]["replace"] == 2
    assert data["has_changes"] is True
    assert data["changes"][0]["address"] == f"{data['changes'][0]['thread_id']}/" \
        f"{data['changes'][0]['name']}"


def test_other_format_version_is_refused_clearly() -> None:
    data = saved(busy_plan())
    data["format_version"] = "1.0"
    with pytest.raises(PlanFileError, match=r"format version '1\.0'.*reads version '2\.0'"):
        plan_from_dict(data)


def test_file_without_a_version_is_not_a_plan() -> None:
    with pytest.raises(PlanFileError, match="no format_version"):
        plan_from_dict({"apiVersion": "reconciler/v1", "runs": []})


@pytest.mark.parametrize("junk", ["", "not json", "{", b"\xff\xfe\x00", "\x00\x01"])
def test_junk_is_refused_as_not_json(junk: str | bytes) -> None:
    with pytest.raises(PlanFileError, match="not valid JSON"):
        plan_from_json(junk)


@pytest.mark.parametrize("value", [[], "plan", 3, None])
def test_non_object_is_refused(value: object) -> None:
    with pytest.raises(PlanFileError, match="JSON object"):
        plan_from_dict(value)


def _broken(edit: str) -> dict[str, Any]:
    data = copy.deepcopy(saved(busy_plan()))
    change = data["changes"][0]
    if edit == "action":
        change["action"] = "destroy"
    elif edit == "missing":
        del change["run_id"]
    elif edit == "extra":
        data["surprise"] = 1
    elif edit == "fingerprint":
        data["fingerprints"] = {"thread_a": 3}
    elif edit == "modify_without_metadata":
        change["metadata"] = None
    return data


@pytest.mark.parametrize(
    ("edit", "where"),
    [
        ("action", "changes/0/action"),
        ("missing", "changes/0"),
        ("extra", "(top level)"),
        ("fingerprint", "fingerprints/thread_a"),
        ("modify_without_metadata", "changes/0/metadata"),
    ],
)
def test_malformed_plan_names_where(edit: str, where: str) -> None:
    data = _broken(edit)
    assert data["changes"][0]["action"] in ("modify", "destroy")  # the first change is a modify
    with pytest.raises(PlanFileError, match="malformed at " + where.replace("(", r"\(")
                       .replace(")", r"\)")) as caught:
        plan_from_dict(data)
    assert "Traceback" not in caught.value.message


def test_the_saved_plan_format_is_pinned() -> None:
    """Format 2.0 is a contract with every plan file already saved: literal expectations, and
    the digests inside recomputed from their written-out inputs with hashlib alone."""
    import dataclasses
    import hashlib

    from reconciler.model import DesiredRun, LiveState, ThreadState
    from reconciler.planning import plan

    computed = plan(
        [DesiredRun("thread_a", "report", {"assistant_id": "asst_1"}, metadata={"team": "x"})],
        LiveState({"thread_a": ThreadState("thread_a", ())}), PlanOptions("demo"),
    )
    saved_plan = dataclasses.replace(computed, backend=Binding("https://api.example.com/v1"))
    assert plan_to_dict(saved_plan) == {
        "format_version": "2.0",
        "backend": {"base_url": "https://api.example.com/v1", "auth": "bearer",
                    "api_version": None},
        "options": {"project": "demo", "prune": False, "targets": [],
                    "recreate_unmarked": False},
        "partial": False,
        "has_changes": True,
        "summary": {"create": 1, "modify": 0, "replace": 0, "cancel": 0,
                    "submit_tool_outputs": 0, "no-op": 0},
        "changes": [{
            "address": "thread_a/report", "thread_id": "thread_a", "name": "report",
            "action": "create", "reasons": ["new"], "run_id": None, "run_status": None,
            "field_changes": [], "forces_replace": [],
            "create_request": {"assistant_id": "asst_1", "metadata": {
                "team": "x",
                "reconciler.project": "demo",
                "reconciler.name": "report",
                "reconciler.spec": "v2;836a2fe00ac0848b;r=0;g=1;0=48555a",
                "reconciler.meta": "e25d96df1bf1",
            }},
            "metadata": None, "tool_outputs": [], "answers": {}, "wait_for": [], "drift": [],
            "source": None, "unanswered": [],
        }],
        "fingerprints": {"thread_a": "bd0f420995ebeebc4b8370a68bb476cd"},
    }

    def sha(text: str, length: int) -> str:
        return hashlib.sha256(text.encode()).hexdigest()[:length]

    assert sha('{"revision":0,"spec":{"assistant_id":"asst_1"}}', 16) == "836a2fe00ac0848b"
    assert sha("team\x1ex", 12) == "e25d96df1bf1"
    assert sha("demo\x1cthread_a", 32) == "bd0f420995ebeebc4b8370a68bb476cd"
    assert plan_from_dict(json.loads(json.dumps(plan_to_dict(saved_plan)))) == saved_plan


def test_a_saved_replace_reads_back_as_its_payload_type() -> None:
    """Every flat field of format 2.0 lands in the payload of the change's action, and the
    fields other actions use are written empty."""
    change = {
        "address": "thread_a/report", "thread_id": "thread_a", "name": "report",
        "action": "replace", "reasons": ["immutable_field"], "run_id": "run_1",
        "run_status": "completed",
        "field_changes": [{"path": "model", "before": "a", "after": "b", "known_before": True,
                           "known_after": True}],
        "forces_replace": ["model"], "create_request": {"model": "b", "metadata": {}},
        "metadata": None, "tool_outputs": [], "answers": {"f": "ok"}, "wait_for": ["run_1"],
        "drift": [], "source": "m.yaml:2:3", "unanswered": [],
    }
    data = saved(rich_plan())
    data["changes"] = [change]
    (read,) = plan_from_dict(data).changes
    assert read == Change(
        "thread_a", "report", (Reason.IMMUTABLE_FIELD,),
        Replace({"model": "b", "metadata": {}}, {"f": "ok"}, ("run_1",),
                (FieldChange("model", "a", "b"),), ("model",)),
        run_id="run_1", run_status="completed", source="m.yaml:2:3",
    )
    assert saved(Plan(PlanOptions("p"), (read,), {}))["changes"] == [change]
