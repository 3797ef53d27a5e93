"""``export --adopt``: an export's adoptions applied as ordinary changes.

Each adoption is a modify change (reason ``adopt`` or ``rerecord``) built by
:func:`reconciler.export.export_runs`; here they become a plan that :class:`Applier` executes
and reports like any other, so adoption gets apply's ordering, typed errors and outcomes
instead of a loop of its own. Messages go through ``say``: the CLI decides where they print.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from reconciler.apply import Applier, Outcome
from reconciler.changes import Change, Reason
from reconciler.client import AssistantsClient
from reconciler.errors import ApplyError
from reconciler.planning import Plan, PlanOptions

__all__ = ["adopt_runs", "adoption_advice", "adoption_plan", "announced"]


def adoption_plan(adoptions: Sequence[Change], project: str) -> Plan:
    """The adoptions as a plan of ``project`` (no fingerprints: it is applied at once)."""
    return Plan(PlanOptions(project), tuple(adoptions), {})


def announced(adoptions: Sequence[Change]) -> list[str]:
    """What ``--adopt`` will do, one line per run, before asking."""
    return [
        f"{'will re-record' if Reason.RERECORD in a.reasons else 'will adopt'} "
        f"{a.address} ({a.run_id})"
        for a in adoptions
    ]


async def adopt_runs(
    client: AssistantsClient, adoptions: Sequence[Change], project: str,
    say: Callable[[str], None],
) -> None:
    """Apply every adoption (a metadata update, safe to repeat) and say which failed."""
    report = await Applier(client).apply(adoption_plan(adoptions, project))
    missed = [r for r in report.results if r.outcome is not Outcome.APPLIED]
    for result in missed:
        change = result.change
        say(f"{change.address} ({change.run_id}): not adopted: {result.message}")
    if missed:
        raise ApplyError(f"adopted {len(adoptions) - len(missed)} of {len(adoptions)} run(s); "
                         "run the same export --adopt again to adopt the rest")
    say(f"Adopted {len(adoptions)} run(s) into project {project!r}.")


def adoption_advice(adoptions: Sequence[Change], project: str) -> str:
    """Why the exported file does not yet plan as "No changes", and what --adopt would do."""
    new = sum(1 for a in adoptions if Reason.ADOPT in a.reasons)
    parts = []
    if new:
        parts.append(f"{new} exported run{'s are' if new != 1 else ' is'} not managed by "
                     f"project {project!r} yet (`apply` would create "
                     f"{'new runs for them' if new != 1 else 'a new run for it'})")
    if len(adoptions) - new:
        count = len(adoptions) - new
        parts.append(f"{count} managed run{'s' if count != 1 else ''} recorded a spec the "
                     f"export cannot reproduce (`apply` would replace "
                     f"{'them' if count != 1 else 'it'})")
    return "; ".join(parts) + ": rerun with --adopt to tag them"
