"""The human view of a plan, Terraform-like: marks, addresses, reasons, field diffs, summary.

Returns a string; colour is plain ANSI SGR codes, only when asked (the CLI asks when stdout
is a terminal), so the same text without colour is what logs and tests see.
"""

from __future__ import annotations

from reconciler.changes import Action, Change
from reconciler.planning import Plan
from reconciler.render._diff import (
    Line,
    attention,
    ceilings_note,
    change_lines,
    field_lines,
    headline,
    notes,
    partial_note,
    reason_text,
    run_text,
    spend_line,
    summary_line,
    unchanged_line,
)
from reconciler.render._sections import ATTENTION

__all__ = ["render_text"]

_RESET = "\x1b[0m"
_STYLES = {
    "+": "32",  # green
    "-": "31",  # red
    "~": "33",  # yellow
    "-/+": "35",  # magenta
    "!": "36",  # cyan
    "@": "36",
    "bold": "1",
    "dim": "2",
    "warn": "33;1",
}
_INDENT = "  "


class _Writer:
    def __init__(self, color: bool) -> None:
        self.color = color
        self.lines: list[str] = []

    def paint(self, text: str, style: str) -> str:
        code = _STYLES.get(style)
        if not self.color or not code or not text:
            return text
        return f"\x1b[{code}m{text}{_RESET}"

    def add(self, text: str = "") -> None:
        self.lines.append(text)

    def diff(self, lines: list[Line], indent: str) -> None:
        for line in lines:
            pad = indent + "    " * line.depth
            if line.sign == "@":
                self.add(pad + self.paint(line.text, "@"))
            elif line.sign == " ":
                self.add(f"{pad}  {line.text}")
            else:
                self.add(f"{pad}{self.paint(line.sign, line.sign)} {line.text}")


def render_text(plan: Plan, *, color: bool) -> str:
    """The plan for a person at a terminal; ends with the summary line."""
    out = _Writer(color)
    out.add(out.paint(f'Reconciler plan for project "{plan.options.project}".', "bold"))
    note = partial_note(plan)
    if note:
        out.add(out.paint(f"Note: {note}", "warn"))

    drifted = plan.drifted
    if drifted:
        out.add()
        out.add(out.paint("Changes outside reconciler since the last apply:", "bold"))
        for change in drifted:
            for drift in change.drift:
                out.add()
                out.add(f"{_INDENT}{out.paint('#', 'dim')} {change.address}: {drift.message}")
                for field_change in drift.fields:
                    out.diff(field_lines(field_change, arrows=True), _INDENT * 3)

    actionable = plan.actionable
    if actionable:
        out.add()
        out.add(out.paint("Reconciler will perform the following actions:", "bold"))
        out.add(
            "  (" + ", ".join(
                f"{out.paint(a.mark, a.mark)} {a.value.replace('_', ' ')}"
                for a in Action if a is not Action.NOOP
            ) + ")"
        )
        for change in actionable:
            _change(out, change)

    warnings = attention(plan)
    if warnings:
        out.add()
        out.add(out.paint("Needs attention (no action planned):", "bold"))
        for change in warnings:
            _change(out, change)

    out.add()
    unchanged = unchanged_line(plan, len(warnings))
    if unchanged:
        out.add(unchanged)
    spend = spend_line(plan)
    if spend:
        out.add(spend)
    out.add(out.paint(summary_line(plan), "bold"))
    return "\n".join(out.lines) + "\n"


def _change(out: _Writer, change: Change) -> None:
    mark = change.action.mark if change.action is not Action.NOOP else ATTENTION  # "!" answers
    style = change.action.mark if change.action is not Action.NOOP else "warn"
    out.add()
    out.add(f"{_INDENT}{out.paint('# ' + headline(change), 'bold')}")
    why = reason_text(change)
    if why:
        out.add(f"{_INDENT}{out.paint('#   because ' + why, 'dim')}")
    if change.source:
        out.add(f"{_INDENT}{out.paint('#   declared at ' + change.source, 'dim')}")
    run = run_text(change)
    title = change.address + (f"  run {run}" if run else "")
    out.add(f"{_INDENT}{out.paint(mark, style)} {title}")
    indent = _INDENT * 2 + " " * len(mark)
    out.diff(change_lines(change, arrows=True), indent)
    for note in notes(change):
        out.add(f"{indent}{out.paint('(' + note + ')', 'dim')}")
    ceiling = ceilings_note(change)
    if ceiling:
        out.add(f"{indent}{out.paint('(' + ceiling + ')', 'dim')}")
