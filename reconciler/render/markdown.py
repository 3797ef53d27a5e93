"""The plan as a pull-request comment: summary, a table of changes, diffs, drift.

GitHub renders ```` ```diff ```` blocks with ``+``/``-`` lines in colour, so field changes use
``-``/``+`` pairs rather than arrows; anything from the manifests is escaped or fenced.
"""

from __future__ import annotations

import re

from reconciler.changes import Action, Change
from reconciler.plan import Plan
from reconciler.render._diff import (
    Line,
    change_lines,
    field_lines,
    headline,
    is_warning,
    notes,
    partial_note,
    reason_text,
    run_text,
    summary_line,
    unchanged_line,
)

__all__ = ["render_markdown"]


def render_markdown(plan: Plan) -> str:
    """Markdown for a pull-request comment."""
    out: list[str] = [
        f"### Reconciler plan for project {_code(plan.options.project)}",
        "",
        f"**{summary_line(plan)}**",
    ]
    note = partial_note(plan)
    if note:
        out += ["", f"> **Note:** {_escape(note)}"]

    shown = [c for c in plan.changes if c.action is not Action.NOOP or is_warning(c)]
    if shown:
        out += [
            "",
            "| | Run | Action | Live run | Why | Declared at |",
            "|:-:|---|---|---|---|---|",
        ]
        for change in shown:
            mark = change.action.mark if change.action is not Action.NOOP else "!"
            run = run_text(change)
            out.append(
                f"| {_code(mark)} | {_code(change.address)} | {change.action.value} | "
                f"{_code(run) if run else ''} | {_cell(reason_text(change))} | "
                f"{_code(change.source) if change.source else ''} |"
            )
        for change in shown:
            out += _details(change)

    unchanged = unchanged_line(plan)
    if unchanged:
        out += ["", f"_{unchanged}_"]

    drifted = plan.drifted
    if drifted:
        out += ["", "### Changes outside reconciler since the last apply", ""]
        for change in drifted:
            for drift in change.drift:
                out.append(f"- {_code(change.address)}: {_escape(drift.message)}")
                lines = [line for f in drift.fields for line in field_lines(f, arrows=False)]
                if lines:
                    out += ["", *_diff_block(lines, indent="  "), ""]
    return "\n".join(out) + "\n"


def _details(change: Change) -> list[str]:
    lines = change_lines(change, arrows=False)
    extra = notes(change)
    if not lines and not extra:
        return []
    mark = change.action.mark if change.action is not Action.NOOP else "!"
    out = [
        "",
        "<details><summary><code>"
        f"{_html(mark)}</code> {_html(headline(change))}</summary>",
        "",
    ]
    if lines:
        out += [*_diff_block(lines), ""]
    out += [f"- {_escape(n[:1].upper() + n[1:])}." for n in extra]
    if extra:
        out.append("")
    out.append("</details>")
    return out


def _diff_block(lines: list[Line], indent: str = "") -> list[str]:
    body = []
    for line in lines:
        pad = "    " * line.depth
        if line.sign == "@":
            body.append(f"{pad}{line.text}")
        else:
            sign = "!" if line.sign == "~" else line.sign  # GitHub colours "!" as changed
            body.append(f"{sign} {pad}{line.text}")
    fence = "`" * max(3, _longest_backtick_run("\n".join(body)) + 1)
    return [indent + text for text in (f"{fence}diff", *body, fence)]


def _longest_backtick_run(text: str) -> int:
    return max((len(m) for m in re.findall(r"`+", text)), default=0)


def _code(text: str) -> str:
    """Inline code that survives backticks in the text."""
    ticks = "`" * (_longest_backtick_run(text) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{ticks}{pad}{_cell(text) if '|' in text else text}{pad}{ticks}"


def _cell(text: str) -> str:
    return text.replace("\n", " ").replace("|", "\\|")


def _escape(text: str) -> str:
    return re.sub(r"([\\`*_{}\[\]<>|#])", r"\\\1", text)


def _html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
