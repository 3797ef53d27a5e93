"""The plan as pull-request comments: layout, numbered parts that fit, the cut, long values.

Golden file reviewed by hand, line by line (not only regenerated): tests/golden/plan-busy.md —
the summary line first and outside any fold; the drift section open; one section per thread
(thread_a, thread_b, thread_c) with each run's mark, address, reasons, live run, declaration,
notes, the replace's "Forces replacement" and "# forces replacement" on the forcing field; the
no-op that needs attention marked "?"; every fence and <details> closed.
The large plan is checked by structure (markdown-it), not by a golden file.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

from reconciler.changes import (
    Change,
    FieldChange,
    Reason,
    Replace,
    SubmitToolOutputs,
    ToolOutput,
)
from reconciler.planning import Plan, PlanOptions
from reconciler.redact import Redactor
from reconciler.render import render_markdown, render_markdown_comments
from reconciler.render.markdown import COMMENT_LIMIT
from tests.fixtures import (
    PROJECT,
    SPEC,
    busy_plan,
    desired,
    make,
    markdown_structure_problems,
    state,
)

GOLDEN = Path(__file__).parent.parent / "golden"
HEADER = re.compile(r"^`\+` `([^`]+)` will be created$", re.MULTILINE)
EIGHT_LINES = "\n".join(
    f"Step {i}: read the week's numbers for region {i} and report them in a table."
    for i in range(8)
)


def large_plan(runs: int = 300, threads: int = 3) -> Plan:
    """``runs`` creates with 8-line instructions, on ``threads`` threads."""
    declared = [
        desired(f"run-{i:03d}", thread=f"thread_{i % threads:02d}",
                spec={**SPEC, "instructions": EIGHT_LINES})
        for i in range(runs)
    ]
    return make(declared, state())


def numbered(comment: str) -> tuple[int, int]:
    found = re.search(r"· comment (\d+) of (\d+)\.", comment)
    assert found, comment[:300]
    return int(found.group(1)), int(found.group(2))


def test_the_checker_catches_what_a_host_would_break_on() -> None:
    assert markdown_structure_problems("a\n\n```diff\n+ x\n```\n") == []
    assert markdown_structure_problems("```diff\n+ x\n") == [
        "the fence opened on line 1 is never closed"
    ]
    assert markdown_structure_problems("<details><summary>t</summary>\n\nbody\n") == [
        "1 <details> left open"
    ]
    assert markdown_structure_problems("text <details> here\n") == [
        "<details> inside a paragraph: 'text <details> here'"
    ]


def test_a_small_plan_is_its_golden_file_and_one_comment() -> None:
    expected = (GOLDEN / "plan-busy.md").read_text("utf-8")
    assert render_markdown(busy_plan()) == expected
    assert render_markdown_comments(busy_plan()) == [expected]
    assert markdown_structure_problems(expected) == []


def test_a_plan_over_the_limit_is_split_into_valid_numbered_comments() -> None:
    plan = large_plan()
    whole = render_markdown(plan)
    assert len(whole) > COMMENT_LIMIT
    comments = render_markdown_comments(plan)
    assert len(comments) > 1
    for index, comment in enumerate(comments, start=1):
        assert len(comment) <= COMMENT_LIMIT
        assert len(comment.encode("utf-8")) <= COMMENT_LIMIT
        assert markdown_structure_problems(comment) == []
        assert numbered(comment) == (index, len(comments))
        first_line = comment.split("\n", 1)[0]
        assert first_line == (
            "**Plan: 300 to create, 0 to modify, 0 to replace, 0 to cancel, 0 to answer.**"
        )
    # Every run shown exactly once, in the plan's order, and a section cut between two
    # comments opens again "(continued)".
    shown = [a for comment in comments for a in HEADER.findall(comment)]
    assert shown == [c.address for c in plan.changes]
    joined = "".join(comments)
    assert "(continued)</summary>" in joined
    for thread in ("thread_00", "thread_01", "thread_02"):
        opened = f"<details><summary><code>{thread}</code>: 100 to create</summary>"
        assert joined.count(opened) == 1


def test_one_run_too_large_for_a_comment_is_split_between_fences() -> None:
    outputs = tuple(ToolOutput(f"call_{i:02d}", "word " * 60) for i in range(40))
    change = Change("thread_a", "answer", (Reason.TOOL_CALLS_PENDING,),
                    SubmitToolOutputs(outputs), "run_1", "requires_action")
    plan = Plan(PlanOptions(PROJECT), (change,), {})
    comments = render_markdown_comments(plan, limit=4_096)
    assert len(comments) > 2
    for comment in comments:
        assert len(comment.encode("utf-8")) <= 4_096
        assert markdown_structure_problems(comment) == []
    assert all("`!` `thread_a/answer` (continued)" in c for c in comments[1:])
    joined = "".join(comments)
    assert [f"call_{i:02d}" for i in range(40)] == re.findall(r"output for (call_\d+):", joined)


def test_max_comments_keeps_the_first_and_says_what_is_left_out() -> None:
    plan = large_plan()
    comments = render_markdown_comments(plan, max_comments=2, saved_plan="out/plan.json")
    assert len(comments) == 2
    for index, comment in enumerate(comments, start=1):
        assert len(comment.encode("utf-8")) <= COMMENT_LIMIT
        assert markdown_structure_problems(comment) == []
        assert numbered(comment) == (index, 2)
    shown = {a for comment in comments for a in HEADER.findall(comment)}
    left = [c.address for c in plan.changes if c.address not in shown]
    threads = {a.split("/")[0] for a in left}
    assert 0 < len(left) < 300
    assert ("> **Note:** this plan does not fit in 2 comments (`--max-comments`): the last one "
            "says what is not shown.") in comments[0]
    assert comments[-1].endswith(
        f"\n\n**Not shown:** {len(left)} runs on {len(threads)} threads, from `{left[0]}` on: "
        "the plan is cut to 2 comments. The whole plan is saved in `out/plan.json`: "
        "`reconciler show out/plan.json` prints it.\n"
    )
    unsaved = render_markdown_comments(plan, max_comments=1)
    assert len(unsaved) == 1 and "comment 1 of" not in unsaved[0]
    assert unsaved[0].endswith(
        "Save the whole plan with `reconciler plan --out FILE` and print it with "
        "`reconciler show FILE`.\n"
    )
    roomy = render_markdown_comments(plan, max_comments=50)
    assert numbered(roomy[-1])[1] == len(roomy) <= 50
    assert not any("Not shown" in c or "does not fit" in c for c in roomy)


def test_long_values_are_cut_with_their_length_and_a_short_hash() -> None:
    long_text = "\n".join(f"Line {i}: " + "details " * 8 for i in range(120))
    assert len(long_text) == 8_889
    plan = make([desired(spec={**SPEC, "instructions": long_text})], state())
    md = render_markdown(plan)
    digest = hashlib.sha256(long_text.encode("utf-8")).hexdigest()[:8]
    assert f"\n      … (8,889 characters, sha256 {digest})\n" in md
    assert "Line 38: " in md and "Line 39: " not in md  # 40 lines: the field's line, 39 more
    assert markdown_structure_problems(md) == []


def test_a_long_before_and_after_are_both_described() -> None:
    before = "\n".join(f"old rule {i}" for i in range(200))
    after = "\n".join(f"new rule {i}" for i in range(200))
    replace = Replace({"assistant_id": "asst_1"}, field_changes=(
        FieldChange("instructions", before, after),), forces_replace=("instructions",))
    change = Change("thread_a", "report", (Reason.IMMUTABLE_FIELD,), replace, "run_1", "completed")
    md = render_markdown(Plan(PlanOptions(PROJECT), (change,), {}))
    sha = {t: hashlib.sha256(t.encode("utf-8")).hexdigest()[:8] for t in (before, after)}
    assert (f"… (before: {len(before):,} characters, sha256 {sha[before]}; "
            f"after: {len(after):,} characters, sha256 {sha[after]})") in md
    assert "! instructions:  # forces replacement\n" in md
    assert "- Forces replacement: `instructions`." in md


SECRET = "sk-live-0123456789abcdefghijklmnopqrstuv"


def test_a_secret_is_masked_before_a_long_line_is_cut() -> None:
    # One long word on the field's line ("instructions: x…"): the cut at 400 characters
    # falls 16 characters into the key.
    value = "x" * 370 + SECRET + "y" * 170
    plan = make([desired(spec={**SPEC, "instructions": value})], state())
    redact = Redactor([SECRET]).redact
    for text in (render_markdown(plan, redact=redact),
                 *render_markdown_comments(plan, redact=redact, max_comments=1)):
        assert SECRET[:10] not in text
        assert "instructions: " + "x" * 370 + "***" in text
    # Redacting only the finished text would not do: the cut leaves a prefix it cannot know.
    unmasked = render_markdown(plan)
    assert SECRET not in unmasked and SECRET[:16] in unmasked


def test_a_secret_anywhere_in_the_plan_never_reaches_a_comment() -> None:
    run = desired("fresh", spec={**SPEC, "instructions": f"Use {SECRET} to log in."},
                  metadata={"token": SECRET})
    comments = render_markdown_comments(make([run], state()), redact=Redactor([SECRET]).redact)
    assert comments and all(SECRET not in c for c in comments)
    assert "Use *** to log in." in comments[0]


def test_a_limit_that_leaves_no_room_is_refused() -> None:
    with pytest.raises(ValueError, match="leaves no room"):
        render_markdown_comments(busy_plan(), limit=1_000)
    with pytest.raises(ValueError, match="at least 1"):
        render_markdown_comments(busy_plan(), max_comments=0)
