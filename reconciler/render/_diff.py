"""What the text and Markdown views share: field diffs as signed lines, and plan wording.

Pure functions from plan values to lines; the views only lay the lines out and colour them.
Long or multi-line strings are shown as unified diffs, JSON values (and strings holding JSON,
such as tool schemas and tool outputs) are pretty-printed and diffed structurally, short
scalars as ``before → after``.
"""

from __future__ import annotations

import difflib
import json
import re
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from reconciler import identity
from reconciler.changes import (
    Action,
    Change,
    Create,
    FieldChange,
    Reason,
    Replace,
    SubmitToolOutputs,
    ToolOutput,
)
from reconciler.model import CANCELLABLE_STATUSES, JSON, RUN_FIELDS
from reconciler.planning import Plan
from reconciler.spend import ceilings, plan_spend

#: Strings longer than this (or with a newline) are shown as blocks and diffed line by line.
SHORT = 72
NOT_RECORDED = "(value not recorded)"
KNOWN_AFTER = "(known after apply)"
#: Fields the server copies from the assistant when a manifest leaves them unset.
SERVER_FILLED = ("model", "instructions", "tools")
#: No-ops shown anyway, because a person should act on them.
WARNINGS = frozenset({Reason.UNANSWERED_TOOL_CALLS, Reason.NOT_DECLARED})

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*\Z")


@dataclass(frozen=True)
class Line:
    """One line of a field diff: ``sign`` is ``+``, ``-``, ``~``, `` `` (context) or ``@``
    (a hunk header); ``depth`` is the nesting under the field's own line."""

    sign: str
    text: str
    depth: int = 0


def is_warning(change: Change) -> bool:
    return change.action is Action.NOOP and not WARNINGS.isdisjoint(change.reasons)


def summary_line(plan: Plan) -> str:
    if not plan.has_changes:
        return "No changes. Live runs match the manifests."
    return (
        f"Plan: {plan.count(Action.CREATE)} to create, {plan.count(Action.MODIFY)} to modify, "
        f"{plan.count(Action.REPLACE)} to replace, {plan.count(Action.CANCEL)} to cancel, "
        f"{plan.count(Action.SUBMIT_TOOL_OUTPUTS)} to answer."
    )


def attention(plan: Plan) -> list[Change]:
    """The no-ops shown anyway (see ``WARNINGS``)."""
    return [c for c in plan.changes if is_warning(c)]


def unchanged_line(plan: Plan, shown: int | None = None) -> str | None:
    """The no-ops, only counted (less the ``shown`` ones needing attention, when known)."""
    if shown is None:
        shown = len(attention(plan))
    quiet = plan.count(Action.NOOP) - shown
    if not quiet:
        return None
    if quiet == 1:
        return "1 run already matches the manifests."
    return f"{quiet} runs already match the manifests."


def partial_note(plan: Plan) -> str | None:
    if not plan.partial:
        return None
    targets = ", ".join(sorted(plan.options.targets))
    return (
        f"This plan is partial: it covers only --target {targets}. "
        "Other changes the manifests ask for may be pending."
    )


def headline(change: Change) -> str:
    """What will happen to one address, in words."""
    address = change.address
    if change.action is Action.CREATE:
        return f"{address} will be created"
    if change.action is Action.MODIFY:
        return f"{address} will have its metadata updated in place"
    if isinstance(change.payload, Replace):
        forces = ", ".join(change.payload.forces_replace)
        return f"{address} must be replaced" + (f" ({forces} changed)" if forces else "")
    if change.action is Action.CANCEL:
        return f"{address} will be cancelled"
    if change.action is Action.SUBMIT_TOOL_OUTPUTS:
        return f"{address} will be sent tool outputs"
    if is_warning(change):
        return f"{address} needs attention"
    return f"{address} is unchanged"


_REASONS: dict[Reason, str] = {
    Reason.NEW: "no run with this name exists yet",
    Reason.METADATA_CHANGED: "its metadata differs from the manifest",
    Reason.IMMUTABLE_FIELD: "fields that cannot change on an existing run differ",
    Reason.REVISION: "the manifest's revision changed",
    Reason.STATE_CANCELLED: "the manifest sets state: cancelled",
    Reason.TOOL_CALLS_PENDING: "the run requires action and tool_outputs answers every call",
    Reason.PRUNE: "no manifest declares it any more (--prune)",
    Reason.NOT_DECLARED: (
        "no manifest declares it any more; it would be cancelled with --prune"
    ),
    Reason.UP_TO_DATE: "it matches the manifest",
    Reason.UNANSWERED_TOOL_CALLS: "the run requires action but tool_outputs does not answer",
    Reason.FINISHED: "the run has already ended",
    Reason.UNMARKED: "a run that looks like it lost its reserved metadata outside reconciler",
    Reason.ADOPT: "an existing run is tagged as managed by this project",
    Reason.RERECORD: "the run's recorded spec is written as the exported manifest declares it",
}


