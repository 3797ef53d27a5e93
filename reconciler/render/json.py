"""The machine view of a plan: the saved-plan representation (``schemas/plan.schema.json``)."""

from __future__ import annotations

import json

from reconciler.plan import Plan
from reconciler.planfile import plan_to_dict

__all__ = ["render_json"]


def render_json(plan: Plan) -> str:
    """Versioned JSON; what ``plan --out`` writes and ``apply FILE`` / ``show FILE`` read."""
    return json.dumps(plan_to_dict(plan), indent=2, sort_keys=True)
