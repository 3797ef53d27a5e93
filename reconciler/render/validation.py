"""``validate``'s machine view: every problem as one JSON object, for any CI.

The array's shape is ``schemas/validate-result.schema.json``: ``file``, ``line`` and
``column`` (1-based, as editors show them; null when the problem is the whole file, such as
a path that does not exist), ``severity`` and ``message``. An empty array: the manifests are
valid.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from reconciler.manifest import Problem

__all__ = ["VALIDATE_RESULT_SCHEMA", "render_problems", "render_problems_json"]

#: The name :func:`reconciler.schemas.load_schema` knows the array's schema by.
VALIDATE_RESULT_SCHEMA = "validate-result"


def render_problems(problems: Sequence[Problem], fmt: str) -> str:
    """``validate --format github|json``: the problems for a machine, ending in a newline."""
    if fmt == "github":
        from reconciler.render.github import problem_annotations

        return problem_annotations(problems)
    return render_problems_json(problems) + "\n"


def render_problems_json(problems: Sequence[Problem]) -> str:
    """The problems, sorted by place, as a JSON array (``[]`` when there are none)."""
    items = []
    for problem in sorted(problems, key=lambda p: p.sort_key):
        where = problem.location
        located = where.line > 0
        items.append({
            "file": where.file,
            "line": where.line if located else None,
            "column": where.column if located else None,
            "severity": "error",
            "message": problem.message,
        })
    return json.dumps(items, indent=2, ensure_ascii=False)