def reason_text(change: Change) -> str:
    words = []
    for reason in change.reasons:
        text = _REASONS[reason]
        if reason is Reason.UNANSWERED_TOOL_CALLS and change.unanswered:
            text += ": " + ", ".join(change.unanswered)
        words.append(text)
    return "; ".join(words)


def run_text(change: Change) -> str | None:
    if change.run_id is None:
        return None
    return f"{change.run_id} ({change.run_status})" if change.run_status else change.run_id


def notes(change: Change) -> list[str]:
    """Ordering and side effects a reader must know: old run cancelled first, waits."""
    result = []
    if change.action is Action.REPLACE and change.run_id:
        if change.run_status in CANCELLABLE_STATUSES:
            result.append(f"the old run {change.run_id} is cancelled first")
        else:
            result.append(f"the old run {change.run_id} has ended and is kept as history")
    if change.wait_for:
        names = [
            f"the run created for {w}" if "/" in w else w for w in change.wait_for
        ]
        result.append(f"waits for {' and '.join(names)} to finish")
    return result


def change_lines(change: Change, *, arrows: bool) -> list[Line]:
    """The body of one change: the request a create sends, or field by field diffs."""
    lines: list[Line] = []
    payload = change.payload
    if isinstance(payload, Create):
        lines.extend(create_lines(payload.create_request))
    for field_change in change.field_changes:
        lines.extend(field_lines(field_change, arrows=arrows))
    if isinstance(payload, SubmitToolOutputs):
        lines.extend(tool_output_lines(payload.tool_outputs))
    return lines


def create_lines(request: Mapping[str, JSON]) -> list[Line]:
    lines: list[Line] = []
    for path, value, known in create_entries(request):
        if known:
            lines.extend(value_lines("+", path, value))
        else:
            lines.append(Line("+", f"{path}: {KNOWN_AFTER}"))
    return lines


def create_entries(request: Mapping[str, JSON]) -> list[tuple[str, JSON, bool]]:
    """What a create shows, field by field, in display order: ``(path, value, known)``;
    unknown entries are the server-filled fields the request leaves unset. The Markdown view
    folds long values one entry at a time."""
    entries: list[tuple[str, JSON, bool]] = []
    for name in RUN_FIELDS:
        if name == "metadata":
            continue
        if name in request:
            entries.append((name, request[name], True))
        elif name in SERVER_FILLED:
            entries.append((name, None, False))
    for name in sorted(set(request) - set(RUN_FIELDS)):
        entries.append((name, request[name], True))
    metadata = request.get("metadata")
    if isinstance(metadata, Mapping):
        for key, value in sorted(identity.user_metadata(metadata).items()):
            entries.append((f"metadata.{key}", value, True))
    return entries


def tool_output_lines(outputs: Sequence[ToolOutput]) -> list[Line]:
    lines: list[Line] = []
    for output in outputs:
        lines.extend(value_lines("+", f"output for {output.tool_call_id}", output.output))
    return lines


def value_lines(sign: str, path: str, value: JSON, depth: int = 0) -> list[Line]:
    """One value, on the field's line when short, as an indented block otherwise."""
    block = _block(value)
    if len(block) == 1:
        return [Line(sign, f"{path}: {block[0]}", depth)]
    return [Line(sign, f"{path}:", depth), *(Line(sign, text, depth + 1) for text in block)]


def field_lines(change: FieldChange, *, arrows: bool, depth: int = 0) -> list[Line]:
    """One field's diff. ``arrows`` puts short changes on one ``~ a → b`` line (text view);
    without it they become a ``-``/``+`` pair, as a Markdown ``diff`` block wants."""
    path, before, after = change.path, change.before, change.after
    if not change.known_before and not change.known_after:
        return _pair(path, [NOT_RECORDED], [KNOWN_AFTER], arrows, depth)
    if not change.known_before:
        if after is None:
            return [Line("-", f"{path}: {NOT_RECORDED}", depth)]
        return _pair(path, [NOT_RECORDED], _block(after), arrows, depth)
    if not change.known_after:
        if before is None:
            return [Line("+", f"{path}: {KNOWN_AFTER}", depth)]
        return _pair(path, _block(before), [KNOWN_AFTER], arrows, depth)
    if before is None:
        return value_lines("+", path, after, depth)
    if after is None:
        return value_lines("-", path, before, depth)
    json_before, json_after = _as_json(before), _as_json(after)
    if json_before is not None and json_after is not None:
        lines = _structural(path, json_before, json_after, arrows, depth)
        if lines:
            return lines
    if isinstance(before, str) and isinstance(after, str) and (_long(before) or _long(after)):
        return _text_diff(path, before, after, depth)
    return _pair(path, _block(before), _block(after), arrows, depth)


