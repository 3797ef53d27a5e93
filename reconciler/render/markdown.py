"""The plan as pull-request comments: one Markdown document, or numbered comments that fit.

The summary line comes first, outside any fold; the drift has a section of its own, then each
thread a collapsible section with ``diff`` blocks (GitHub colours ``+``/``-`` lines, so field
changes are ``-``/``+`` pairs rather than arrows). Hosts refuse long comments (GitHub above
65,536 characters), so :func:`render_markdown_comments` packs the sections into numbered
comments, each valid Markdown on its own: a section cut between two comments is closed in the
first and opened again, "(continued)", in the next. With ``max_comments`` the last comment
says what was left out and where the whole plan is. These are the lessons of Atlantis, which
posted nothing for long plans (runatlantis/atlantis#55), then split them blindly (#66), then
had to cap the number of comments (#3905).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass

from reconciler.planning import Plan
from reconciler.render._diff import partial_note, spend_line, summary_line, unchanged_line
from reconciler.render._sections import (
    CLOSING,
    TITLE_CHARS,
    Block,
    Redact,
    Section,
    code,
    escape,
    plan_sections,
    size,
)

__all__ = ["COMMENT_LIMIT", "MIN_LIMIT", "render_markdown", "render_markdown_comments"]

#: GitHub's limit for one comment; comments are measured in bytes of UTF-8, which are never
#: fewer than the characters however a host counts them.
COMMENT_LIMIT = 65_536
#: The smallest limit that leaves room for a header and a block of diff.
MIN_LIMIT = 4_096
#: Room kept in every comment for the opening of a section (its title).
_OPENING_ROOM = 1_024
_MANY = 999_999
_NOTE_CHARS = 800


def _same(text: str) -> str:
    return text


def render_markdown(plan: Plan, *, redact: Redact | None = None) -> str:
    """The whole plan as one Markdown document; when the plan fits in one comment, the same
    text as :func:`render_markdown_comments` gives. ``redact`` masks secrets before any
    value is cut."""
    clean = redact or _same
    sections = plan_sections(plan, budget=sys.maxsize, redact=clean)
    pieces = [_Piece(section, section.blocks, False) for section in sections]
    return _join([*_header(plan, 0, 1, None, clean), *map(_render, pieces)])


def render_markdown_comments(
    plan: Plan, *, limit: int = COMMENT_LIMIT, max_comments: int | None = None,
    saved_plan: str | None = None, redact: Redact | None = None,
) -> list[str]:
    """The plan as comments of at most ``limit`` bytes each, numbered "comment k of N".

    With ``max_comments``, at most that many: the last then says what is not shown and
    points to ``saved_plan`` (the ``--out`` file) when there is one.
    """
    if limit < MIN_LIMIT:
        raise ValueError(f"a comment limit below {MIN_LIMIT:,} bytes leaves no room for a plan")
    if max_comments is not None and max_comments < 1:
        raise ValueError("max_comments must be at least 1")
    clean = redact or _same
    footer = 0
    if max_comments is not None:
        longest = max((size(c.address) for c in plan.changes), default=0)  # bytes
        worst = _left_out_note(_MANY, _MANY, _MANY, "x" * max(longest, TITLE_CHARS), _MANY,
                               saved_plan)
        footer = size(worst) + 2  # redaction only ever shortens it
    cut_reserve = _MANY if max_comments is not None else None
    rooms = (
        limit - size("\n\n".join(_header(plan, 0, _MANY, cut_reserve, clean))) - footer - 1,
        limit - size("\n\n".join(_header(plan, _MANY - 1, _MANY, None, clean))) - footer - 1,
    )
    budget = min(rooms) - _OPENING_ROOM - size(CLOSING) - 8
    sections = plan_sections(plan, budget=budget, redact=clean)
    parts = _Packer(rooms).pack(sections)
    cut = max_comments is not None and len(parts) > max_comments
    kept = parts[:max_comments] if cut else parts
    count = len(kept)
    comments = []
    for index, pieces in enumerate(kept):
        chunks = [*_header(plan, index, count, count if cut else None, clean),
                  *map(_render, pieces)]
        if cut and index == count - 1:
            chunks.append(clean(_left_out(sections, kept, saved_plan)))
        comments.append(_join(chunks))
    return comments


def _header(plan: Plan, index: int, count: int, cut_to: int | None, redact: Redact
            ) -> list[str]:
    """The summary line first, the project and numbering; in the first comment the notes."""
    numbering = f" · comment {index + 1} of {count}" if count > 1 else ""
    chunks = [
        f"**{summary_line(plan)}**",
        f"Reconciler plan for project {code(plan.options.project)}{numbering}.",
    ]
    if index == 0:
        note = partial_note(plan)
        if note:  # it names every --target: cut (once redacted) to keep the header small
            note = redact(note)
            note = note if len(note) <= _NOTE_CHARS else note[:_NOTE_CHARS] + "…"
            chunks.append(f"> **Note:** {escape(note)}")
        if cut_to is not None:
            chunks.append(
                f"> **Note:** this plan does not fit in {cut_to:,} "
                f"comment{'s' if cut_to != 1 else ''} (`--max-comments`): the last one says "
                "what is not shown."
            )
        unchanged = unchanged_line(plan)
        if unchanged:
            chunks.append(f"_{escape(unchanged)}_")
        spend = spend_line(plan)
        if spend:
            chunks.append(escape(spend))
    return [redact(chunk) for chunk in chunks]


def _left_out(sections: Sequence[Section], kept: Sequence[Sequence[_Piece]],
              saved_plan: str | None) -> str:
    """The last comment's note: what the comments cut by ``max_comments`` would have shown."""
    shown = {id(block) for pieces in kept for piece in pieces for block in piece.blocks}
    runs: list[str] = []
    drift: list[str] = []
    threads = 0
    for section in sections:
        missing = list(dict.fromkeys(b.address for b in section.blocks if id(b) not in shown))
        if section.kind == "drift":
            drift.extend(missing)
        elif missing:
            runs.extend(missing)
            threads += 1
    first = (runs or drift)[0]
    return _left_out_note(len(runs), threads, len(drift), first, len(kept), saved_plan)


