"""A plan's views (what it will do, its counts, its drift) are cached on the value: they must
stay those of its own changes, whichever plan was asked first."""

from __future__ import annotations

import dataclasses

from reconciler.changes import Action
from reconciler.render._diff import attention, unchanged_line
from tests.fixtures import busy_plan


def test_views_count_the_changes_of_the_plan_asked() -> None:
    whole = busy_plan(prune=True)
    actions = [c.action for c in whole.changes]
    assert whole.count(Action.NOOP) == actions.count(Action.NOOP) >= 1
    assert whole.count(Action.CREATE) == actions.count(Action.CREATE) == 1
    assert [c.action for c in whole.actionable] == [a for a in actions if a is not Action.NOOP]
    assert whole.drifted and all(c.drift for c in whole.drifted)
    only_noops = dataclasses.replace(
        whole, changes=tuple(c for c in whole.changes if c.action is Action.NOOP))
    assert only_noops.count(Action.CREATE) == 0
    assert only_noops.actionable == () and not only_noops.has_changes
    assert only_noops.count(Action.NOOP) == whole.count(Action.NOOP)
    assert whole.count(Action.CREATE) == 1  # the first plan's answers are still its own


def test_unchanged_runs_are_the_noops_not_needing_attention() -> None:
    plan = busy_plan()
    shown = attention(plan)
    assert shown and all(c.action is Action.NOOP for c in shown)
    quiet = plan.count(Action.NOOP) - len(shown)
    expected = ("1 run already matches the manifests." if quiet == 1
                else f"{quiet} runs already match the manifests.")
    assert unchanged_line(plan) == unchanged_line(plan, len(shown)) == expected
