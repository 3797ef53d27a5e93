"""``plan --drift-only`` views with plain values: only drift, every kind, a documented JSON."""

from __future__ import annotations

import json
import re

from jsonschema import Draft202012Validator

from reconciler import identity
from reconciler.model import LiveRun
from reconciler.planning import Plan
from reconciler.render.drift import drift_to_dict, render_drift, summary_line
from reconciler.schemas import load_schema
from tests.fixtures import desired, make, managed, state


def drifted_plan() -> Plan:
    """One drift of each kind, on four runs, beside a create that is not drift."""
    edited = desired("edited", metadata={"team": "a"})
    stopped = desired("stopped")
    twinned = desired("twinned", thread="thread_b")
    stripped = desired("stripped", thread="thread_b")
    live = state(
        managed(edited, "run_edited", user={"team": "z"}, recorded_user={"team": "a"}),
        managed(stopped, "run_stopped", "cancelled"),
        managed(twinned, "run_twin_1", created_at=100),
        managed(twinned, "run_twin_2", created_at=101),
        LiveRun("run_stripped", "thread_b", "completed", 100,
                {identity.KEY_NAME: "stripped"}),
    )
    return make([edited, stopped, desired("fresh"), twinned, stripped], live)


def test_every_kind_is_reported_with_its_run() -> None:
    data = drift_to_dict(drifted_plan())
    found = [(d["address"], d["kind"], d["run_id"]) for d in data["drift"]]
    assert found == [
        ("thread_a/edited", "metadata", "run_edited"),
        ("thread_a/stopped", "cancelled", "run_stopped"),
        ("thread_b/twinned", "duplicate", "run_twin_2"),
        ("thread_b/stripped", "unmarked", "run_stripped"),
    ]
    assert data["summary"] == {"metadata": 1, "cancelled": 1, "unmarked": 1, "duplicate": 1}
    assert data["has_drift"] is True and data["partial"] is False
    assert data["report"] == "drift" and data["report_version"] == "1.0"
    assert "format_version" not in data  # never taken for a saved plan by `apply FILE`
    edited = data["drift"][0]
    assert [f["path"] for f in edited["fields"]] == ["metadata.team"]
    assert edited["fields"][0]["after"] == "z"


def test_json_matches_its_schema_with_and_without_drift() -> None:
    validator = Draft202012Validator(load_schema("drift"))
    validator.validate(json.loads(render_drift(drifted_plan(), "json")))
    run = desired()
    clean = json.loads(render_drift(make([run], state(managed(run, "run_1"))), "json"))
    validator.validate(clean)
    assert clean["has_drift"] is False and clean["drift"] == []
    assert clean["summary"] == {"metadata": 0, "cancelled": 0, "unmarked": 0, "duplicate": 0}


def test_text_shows_the_drift_and_nothing_the_plan_would_do() -> None:
    text = render_drift(drifted_plan(), "text")
    assert "thread_a/edited: the metadata of run run_edited was changed outside" in text
    assert "run run_stopped was cancelled outside reconciler" in text
    assert "thread_b/twinned: 1 other run of this name and generation" in text
    assert "run run_stripped still names itself 'stripped'" in text
    assert "fresh" not in text  # the create is not drift
    assert "Plan:" not in text and "will be" not in text and "~ thread_a" not in text
    assert text.rstrip().splitlines()[-1] == (
        "Drift: 4 changes outside reconciler on 4 runs (1 metadata, 1 cancelled, 1 unmarked, "
        "1 duplicate)."
    )
    assert "\x1b[" not in text and "\x1b[" in render_drift(drifted_plan(), "text", color=True)


def test_no_drift_says_so() -> None:
    run = desired()
    clean = make([run, desired("new")], state(managed(run, "run_1")))
    assert summary_line(clean) == (
        "No drift: nothing changed outside reconciler since the last apply."
    )
    assert "thread_a/new" not in render_drift(clean, "text")  # a create is not drift


def test_markdown_has_the_summary_first_and_balanced_fences() -> None:
    text = render_drift(drifted_plan(), "markdown")
    lines = text.splitlines()
    assert lines[0] == "### Reconciler drift report for project `analytics`"
    assert lines[2].startswith("**Drift: 4 changes outside reconciler on 4 runs")
    assert "- `thread_a/stopped` (cancelled): run run\\_stopped was cancelled" in text
    fences = [line.strip() for line in lines if re.fullmatch(r"\s*`{3,}(diff)?", line)]
    assert fences == ["```diff", "```"]  # the metadata drift's diff, opened and closed
    assert "+ metadata.team: \"z\"" in text
