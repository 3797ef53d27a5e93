"""The machine view of a plan: the saved-plan representation (``schemas/plan.schema.json``)."""

from __future__ import annotations

import json

from reconciler.planfile import plan_to_dict
from reconciler.planning import Plan

__all__ = ["render_json"]


def render_json(plan: Plan) -> str:
    """Versioned JSON; what ``plan --out`` writes and ``apply FILE`` / ``show FILE`` read."""
    return json.dumps(plan_to_dict(plan), indent=2, sort_keys=True)
