"""The plan's Markdown in pieces: one collapsible section per thread, and one for the drift.

Every piece is balanced Markdown on its own (each fence and ``<details>`` it opens, it closes),
so :mod:`reconciler.render.markdown` can lay the pieces out as one document or pack them into
numbered comments. A run whose diff is too large for one comment becomes several blocks, each
with its own fence. Long values are cut to a few lines and named by their length and a short
hash. Every line goes through the redactor *before* it is cut: a cut must never leave part of
a secret that the redactor would no longer recognise.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from reconciler.changes import (
    Action,
    Change,
    Create,
    Drift,
    FieldChange,
    Replace,
    SubmitToolOutputs,
)
from reconciler.model import JSON
from reconciler.planning import Plan
from reconciler.render._diff import (
    KNOWN_AFTER,
    Line,
    ceilings_note,
    create_entries,
    field_lines,
    headline,
    is_warning,
    notes,
    reason_text,
    run_text,
    value_lines,
)

__all__ = [
    "CLOSING",
    "Block",
    "Redact",
    "Section",
    "code",
    "escape",
    "plan_sections",
    "size",
]

#: How the secrets of this process are masked (``Redactor.redact``); the identity by default.
Redact = Callable[[str], str]

#: One field shows at most this many diff lines and characters; a longer one is cut.
FIELD_LINES = 40
FIELD_CHARS = 4_000
#: One diff line or bullet shows at most this many characters.
LINE_CHARS = 400
#: A thread id in a section's title shows at most this many characters.
TITLE_CHARS = 100
ELLIPSIS = "…"
FORCES = "  # forces replacement"
CLOSING = "</details>"
#: The words a section's title counts changes in, in the summary line's order.
_COUNTS = (
    (Action.CREATE, "to create"),
    (Action.MODIFY, "to modify"),
    (Action.REPLACE, "to replace"),
    (Action.CANCEL, "to cancel"),
    (Action.SUBMIT_TOOL_OUTPUTS, "to answer"),
)
#: The mark of a run that needs attention but has no action planned.
ATTENTION = "?"


@dataclass(frozen=True)
class Block:
    """Balanced Markdown about one run (all of it, or one part of its diff)."""

    text: str
    address: str


@dataclass(frozen=True)
class Section:
    """A ``<details>`` section: ``title`` is its summary (HTML), ``kind`` "drift" or "thread"."""

    title: str
    blocks: tuple[Block, ...]
    kind: str
    expanded: bool = False

    def opening(self, continued: bool) -> str:
        title = self.title + (" (continued)" if continued else "")
        return f"<details{' open' if self.expanded else ''}><summary>{title}</summary>"


def size(text: str) -> int:
    """Bytes of UTF-8: never fewer than the characters, however a host counts them."""
    return len(text.encode("utf-8"))


def plan_sections(plan: Plan, *, budget: int, redact: Redact) -> list[Section]:
    """The drift section (if any), then one section per thread with changes to show.

    No block is larger than ``budget`` bytes (a run's diff is split to fit).
    """
    sections: list[Section] = []
    drifted = plan.drifted
    if drifted:
        blocks = [
            block for change in drifted for drift in change.drift
            for block in _drift_blocks(change, drift, budget, redact)
        ]
        title = (
            "<b>Changes outside reconciler since the last apply</b> "
            f"({len(drifted)} run{'s' if len(drifted) != 1 else ''})"
        )
        sections.append(Section(title, tuple(blocks), "drift", expanded=True))
    threads: dict[str, list[Change]] = {}
    for change in plan.changes:
        if change.action is not Action.NOOP or is_warning(change):
            threads.setdefault(change.thread_id, []).append(change)
    for thread_id, changes in threads.items():
        blocks = [block for change in changes for block in _run_blocks(change, budget, redact)]
        sections.append(Section(_thread_title(thread_id, changes, redact), tuple(blocks), "thread"))
    return sections


def _thread_title(thread_id: str, changes: Sequence[Change], redact: Redact) -> str:
    counts = [
        f"{n} {words}" for action, words in _COUNTS
        if (n := sum(1 for c in changes if c.action is action))
    ]
    attention = sum(1 for c in changes if is_warning(c))
    if attention:
        counts.append(f"{attention} need{'s' if attention == 1 else ''} attention")
    shown = _cut(redact(thread_id), TITLE_CHARS)
    return f"<code>{_html(shown)}</code>: {', '.join(counts)}"


def _mark(change: Change) -> str:
    return change.action.mark if change.action is not Action.NOOP else ATTENTION


def _run_blocks(change: Change, budget: int, redact: Redact) -> list[Block]:
    address = change.address
    first = redact(f"{code(_mark(change))} {code(address)}")
    head = first + redact(escape(headline(change).removeprefix(address)))
    bullets = _bullets(change)
    if bullets:  # redacted before they are cut, as every value is
        head += "\n\n" + "\n".join(f"- {_cut(redact(b))}" for b in bullets)
    again = f"{first} (continued)"
    return _blocks(head, again, _run_lines(change, redact), budget, address)


def _bullets(change: Change) -> list[str]:
    """Why, what forces a replace, the live run, where it was declared, ordering notes."""
    bullets: list[str] = []
    why = reason_text(change)
    if why:
        bullets.append(f"Why: {escape(why)}.")
    if isinstance(change.payload, Replace) and change.payload.forces_replace:
        forces = ", ".join(code(f) for f in change.payload.forces_replace)
        bullets.append(f"Forces replacement: {forces}.")
    run = run_text(change)
    if run:
        bullets.append(f"Live run: {code(run)}.")
    if change.source:
        bullets.append(f"Declared at {code(change.source)}.")
    bullets.extend(escape(n[:1].upper() + n[1:]) + "." for n in notes(change))
    ceiling = ceilings_note(change)
    if ceiling:
        bullets.append(escape(ceiling[:1].upper() + ceiling[1:]) + ".")
    return bullets


def _run_lines(change: Change, redact: Redact) -> list[Line]:
    """The run's diff, one field at a time so that each long value is folded on its own."""
    payload = change.payload
    groups: list[list[Line]] = []
    if isinstance(payload, Create):
        for path, value, known in create_entries(payload.create_request):
            if known:
                groups.append(fold(value_lines("+", path, value), [value], redact))
            else:
                groups.append([Line("+", f"{path}: {KNOWN_AFTER}")])
    forces = set(payload.forces_replace) if isinstance(payload, Replace) else set()
    for field_change in change.field_changes:
        lines = fold(field_lines(field_change, arrows=False), _values(field_change), redact)
        if field_change.path in forces and lines:
            lines[0] = Line(lines[0].sign, lines[0].text + FORCES, lines[0].depth)
        groups.append(lines)
    if isinstance(payload, SubmitToolOutputs):
        for output in payload.tool_outputs:
            lines = value_lines("+", f"output for {output.tool_call_id}", output.output)
            groups.append(fold(lines, [output.output], redact))
    return [line for group in groups for line in group]


def _drift_blocks(change: Change, drift: Drift, budget: int, redact: Redact) -> list[Block]:
    address = change.address
    head = f"{code(address)}: {escape(drift.message)}"
    lines = [
        line for f in drift.fields
        for line in fold(field_lines(f, arrows=False), _values(f), redact)
    ]
    return _blocks(_cut(redact(head)), redact(f"{code(address)} (continued)"), lines, budget,
                   address)


def _values(change: FieldChange) -> list[JSON]:
    """The values a field change shows, for the note of a cut: before, then after."""
    values: list[JSON] = []
    if change.known_before and change.before is not None:
        values.append(change.before)
    if change.known_after and change.after is not None:
        values.append(change.after)
    return values


def fold(lines: Sequence[Line], values: Sequence[JSON], redact: Redact) -> list[Line]:
    """One field's lines, redacted, then cut to :data:`FIELD_LINES` lines and
    :data:`FIELD_CHARS` characters (each line to :data:`LINE_CHARS`); a cut ends with a line
    giving each whole value's length and short hash."""
    kept: list[Line] = []
    used = 0
    cut = False
    for line in lines:
        text = redact(line.text)
        if len(text) > LINE_CHARS:
            text, cut = text[:LINE_CHARS] + ELLIPSIS, True
        if len(kept) >= FIELD_LINES or used + len(text) > FIELD_CHARS:
            cut = True
            break
        kept.append(Line(line.sign, text, line.depth))
        used += len(text)
    if cut:
        depth = (kept[0].depth + 1) if kept else 0
        kept.append(Line(" ", f"{ELLIPSIS} ({describe_values(values)})", depth))
    return kept


def describe_values(values: Sequence[JSON]) -> str:
    """``8,214 characters, sha256 1a2b3c4d`` per value (``before: …; after: …`` for two)."""
    described = [f"{len(t):,} characters, sha256 {_short_hash(t)}" for t in map(_text, values)]
    if len(described) == 2:
        return f"before: {described[0]}; after: {described[1]}"
    return "; ".join(described)


def _text(value: JSON) -> str:
    """A value as the hash covers it: a string as it is, anything else as compact JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def _short_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:8]


def _blocks(head: str, again: str, lines: Sequence[Line], budget: int, address: str
            ) -> list[Block]:
    """``head`` and a ``diff`` block of ``lines``, split into blocks of at most ``budget``
    bytes when they do not fit; the later blocks start with ``again``."""
    if not lines:
        return [Block(head, address)]
    body = [_diff_line(line) for line in lines]
    fence = "`" * max(3, _longest_backtick_run(body) + 1)
    fixed = 2 * size(fence) + len("diff") + 4  # "\n\n", the fences, two newlines
    blocks: list[Block] = []
    chunk: list[str] = []
    prefix, used = head, 0
    for text in body:
        grown = used + size(text) + 1
        if chunk and size(prefix) + fixed + grown > budget:
            blocks.append(Block(_fenced(prefix, fence, chunk), address))
            prefix, chunk, grown = again, [], size(text) + 1
        chunk.append(text)
        used = grown
    blocks.append(Block(_fenced(prefix, fence, chunk), address))
    return blocks


def _fenced(prefix: str, fence: str, body: Sequence[str]) -> str:
    return "\n".join((f"{prefix}\n\n{fence}diff", *body, fence))


def _diff_line(line: Line) -> str:
    pad = "    " * line.depth
    if line.sign == "@":
        return f"{pad}{line.text}"
    sign = "!" if line.sign == "~" else line.sign  # GitHub colours "!" as changed
    return f"{sign} {pad}{line.text}"


def _longest_backtick_run(texts: Iterable[str]) -> int:
    return max((len(m) for t in texts for m in re.findall(r"`+", t)), default=0)


def _cut(text: str, limit: int = 2 * LINE_CHARS) -> str:
    return text if len(text) <= limit else text[:limit] + ELLIPSIS


def code(text: str) -> str:
    """Inline code that survives backticks (and pipes) in the text."""
    ticks = "`" * (_longest_backtick_run([text]) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{ticks}{pad}{_cell(text) if '|' in text else text}{pad}{ticks}"


def _cell(text: str) -> str:
    return text.replace("\n", " ").replace("|", "\\|")


def escape(text: str) -> str:
    """Text from the plan as Markdown that shows it literally (newlines become spaces)."""
    return re.sub(r"([\\`*_{}\[\]<>|#])", r"\\\1", text.replace("\r", " ").replace("\n", " "))


def _html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
