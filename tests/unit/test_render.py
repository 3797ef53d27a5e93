"""The plan's renderings: marks, summary line, readable field diffs, colour, Markdown, JSON."""

from __future__ import annotations

import json
import re

from reconciler.changes import Change, Drift, FieldChange, Modify, NoOp
from reconciler.model import DesiredRun, ToolCall
from reconciler.planfile import plan_to_dict
from reconciler.planning import Plan, PlanOptions
from reconciler.render import render_json, render_markdown, render_text
from tests.fixtures import SPEC, busy_plan, desired, make, managed, state, unmanaged

ANSI = re.compile(r"\x1b\[[0-9;]*m")





def test_summary_line_counts_each_action() -> None:
    text = render_text(busy_plan(), color=False)
    assert text.rstrip().splitlines()[-1] == (
        "Plan: 1 to create, 1 to modify, 2 to replace, 1 to cancel, 1 to answer."
    )
    pruned = render_text(busy_plan(prune=True), color=False)
    assert pruned.rstrip().splitlines()[-1] == (
        "Plan: 1 to create, 1 to modify, 2 to replace, 2 to cancel, 1 to answer."
    )


def test_no_changes_summary() -> None:
    run = desired()
    text = render_text(make([run], state(managed(run, "run_1"))), color=False)
    assert text.rstrip().splitlines()[-1] == "No changes. Live runs match the manifests."
    assert "1 run already matches the manifests." in text


def test_each_action_has_its_mark_address_and_run() -> None:
    text = render_text(busy_plan(), color=False)
    assert "  + thread_a/fresh\n" in text
    assert "  ~ thread_a/meta  run run_meta (completed)" in text
    assert "  -/+ thread_a/report  run run_abc (in_progress)" in text
    assert "  - thread_b/stop  run run_stop (queued)" in text
    assert "  ! thread_c/answer  run run_answer (requires_action)" in text
    assert "declared at runs.yaml:12:5" in text
    assert "the manifest sets state: cancelled" in text


def test_noops_are_only_counted_unless_they_warn() -> None:
    text = render_text(busy_plan(), color=False)
    assert "thread_c/same" not in text
    assert "1 run already matches the manifests." in text
    assert "thread_b/gone" in text
    assert "would be cancelled with --prune" in text


def test_unanswered_tool_calls_are_shown_with_the_function() -> None:
    run = desired(tool_outputs={})
    live = state(managed(run, "run_1", "requires_action",
                         calls=[ToolCall("call_1", "escalate", "{}")]))
    text = render_text(make([run], live), color=False)
    assert "thread_a/report needs attention" in text
    assert "escalate" in text


def test_bang_marks_only_submit_tool_outputs_and_question_marks_attention() -> None:
    text = render_text(busy_plan(), color=False)
    marked = [line.split()[0] for line in text.splitlines()
              if line.startswith("  ") and not line.startswith("   ")
              and "/" in line and not line.lstrip().startswith("#")]
    assert "  ? thread_b/gone  run run_gone (in_progress)" in text  # not declared: attention
    assert marked.count("!") == 1  # thread_c/answer, the one submit tool outputs
    assert "  ! thread_c/answer  " in text


def test_metadata_drift_on_one_key_shows_that_key_with_its_old_value() -> None:
    run = desired(metadata={"team": "a", "cadence": "weekly", "owner": "kpi"})
    live = managed(run, "run_1", user={"team": "ops", "cadence": "weekly", "owner": "kpi"})
    text = render_text(make([run], state(live)), color=False)
    drift = text[text.index("Changes outside"):text.index("Reconciler will perform")]
    assert '~ metadata.team: "a" → "ops"' in drift
    assert "cadence" not in drift and "owner" not in drift
    assert "(value not recorded)" not in drift


def test_long_multiline_instructions_are_a_unified_diff() -> None:
    text = render_text(busy_plan(), color=False)
    lines = text.splitlines()
    assert any(line.strip().startswith("~ instructions:") for line in lines)
    assert any(line.strip() == "- Use a table." for line in lines)
    assert any(line.strip() == "+ Use a table with totals." for line in lines)
    assert any(re.fullmatch(r"\s*@@ -\d+,\d+ \+\d+,\d+ @@", line) for line in lines)
    assert any(line.strip() == "Summarise last week's KPIs." for line in lines)  # context
    # Lines far from the change are not repeated.
    assert "Sign off as the KPI bot." not in text


def test_tool_schemas_are_diffed_structurally() -> None:
    text = render_text(busy_plan(), color=False)
    assert '~ [0].function.parameters.properties.id.type: "string" → "integer"' in text
    assert '+ [0].function.description: "Find a ticket by id"' in text


def test_json_in_string_tool_outputs_are_pretty_printed() -> None:
    long_output = json.dumps({"status": "open", "history": ["x" * 30, "y" * 30, "z" * 30]})
    run = desired(tool_outputs={"lookup": long_output})
    live = state(managed(run, "run_1", "requires_action",
                         calls=[ToolCall("call_1", "lookup", "{}")]))
    text = render_text(make([run], live), color=False)
    assert "+ output for call_1:" in text
    assert '"status": "open",' in text  # one key per line, indented