def _pair(
    path: str, before: list[str], after: list[str], arrows: bool, depth: int
) -> list[Line]:
    if len(before) == 1 and len(after) == 1:
        if arrows:
            return [Line("~", f"{path}: {before[0]} → {after[0]}", depth)]
        return [Line("-", f"{path}: {before[0]}", depth), Line("+", f"{path}: {after[0]}", depth)]
    return [
        Line("~", f"{path}:", depth),
        *(Line("-", text, depth + 1) for text in before),
        *(Line("+", text, depth + 1) for text in after),
    ]


def _text_diff(path: str, before: str, after: str, depth: int) -> list[Line]:
    lines = [Line("~", f"{path}:", depth)]
    diff = difflib.unified_diff(_text_lines(before), _text_lines(after), lineterm="", n=2)
    for text in list(diff)[2:]:  # drop the ---/+++ file headers
        if text.startswith("@@"):
            lines.append(Line("@", text, depth + 1))
        else:
            lines.append(Line(text[:1] or " ", text[1:], depth + 1))
    return lines


def _structural(
    path: str, before: JSON, after: JSON, arrows: bool, depth: int
) -> list[Line]:
    """JSON diffed by structure: one line per changed, added or removed leaf or subtree."""
    from deepdiff import DeepDiff  # here, not at import: it costs every command ~90 ms

    diff: Any = DeepDiff(before, after, view="tree", verbose_level=2)
    entries: list[tuple[str, str, JSON, JSON]] = []
    for report, levels in diff.items():
        for level in levels:
            sub = _subpath(level.path(output_format="list"))
            if report.endswith("_added"):
                entries.append((sub, "+", None, level.t2))
            elif report.endswith("_removed"):
                entries.append((sub, "-", level.t1, None))
            else:
                entries.append((sub, "~", level.t1, level.t2))
    if not entries:
        return []
    lines = [Line("~", f"{path}:", depth)]
    for sub, sign, old, new in sorted(entries, key=lambda e: e[0]):
        if sign == "+":
            lines.extend(value_lines("+", sub, new, depth + 1))
        elif sign == "-":
            lines.extend(value_lines("-", sub, old, depth + 1))
        else:
            lines.extend(field_lines(FieldChange(sub, old, new), arrows=arrows, depth=depth + 1))
    return lines


def _subpath(keys: Sequence[object]) -> str:
    text = ""
    for key in keys:
        if isinstance(key, int):
            text += f"[{key}]"
        elif isinstance(key, str) and _IDENTIFIER.match(key):
            text += f".{key}"
        else:
            text += f"[{json.dumps(key, ensure_ascii=False)}]"
    return text.removeprefix(".") or "(value)"


def _long(text: str) -> bool:
    return "\n" in text or len(text) > SHORT


def _text_lines(text: str) -> list[str]:
    if "\n" in text:
        return text.splitlines()
    return textwrap.wrap(text, SHORT, break_long_words=False, break_on_hyphens=False) or [""]


def _as_json(value: JSON) -> JSON:
    """The value as a JSON container, parsing strings that hold one; else None."""
    if isinstance(value, dict | list):
        return value
    if isinstance(value, str) and value.lstrip()[:1] in ("{", "["):
        try:
            parsed = json.loads(value)
        except ValueError:
            return None
        if isinstance(parsed, dict | list):
            return parsed
    return None


def _block(value: JSON) -> list[str]:
    parsed = _as_json(value)
    if parsed is not None:
        compact = json.dumps(parsed, ensure_ascii=False)
        if len(compact) <= SHORT:
            return [compact]
        return json.dumps(parsed, indent=2, ensure_ascii=False).splitlines()
    if isinstance(value, str) and _long(value):
        return _text_lines(value)
    return [json.dumps(value, ensure_ascii=False)]


def _tokens(value: int | None) -> str:
    return "unbounded" if value is None else f"≤ {value:,}"


def ceilings_note(change: Change) -> str | None:
    """What the run a create or replace starts may spend, "unbounded" where unset."""
    found = ceilings(change)
    if found is None:
        return None
    return (
        f"token ceilings: max_prompt_tokens {_tokens(found.prompt)}, "
        f"max_completion_tokens {_tokens(found.completion)}"
    )


def spend_line(plan: Plan) -> str | None:
    """The spend guard's total: what the plan's new runs may spend, or None if it makes none.

    The totals add up the ceilings that are set; "N unbounded" counts the runs that leave at
    least one unset, for which no total is a bound.
    """
    spend = plan_spend(plan)
    if not spend.runs:
        return None
    prompt = "unbounded" if spend.prompt_unbounded == spend.runs else f"≤ {spend.prompt:,}"
    completion = (
        "unbounded" if spend.completion_unbounded == spend.runs else f"≤ {spend.completion:,}"
    )
    runs = "the run" if spend.runs == 1 else f"the {spend.runs:,} runs"
    tail = f"; {spend.unbounded:,} unbounded" if spend.unbounded and spend.runs > 1 else ""
    return f"Token ceilings of {runs} to create: prompt {prompt}, completion {completion}{tail}."