def _left_out_note(runs: int, threads: int, drift: int, first: str, count: int,
                   saved_plan: str | None) -> str:
    what = []
    if runs:
        what.append(f"{runs:,} run{'s' if runs != 1 else ''} on {threads:,} "
                    f"thread{'s' if threads != 1 else ''}")
    if drift:
        what.append(f"the changes made outside reconciler to {drift:,} "
                    f"run{'s' if drift != 1 else ''}")
    where = (
        f"The whole plan is saved in {code(saved_plan)}: `reconciler show "
        f"{_shell_word(saved_plan)}` prints it."
        if saved_plan else
        "Save the whole plan with `reconciler plan --out FILE` and print it with "
        "`reconciler show FILE`."
    )
    return (
        f"**Not shown:** {' and '.join(what)}, from {code(first)} on: the plan is cut to "
        f"{count:,} comment{'s' if count != 1 else ''}. {where}"
    )


def _shell_word(path: str) -> str:
    """A path as one shell word, without backticks (it sits inside inline code)."""
    safe = path.replace("`", "")
    if safe and all(c.isalnum() or c in "._-/+=:@%," for c in safe):
        return safe
    return "'" + safe.replace("'", "'\\''") + "'"


@dataclass(frozen=True)
class _Piece:
    """A section, or the part of it one comment holds."""

    section: Section
    blocks: tuple[Block, ...]
    continued: bool


def _render(piece: _Piece) -> str:
    return "\n\n".join(
        [piece.section.opening(piece.continued), *(b.text for b in piece.blocks), CLOSING]
    )


def _piece_size(section: Section, blocks: Sequence[Block], continued: bool) -> int:
    """Bytes of the piece as :func:`_render` joins it, and the separator before it."""
    inner = sum(size(b.text) + 2 for b in blocks)
    return 2 + size(section.opening(continued)) + inner + 2 + size(CLOSING)


def _join(chunks: Sequence[str]) -> str:
    return "\n\n".join(chunks) + "\n"


class _Packer:
    """Fills comments with sections in order: a section that fits whole in a fresh comment is
    never split; a larger one is split between blocks, its title repeated "(continued)"."""

    def __init__(self, rooms: tuple[int, int]) -> None:
        self.rooms = rooms  # bytes for pieces in the first comment, and in the others
        self.parts: list[list[_Piece]] = [[]]
        self.used = 0

    def room(self) -> int:
        return self.rooms[0 if len(self.parts) == 1 else 1] - self.used

    def pack(self, sections: Sequence[Section]) -> list[list[_Piece]]:
        for section in sections:
            self._section(section)
        return [part for part in self.parts if part] or [[]]

    def _add(self, piece: _Piece) -> None:
        self.parts[-1].append(piece)
        self.used += _piece_size(piece.section, piece.blocks, piece.continued)

    def _next(self) -> None:
        self.parts.append([])
        self.used = 0

    def _section(self, section: Section) -> None:
        whole = _piece_size(section, section.blocks, False)
        if whole > self.room() and self.parts[-1] and whole <= self.rooms[1]:
            self._next()
        if whole <= self.room():
            self._add(_Piece(section, section.blocks, False))
            return
        blocks, start, continued = section.blocks, 0, False
        while start < len(blocks):
            room = self.room() - _piece_size(section, (), continued)
            end = start
            while end < len(blocks) and size(blocks[end].text) + 2 <= room:
                room -= size(blocks[end].text) + 2
                end += 1
            if end > start:
                self._add(_Piece(section, blocks[start:end], continued))
                continued, start = True, end
            elif not self.parts[-1]:  # cannot happen: no block is larger than the budget
                raise ValueError(f"a block of {blocks[start].address} does not fit a comment")
            if start < len(blocks):
                self._next()
