"""Views of ``reconciler status``: a table per thread for people, a documented JSON for tools.

The JSON's shape is ``schemas/status.schema.json`` (``report: "status"``, version 1.0).
Times are UTC in one format, ``2026-01-02T03:04:05Z``. Names come from run metadata that
anyone may have edited, so the text view shows control characters escaped.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from reconciler.status import ProjectStatus, Role, RunEntry

__all__ = ["STATUS_REPORT_VERSION", "render_status", "status_to_dict"]

#: Version of the JSON shape (``schemas/status.schema.json``): additions keep it, changes bump it.
STATUS_REPORT_VERSION = "1.0"
STATUS_FORMATS = ("text", "json")

_HEADERS = ("NAME", "RUN", "STATUS", "GEN", "CREATED", "ROLE")
_YES_NO = {True: "yes", False: "no", None: ""}


def timestamp(seconds: int) -> str:
    """The one format for times the tool shows: UTC, to the second."""
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def render_status(status: ProjectStatus, fmt: str) -> str:
    """The status in one of :data:`STATUS_FORMATS`."""
    if fmt == "json":
        return json.dumps(status_to_dict(status), indent=2, sort_keys=True)
    return render_status_text(status)


def status_to_dict(status: ProjectStatus) -> dict[str, Any]:
    """The JSON-compatible form, as ``schemas/status.schema.json`` describes it."""
    return {
        "report": "status",
        "report_version": STATUS_REPORT_VERSION,
        "project": status.project,
        "declarations_known": status.declarations_known,
        "summary": {
            "threads": len(status.threads),
            "runs": len(status.runs),
            **{role.value: status.count(role) for role in Role},
            "undeclared": status.undeclared,
            "missing": status.missing,
        },
        "threads": [
            {
                "thread_id": thread.thread_id,
                "runs": [_run_to_dict(run) for run in thread.runs],
                "missing": list(thread.missing),
            }
            for thread in status.threads
        ],
    }


def _run_to_dict(run: RunEntry) -> dict[str, Any]:
    return {
        "name": run.name,
        "run_id": run.run_id,
        "status": run.status,
        "generation": run.generation,
        "created_at": timestamp(run.created_at),
        "role": run.role.value,
        "declared": run.declared,
    }


def render_status_text(status: ProjectStatus) -> str:
    """A table per thread, columns aligned across threads, then a one-line summary."""
    headers = _HEADERS + (("DECLARED",) if status.declarations_known else ())
    tables = [[_row(run, status.declarations_known) for run in t.runs] for t in status.threads]
    every = [headers, *(row for table in tables for row in table)]
    widths = [max(len(text) for text in column) for column in zip(*every, strict=True)]
    out = [f'Managed runs of project "{_shown(status.project)}":']
    for thread, table in zip(status.threads, tables, strict=True):
        out += ["", _shown(thread.thread_id)]
        if table:
            out += [_line(row, widths) for row in (headers, *table)]
        else:
            out.append("  no managed runs")
        if thread.missing:
            names = ", ".join(_shown(name) for name in thread.missing)
            out.append(f"  declared, with no managed run yet: {names}")
    out += ["", summary_line(status)]
    return "\n".join(out) + "\n"


def _row(run: RunEntry, declarations_known: bool) -> tuple[str, ...]:
    cells = (
        _shown(run.name), _shown(run.run_id), _shown(run.status), str(run.generation),
        timestamp(run.created_at), run.role.value,
    )
    return cells + ((_YES_NO[run.declared],) if declarations_known else ())


def _line(cells: tuple[str, ...], widths: list[int]) -> str:
    padded = [
        cell.rjust(width) if index == 3 else cell.ljust(width)  # GEN is a number
        for index, (cell, width) in enumerate(zip(cells, widths, strict=True))
    ]
    return ("  " + "  ".join(padded)).rstrip()


def summary_line(status: ProjectStatus) -> str:
    """How many managed runs, by role, and what the manifests say of them."""
    runs, threads = len(status.runs), len(status.threads)
    text = (
        f"{runs} managed run{'s' if runs != 1 else ''} on {threads} "
        f"thread{'s' if threads != 1 else ''}: {status.count(Role.CURRENT)} current, "
        f"{status.count(Role.OLDER)} older, {status.count(Role.TWIN)} "
        f"twin{'s' if status.count(Role.TWIN) != 1 else ''}"
    )
    if status.declarations_known:
        text += (
            f"; {status.undeclared} no longer declared, {status.missing} declared with no "
            "managed run yet"
        )
    return text + "."


def _shown(text: str) -> str:
    """``text`` with control characters escaped, so no value can move the cursor."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text)
