"""The spend guard with plain values: token ceilings of a plan's new runs, --max-creates."""

from __future__ import annotations

import pytest

from reconciler.config import ProjectConfig, parse_config
from reconciler.planfile import plan_from_dict, plan_to_dict
from reconciler.planning import Plan
from reconciler.render import render_markdown, render_text
from reconciler.render._diff import ceilings_note, spend_line
from reconciler.spend import Ceilings, Spend, ceilings, creates, max_creates_refusal, plan_spend
from tests.fixtures import SPEC, desired, make, managed, state

BOUNDED = {**SPEC, "max_prompt_tokens": 4000, "max_completion_tokens": 1000}


def three_new_runs_and_a_replace() -> Plan:
    """Creates with both, one and no ceilings; a replace with both (of 20,000 and 8,000)."""
    both = desired("both", spec=BOUNDED)
    prompt_only = desired("prompt-only", spec={**SPEC, "max_prompt_tokens": 2000})
    neither = desired("neither", thread="thread_b")
    replaced = desired("replaced", spec={**SPEC, "max_prompt_tokens": 20000,
                                         "max_completion_tokens": 8000})
    unchanged = desired("unchanged", thread="thread_b")
    live = state(managed(replaced, "run_old", spec=SPEC), managed(unchanged, "run_same"))
    return make([both, prompt_only, neither, replaced, unchanged], live)


def test_ceilings_are_read_from_the_create_request_of_creates_and_replaces() -> None:
    by_name = {c.name: ceilings(c) for c in three_new_runs_and_a_replace().changes}
    assert by_name == {
        "both": Ceilings(4000, 1000),
        "prompt-only": Ceilings(2000, None),
        "neither": Ceilings(None, None),
        "replaced": Ceilings(20000, 8000),
        "unchanged": None,  # a no-op starts no run
    }
    assert Ceilings(1, 2).bounded and not Ceilings(1, None).bounded


def test_the_plan_totals_add_up_the_ceilings_that_are_set() -> None:
    result = three_new_runs_and_a_replace()
    assert creates(result) == 4
    assert plan_spend(result) == Spend(
        runs=4, prompt=26000, completion=9000, prompt_unbounded=1, completion_unbounded=2,
        unbounded=2,
    )


def test_the_spend_line_names_totals_and_unbounded_runs() -> None:
    assert spend_line(three_new_runs_and_a_replace()) == (
        "Token ceilings of the 4 runs to create: prompt ≤ 26,000, completion ≤ 9,000; "
        "2 unbounded."
    )
    one = make([desired(spec=BOUNDED)], state())
    assert spend_line(one) == (
        "Token ceilings of the run to create: prompt ≤ 4,000, completion ≤ 1,000."
    )
    none_set = make([desired("a"), desired("b")], state())
    assert spend_line(none_set) == (
        "Token ceilings of the 2 runs to create: prompt unbounded, completion unbounded; "
        "2 unbounded."
    )
    run = desired()
    assert spend_line(make([run], state(managed(run, "run_1")))) is None


def test_each_new_run_says_its_ceilings_or_unbounded() -> None:
    notes = {c.name: ceilings_note(c) for c in three_new_runs_and_a_replace().changes}
    assert notes["prompt-only"] == (
        "token ceilings: max_prompt_tokens ≤ 2,000, max_completion_tokens unbounded"
    )
    assert notes["replaced"] == (
        "token ceilings: max_prompt_tokens ≤ 20,000, max_completion_tokens ≤ 8,000"
    )
    assert notes["unchanged"] is None


def test_text_view_shows_ceilings_per_run_and_the_total_before_the_summary() -> None:
    lines = render_text(three_new_runs_and_a_replace(), color=False).rstrip().splitlines()
    assert lines[-1].startswith("Plan: 3 to create, 0 to modify, 1 to replace")
    assert lines[-2].startswith("Token ceilings of the 4 runs to create:")
    text = "\n".join(lines)
    assert "(token ceilings: max_prompt_tokens unbounded, max_completion_tokens unbounded)" in text
    assert text.count("(token ceilings:") == 4


def test_markdown_view_shows_the_total() -> None:
    text = render_markdown(three_new_runs_and_a_replace())
    assert "Token ceilings of the 4 runs to create: prompt ≤ 26,000" in text


def test_a_saved_plan_keeps_its_ceilings_and_its_file_format() -> None:
    result = three_new_runs_and_a_replace()
    saved = plan_to_dict(result)
    assert "spend" not in saved  # the plan file (format 2.0) is unchanged
    assert plan_spend(plan_from_dict(saved)) == plan_spend(result)


def test_max_creates_refuses_a_plan_over_the_limit_in_one_sentence() -> None:
    result = three_new_runs_and_a_replace()
    assert max_creates_refusal(result, None) is None
    assert max_creates_refusal(result, 4) is None
    refusal = max_creates_refusal(result, 3)
    assert refusal == (
        "the plan would create 4 runs (creates and replaces count) but --max-creates allows 3; "
        "nothing was changed: raise the limit, or plan fewer runs with --target"
    )
    run = desired()
    nothing_new = make([run], state(managed(run, "run_1")))
    assert max_creates_refusal(nothing_new, 0) is None
    assert "max_creates in r.toml allows 0" in str(
        max_creates_refusal(make([run], state()), 0, "max_creates in r.toml")
    )


def test_max_creates_in_the_config_file() -> None:
    assert parse_config("max_creates = 20\n", "r.toml") == (ProjectConfig(max_creates=20), [])
    assert parse_config("max_creates = 0\n", "r.toml")[0].max_creates == 0


@pytest.mark.parametrize(("value", "shown"), [("-1", "-1"), ("2.5", "2.5"), ("true", "true"),
                                              ('"20"', "'20'")])
def test_a_bad_max_creates_is_one_located_problem(value: str, shown: str) -> None:
    config, problems = parse_config(f'project = "p"\nmax_creates = {value}\n', "r.toml")
    assert config.max_creates is None
    assert [str(p) for p in problems] == [
        f"r.toml:2:15: max_creates: expected a whole number from 0, got {shown}"
    ]
