"""Annotations for CI: validate's ::error lines and JSON array, plan's notices and warnings.

Golden files reviewed by hand, line by line (not only regenerated):
- tests/golden/validate-github.txt: one ::error per problem of BAD_MANIFEST plus the missing
  file, sorted by file, line, column; the missing file without line and col; "title=reconciler
  validate" (no ":" or "," to escape); each message as validate's text format words it.
- tests/golden/validate.json: the same four problems as the documented array; the missing file
  with "line": null and "column": null.
- tests/golden/plan-github.txt: for located_plan(), a notice for the create, the modify and
  the submit, a warning for the replace, the cancel and the run that needs attention, each at
  the line:col its run was declared (the undeclared run without a location); titles escaped
  ("reconciler plan%3A create").
"""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from reconciler.changes import Change, Reason, Replace
from reconciler.loading import check_manifests
from reconciler.manifest import Problem
from reconciler.model import DesiredState, SourceLocation, ToolCall
from reconciler.planning import Plan, PlanOptions
from reconciler.render.github import (
    escape_data,
    escape_property,
    plan_annotations,
    problem_annotations,
    render_github,
    workflow_command,
)
from reconciler.render.text import render_text
from reconciler.render.validation import render_problems_json
from reconciler.schemas import load_schema
from tests.fixtures import PROJECT, SPEC, desired, make, managed, state

GOLDEN = Path(__file__).parent.parent / "golden"

BAD_MANIFEST = """\
apiVersion: reconciler/v1
kind: Runs
defaults:
  thread_id: thread_abc
  assistant_id: asst_abc
runs:
  - name: Weekly_Report
    temperature: 3
  - name: triage
    instructionz: "Look: at, this"
"""


def at(line: int, column: int = 5) -> SourceLocation:
    return SourceLocation("manifests/runs.yaml", line, column)


def located_plan() -> Plan:
    """One of each action, each declared at its own line; one undeclared run on thread_b."""
    create = desired("fresh", location=at(3))
    modify = desired("meta", metadata={"team": "b"}, location=at(7))
    replace = desired("report", spec={**SPEC, "instructions": "New."}, location=at(11))
    cancel = desired("stop", state=DesiredState.CANCELLED, thread="thread_b", location=at(15))
    answer = desired("answer", tool_outputs={"lookup": "{}"}, thread="thread_c",
                     location=at(19, 7))
    live = state(
        managed(modify, "run_meta", user={"team": "a"}),
        managed(replace, "run_abc", spec=SPEC),
        managed(cancel, "run_stop", "queued"),
        managed(desired("gone", thread="thread_b"), "run_gone", "in_progress"),
        managed(answer, "run_answer", "requires_action",
                calls=[ToolCall("call_1", "lookup", "{}")]),
    )
    return make([create, modify, replace, cancel, answer], live)


def test_escaping_is_what_the_runner_unescapes() -> None:
    assert escape_data("50% done\r\nnext: a, b") == "50%25 done%0D%0Anext: a, b"
    assert escape_property("C:\\w\\a,b%\n") == "C%3A\\w\\a%2Cb%25%0A"
    assert workflow_command("error", "bad\nvalue", file="a:b.yaml", line=3, col=None) == (
        "::error file=a%3Ab.yaml,line=3::bad%0Avalue"
    )


def test_a_problem_cannot_forge_a_second_command() -> None:
    problem = Problem(SourceLocation("odd, name:1.yaml", 2, 4), "x\n::add-mask::y 100%")
    assert problem_annotations([problem]) == (
        "::error file=odd%2C name%3A1.yaml,line=2,col=4,title=reconciler validate"
        "::x%0A::add-mask::y 100%25\n"
    )


def manifests(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    monkeypatch.chdir(tmp_path)
    Path("runs.yaml").write_text(BAD_MANIFEST)
    return ["runs.yaml", "missing.yaml"]


def test_validate_github_is_its_golden_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                            ) -> None:
    checked = check_manifests(manifests(tmp_path, monkeypatch))
    expected = (GOLDEN / "validate-github.txt").read_text("utf-8")
    assert problem_annotations(checked.problems) == expected


def test_validate_json_is_its_golden_file_and_its_schema(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    checked = check_manifests(manifests(tmp_path, monkeypatch))
    text = render_problems_json(checked.problems)
    assert text + "\n" == (GOLDEN / "validate.json").read_text("utf-8")
    schema = load_schema("validate-result")
    assert schema["$id"] == (
        "https://github.com/reconciler/reconciler/schemas/validate-result.schema.json"
    )
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(json.loads(text), schema)
    jsonschema.validate(json.loads(render_problems_json([])), schema)
    with pytest.raises(jsonschema.ValidationError):  # the schema does reject a wrong shape
        jsonschema.validate([{"file": "a.yaml", "line": 0, "column": 1, "severity": "error",
                              "message": "m"}], schema)


def test_valid_manifests_have_no_problems(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                          ) -> None:
    monkeypatch.chdir(tmp_path)
    Path("runs.yaml").write_text(BAD_MANIFEST.split("runs:")[0] + "runs:\n  - name: ok\n")
    checked = check_manifests(["runs.yaml"])
    assert checked.problems == ()
    assert checked.summary() == "The manifests are valid: 1 run on 1 thread."
    assert problem_annotations(checked.problems) == ""
    assert render_problems_json(checked.problems) == "[]"


def test_plan_annotations_are_their_golden_file() -> None:
    expected = (GOLDEN / "plan-github.txt").read_text("utf-8")
    assert "\n".join(plan_annotations(located_plan())) + "\n" == expected


def test_a_file_name_with_colons_keeps_its_line_and_column() -> None:
    change = Change("thread_a", "r", (Reason.IMMUTABLE_FIELD,), Replace({}),
                    source="C:/work/runs.yaml:3:7")
    assert plan_annotations(Plan(PlanOptions(PROJECT), (change,), {})) == [
        "::warning file=C%3A/work/runs.yaml,line=3,col=7,title=reconciler plan%3A replace"
        "::thread_a/r must be replaced: fields that cannot change on an existing run differ"
    ]


def test_plan_github_keeps_the_text_plan_in_a_group_where_commands_are_off() -> None:
    # A context line of a diff is only indented: the runner would take it for a command.
    old, new = "a\n::error::forged\n::endgroup::\nold", "a\n::error::forged\n::endgroup::\nnew"
    hostile = desired("report", spec={**SPEC, "instructions": new}, location=at(3))
    live = managed(hostile, "run_abc", spec={**SPEC, "instructions": old},
                   fields={**SPEC, "instructions": old})
    plan = make([hostile], state(live))
    text = render_text(plan, color=False)
    lines = render_github(plan, text).splitlines()
    assert lines[0] == '::group::Reconciler plan for project "analytics"'
    assert lines[1].startswith("::stop-commands::reconciler-")
    token = lines[1].removeprefix("::stop-commands::")
    assert len(token) == len("reconciler-") + 32 and token not in text
    resume = lines.index(f"::{token}::")
    assert lines[2:resume] == text.rstrip("\n").splitlines()
    assert any(line.strip() == "::error::forged" for line in lines[2:resume])
    assert lines[resume + 1] == "::endgroup::"
    assert lines[resume + 2].startswith("::warning file=manifests/runs.yaml,line=3,col=5,")
    assert lines[-1] == "Plan: 0 to create, 0 to modify, 1 to replace, 0 to cancel, 0 to answer."
    assert not any(line.startswith("::error") for line in lines[resume:])
