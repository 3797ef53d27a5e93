"""``plan --drift-only``: what changed outside reconciler since the last apply, nothing else.

Terraform's ``-refresh-only``. A view of one plan value that shows only the plan's drifted
changes and their drift records (kinds ``metadata``, ``cancelled``, ``unmarked``,
``duplicate``), never the actions planned. A drift report is not a plan apply can execute, so
its JSON is its own documented shape (``schemas/drift.schema.json``, ``report: "drift"``),
with no ``format_version`` a saved plan could be mistaken for.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from typing import Any

from reconciler.changes import Change, Drift, FieldChange
from reconciler.planning import Plan
from reconciler.render._diff import Line, field_lines, partial_note

__all__ = ["DRIFT_FORMATS", "DRIFT_KINDS", "DRIFT_REPORT_VERSION", "drift_to_dict", "render_drift"]

#: Version of the JSON shape (``schemas/drift.schema.json``): additions keep it, changes bump it.
DRIFT_REPORT_VERSION = "1.0"
DRIFT_FORMATS = ("text", "json", "markdown")
#: Every kind of drift the planner records, in the order the summary counts them.
DRIFT_KINDS = ("metadata", "cancelled", "unmarked", "duplicate")

_TITLE = "changed outside reconciler since the last apply"


def render_drift(plan: Plan, fmt: str, *, color: bool = False) -> str:
    """The drift of ``plan`` in one of :data:`DRIFT_FORMATS`."""
    if fmt == "json":
        return json.dumps(drift_to_dict(plan), indent=2, sort_keys=True)
    if fmt == "markdown":
        return render_drift_markdown(plan)
    return render_drift_text(plan, color=color)


def records(plan: Plan) -> list[tuple[Change, Drift]]:
    """Every drift record with the change it was found on, in the plan's order."""
    return [(change, drift) for change in plan.drifted for drift in change.drift]


def summary_line(plan: Plan) -> str:
    """``No drift.`` or how many records of each kind, on how many runs."""
    found = records(plan)
    if not found:
        return "No drift: nothing changed outside reconciler since the last apply."
    kinds = Counter(drift.kind for _, drift in found)
    order = [*DRIFT_KINDS, *sorted(set(kinds) - set(DRIFT_KINDS))]
    counted = ", ".join(f"{kinds[kind]} {kind}" for kind in order if kind in kinds)
    runs = len(plan.drifted)
    return (
        f"Drift: {len(found)} change{'s' if len(found) != 1 else ''} outside reconciler on "
        f"{runs} run{'s' if runs != 1 else ''} ({counted})."
    )


def drift_to_dict(plan: Plan) -> dict[str, Any]:
    """The JSON-compatible form, as ``schemas/drift.schema.json`` describes it."""
    found = records(plan)
    kinds = Counter(drift.kind for _, drift in found)
    return {
        "report": "drift",
        "report_version": DRIFT_REPORT_VERSION,
        "project": plan.options.project,
        "partial": plan.partial,
        "has_drift": bool(found),
        "summary": {kind: kinds.get(kind, 0) for kind in sorted({*DRIFT_KINDS, *kinds})},
        "drift": [_record_to_dict(change, drift) for change, drift in found],
    }


def _record_to_dict(change: Change, drift: Drift) -> dict[str, Any]:
    return {
        "address": change.address,
        "thread_id": change.thread_id,
        "name": change.name,
        "run_id": change.run_id,
        "run_status": change.run_status,
        "kind": drift.kind,
        "message": drift.message,
        "fields": [_field_to_dict(f) for f in drift.fields],
        "source": change.source,
    }


def _field_to_dict(field: FieldChange) -> dict[str, Any]:
    return {
        "path": field.path, "before": field.before, "after": field.after,
        "known_before": field.known_before, "known_after": field.known_after,
    }


def render_drift_text(plan: Plan, *, color: bool) -> str:
    """For a person at a terminal: each record under its address, then the summary."""
    def paint(text: str, code: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if color and text else text

    out = [paint(f'Reconciler drift report for project "{plan.options.project}": what '
                 f"{_TITLE}.", "1")]
    note = partial_note(plan)
    if note:
        out.append(paint(f"Note: {note}", "33;1"))
    for change, drift in records(plan):
        out += ["", f"  {paint('#', '2')} {change.address}: {drift.message}"]
        for field in drift.fields:
            for line in field_lines(field, arrows=True):
                pad = "      " + "    " * line.depth
                sign = {"+": "32", "-": "31", "~": "33"}.get(line.sign)
                mark = paint(line.sign, sign) if sign else line.sign
                out.append(f"{pad}{mark} {line.text}".rstrip())
    out += ["", paint(summary_line(plan), "1")]
    return "\n".join(out) + "\n"


def render_drift_markdown(plan: Plan) -> str:
    """For a pull-request comment: the summary first, then one item per record."""
    out = [
        f"### Reconciler drift report for project {_code(plan.options.project)}",
        "",
        f"**{_escape(summary_line(plan))}**",
    ]
    note = partial_note(plan)
    if note:
        out += ["", f"> **Note:** {_escape(note)}"]
    found = records(plan)
    if found:
        out.append("")
    for change, drift in found:
        out.append(f"- {_code(change.address)} ({_escape(drift.kind)}): {_escape(drift.message)}")
        lines = [line for f in drift.fields for line in field_lines(f, arrows=False)]
        if lines:
            out += ["", *_diff_block(lines, indent="  "), ""]
    return "\n".join(out) + "\n"


def _diff_block(lines: list[Line], indent: str) -> list[str]:
    body = []
    for line in lines:
        pad = "    " * line.depth
        sign = "!" if line.sign == "~" else line.sign  # GitHub colours "!" as changed
        body.append(f"{pad}{line.text}" if line.sign == "@" else f"{sign} {pad}{line.text}")
    fence = "`" * max(3, _longest_backticks("\n".join(body)) + 1)
    return [indent + text for text in (f"{fence}diff", *body, fence)]


def _longest_backticks(text: str) -> int:
    return max((len(m) for m in re.findall(r"`+", text)), default=0)


def _code(text: str) -> str:
    """Inline code that survives backticks and pipes in the text."""
    ticks = "`" * (_longest_backticks(text) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{ticks}{pad}{text.replace(chr(10), ' ')}{pad}{ticks}"


def _escape(text: str) -> str:
    return re.sub(r"([\\`*_{}\[\]<>|#])", r"\\\1", text.replace("\n", " "))