def test_json_string_values_are_diffed_by_structure() -> None:
    change = Change(
        "thread_a", "x", (), Modify({}, (FieldChange("metadata.config", '{"a": 1, "b": [1, 2]}',
                                                     '{"b": [1, 3], "a": 1}'),)),
        run_id="r",
    )
    text = render_text(Plan(PlanOptions("p"), (change,), {}), color=False)
    assert "~ b[1]: 2 → 3" in text


def test_short_scalars_use_an_arrow() -> None:
    text = render_text(busy_plan(), color=False)
    assert '~ metadata.team: "z" → "b"' in text


def test_unknown_values_are_named() -> None:
    text = render_text(busy_plan(), color=False)
    assert "+ model: (known after apply)" in text
    old = {**SPEC, "additional_messages": [{"role": "user", "content": "a"}]}
    run = desired(spec={**SPEC, "additional_messages": [{"role": "user", "content": "b"}]})
    replaced = render_text(make([run], state(managed(run, "r", spec=old))), color=False)
    assert "additional_messages: (value not recorded) →" in replaced


def test_waits_are_said_in_words() -> None:
    text = render_text(busy_plan(), color=False)
    assert "waits for run_abc to finish" in text
    assert "the old run run_abc is cancelled first" in text
    two = make([desired("a"), desired("b")], state(unmanaged("run_x", "in_progress")))
    assert "waits for run_x and the run created for thread_a/a to finish" in render_text(
        two, color=False
    )


def test_drift_is_a_separate_section_before_the_actions() -> None:
    text = render_text(busy_plan(), color=False)
    drift_at = text.index("Changes outside reconciler since the last apply:")
    actions_at = text.index("Reconciler will perform the following actions:")
    assert drift_at < actions_at
    assert '~ metadata.team: (value not recorded) → "z"' in text[drift_at:actions_at]


def test_cancelled_drift_says_how_to_get_a_new_run() -> None:
    run = desired()
    text = render_text(make([run], state(managed(run, "run_1", "cancelled"))), color=False)
    assert "Changes outside reconciler since the last apply:" in text
    assert "bump `revision`" in text
    assert text.rstrip().endswith("No changes. Live runs match the manifests.")


def test_partial_plans_say_so() -> None:
    result = make([desired("a"), desired("b")], state(), targets=frozenset({"a"}))
    assert "partial" in render_text(result, color=False)
    assert "partial" in render_markdown(result)


def test_colour_codes_only_when_asked() -> None:
    plain = render_text(busy_plan(), color=False)
    coloured = render_text(busy_plan(), color=True)
    assert not ANSI.search(plain)
    assert "\x1b[32m+\x1b[0m" in coloured
    assert ANSI.sub("", coloured) == plain


def test_markdown_has_summary_thread_sections_diff_blocks_and_drift() -> None:
    md = render_markdown(busy_plan())  # the whole layout: tests/unit/test_markdown_comments.py
    assert md.startswith(
        "**Plan: 1 to create, 1 to modify, 2 to replace, 1 to cancel, 1 to answer.**\n"
    )
    assert "<details><summary><code>thread_a</code>: 1 to create, 1 to modify, 1 to replace" in md
    assert "`-/+` `thread_a/report` must be replaced (instructions changed)" in md
    assert "- Live run: `run_abc (in_progress)`." in md
    assert "```diff\n" in md
    assert "\n-     Use a table.\n+     Use a table with totals.\n" in md
    assert "<b>Changes outside reconciler since the last apply</b>" in md
    assert md.count("```") % 2 == 0
    assert "thread_c/same" not in md


def test_markdown_fences_survive_backticks_in_values() -> None:
    run = desired(spec={**SPEC, "instructions": "Use ```code``` here\nand `x` there"})
    md = render_markdown(make([run], state()))
    assert "````diff" in md
    assert "Use ```code``` here" in md


def test_markdown_escapes_pipes_in_cells() -> None:
    change = Change("thread_a", "x", (), NoOp(), drift=(Drift("metadata", "a|b"),))
    md = render_markdown(Plan(PlanOptions("p|q"), (change,), {}))
    assert "a\\|b" in md


def test_json_is_the_saved_plan_representation() -> None:
    result = busy_plan()
    text = render_json(result)
    assert json.loads(text) == json.loads(json.dumps(plan_to_dict(result)))
    assert json.loads(text)["format_version"] == "2.0"


def test_renderers_handle_an_empty_plan() -> None:
    empty = Plan(PlanOptions("p"), (), {})
    assert "No changes. Live runs match the manifests." in render_text(empty, color=True)
    assert "No changes." in render_markdown(empty)
    assert json.loads(render_json(empty))["changes"] == []


def test_cancel_of_an_undeclared_run_renders_without_a_source() -> None:
    gone = DesiredRun("thread_a", "gone", SPEC)
    text = render_text(make([], state(managed(gone, "r9", "queued")), prune=True), color=False)
    assert "  - thread_a/gone  run r9 (queued)" in text
    assert "no manifest declares it any more (--prune)" in text
