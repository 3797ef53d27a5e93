"""GitHub Actions workflow commands: annotations on manifest lines, and the plan in the log.

``validate --format github`` prints one ``::error`` per problem at its file, line and column;
``plan --format github`` prints the text plan in a collapsed log group, then a ``::notice``
(create, modify, submit tool outputs) or ``::warning`` (replace, cancel, needs attention) on
the line that declares each run, then the summary line. The text plan comes first because an
annotation only points at a line: the reviewer still needs the diff, and the log is where a
pipeline keeps it. It is printed between ``::stop-commands::`` and its token, so no text from
a manifest or the API (an instruction that reads ``::error::…``) can pass for a command; the
token is a hash of that text, which the text cannot contain. Data and properties are escaped
as the runner unescapes them (``%``, ``\\r``, ``\\n``; in properties also ``:`` and ``,``).
GitHub shows at most 10 annotations of each kind per step (50 per job); the log has them all.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from reconciler.changes import Action, Change
from reconciler.manifest import Problem
from reconciler.planning import Plan
from reconciler.render._diff import headline, is_warning, reason_text, summary_line

__all__ = [
    "escape_data",
    "escape_property",
    "plan_annotations",
    "problem_annotations",
    "render_github",
    "workflow_command",
]

_LEVELS = {
    Action.CREATE: "notice",
    Action.MODIFY: "notice",
    Action.SUBMIT_TOOL_OUTPUTS: "notice",
    Action.REPLACE: "warning",
    Action.CANCEL: "warning",
}


def escape_data(text: str) -> str:
    """A command's message: ``%``, carriage returns and newlines percent-encoded."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """A command's property value: as data, and ``:`` and ``,`` too."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def workflow_command(name: str, message: str, **properties: str | int | None) -> str:
    """``::name key=value,…::message``; properties that are None are left out."""
    given = ",".join(
        f"{key}={escape_property(str(value))}" for key, value in properties.items()
        if value is not None
    )
    return f"::{name}{' ' + given if given else ''}::{escape_data(message)}"


def problem_annotations(problems: Sequence[Problem]) -> str:
    """One ``::error`` per problem, sorted by place; a problem with the whole file gets no
    line or column."""
    lines = []
    for problem in sorted(problems, key=lambda p: p.sort_key):
        where = problem.location
        located = where.line > 0
        lines.append(workflow_command(
            "error", problem.message, file=where.file, line=where.line if located else None,
            col=where.column if located else None, title="reconciler validate",
        ))
    return "".join(f"{line}\n" for line in lines)


def plan_annotations(plan: Plan) -> list[str]:
    """A notice or warning for each run that changes or needs attention, at its declaration;
    runs no manifest declares any more are annotated without a location."""
    lines = []
    for change in plan.changes:
        level = _LEVELS.get(change.action) or ("warning" if is_warning(change) else None)
        if level is None:
            continue
        file, line, column = _source(change)
        action = "needs attention" if change.action is Action.NOOP else change.action.value
        why = reason_text(change)
        lines.append(workflow_command(
            level, headline(change) + (f": {why}" if why else ""), file=file, line=line,
            col=column, title=f"reconciler plan: {action.replace('_', ' ')}",
        ))
    return lines


def render_github(plan: Plan, text_plan: str) -> str:
    """The text plan in a log group where commands are off, the annotations, the summary."""
    body = text_plan.rstrip("\n")
    token = "reconciler-" + hashlib.sha256(body.encode("utf-8")).hexdigest()[:32]
    title = f'Reconciler plan for project "{plan.options.project}"'
    lines = [
        f"::group::{escape_data(title)}",
        f"::stop-commands::{token}",
        body,
        f"::{token}::",
        "::endgroup::",
        *plan_annotations(plan),
        summary_line(plan),
    ]
    return "\n".join(lines) + "\n"


def _source(change: Change) -> tuple[str | None, int | None, int | None]:
    """``file:line:col`` split from the right (a file name may hold colons)."""
    if not change.source:
        return None, None, None
    file, _, rest = change.source.rpartition(":")
    file, _, line = file.rpartition(":")
    if not file or not line.isdigit() or not rest.isdigit():
        return change.source, None, None
    return file, int(line), int(rest)
