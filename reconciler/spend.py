"""The spend guard: the token ceilings a plan's new runs allow, and apply's limit on creates.

Runs cost tokens and cannot be deleted, and the only bounds on what a run may spend are the
``max_prompt_tokens`` and ``max_completion_tokens`` of its create request. So the plan says
what its new runs (creates and replaces) allow, and ``apply --max-creates N`` refuses a plan
that would start more runs than the limit, before anything is sent. Pure functions of a plan:
a saved plan carries every create request, so they read it as they read a fresh plan.
"""

from __future__ import annotations

from dataclasses import dataclass

from reconciler.changes import Change, Create, Replace
from reconciler.model import JSON
from reconciler.planning import Plan

__all__ = ["Ceilings", "Spend", "ceilings", "creates", "max_creates_refusal", "plan_spend"]


@dataclass(frozen=True)
class Ceilings:
    """One new run's token ceilings, as its create request sets them (None: unbounded)."""

    prompt: int | None
    completion: int | None

    @property
    def bounded(self) -> bool:
        """Whether both are set: only then is what the run may spend bounded."""
        return self.prompt is not None and self.completion is not None


@dataclass(frozen=True)
class Spend:
    """The ceilings of a plan's new runs, added up.

    ``prompt`` and ``completion`` add up the ceilings that are set; ``prompt_unbounded`` and
    ``completion_unbounded`` count the runs that leave each unset, and ``unbounded`` the runs
    that leave at least one unset (for those the totals are no bound at all).
    """

    runs: int
    prompt: int
    completion: int
    prompt_unbounded: int
    completion_unbounded: int
    unbounded: int


def _tokens(value: JSON) -> int | None:
    """A ceiling as the request holds it; anything but a whole number is no ceiling."""
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value


def ceilings(change: Change) -> Ceilings | None:
    """The ceilings of the run ``change`` creates; None when it creates none."""
    payload = change.payload
    if not isinstance(payload, Create | Replace):
        return None
    request = payload.create_request
    return Ceilings(
        _tokens(request.get("max_prompt_tokens")), _tokens(request.get("max_completion_tokens"))
    )


def creates(plan: Plan) -> int:
    """How many runs applying ``plan`` starts: its creates and its replaces."""
    return sum(1 for c in plan.changes if isinstance(c.payload, Create | Replace))


def plan_spend(plan: Plan) -> Spend:
    """The ceilings of every run ``plan`` creates, added up."""
    found = [c for c in map(ceilings, plan.actionable) if c is not None]
    return Spend(
        runs=len(found),
        prompt=sum(c.prompt for c in found if c.prompt is not None),
        completion=sum(c.completion for c in found if c.completion is not None),
        prompt_unbounded=sum(1 for c in found if c.prompt is None),
        completion_unbounded=sum(1 for c in found if c.completion is None),
        unbounded=sum(1 for c in found if not c.bounded),
    )


def max_creates_refusal(
    plan: Plan, limit: int | None, source: str = "--max-creates"
) -> str | None:
    """Why ``plan`` is refused under the limit ``source`` set, in one sentence; None when it
    is within it (or there is no limit)."""
    count = creates(plan)
    if limit is None or count <= limit:
        return None
    runs = "run" if count == 1 else "runs"
    return (
        f"the plan would create {count:,} {runs} (creates and replaces count) but {source} "
        f"allows {limit:,}; nothing was changed: raise the limit, or plan fewer runs with "
        "--target"
    )
