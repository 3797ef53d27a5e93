"""Choosing the runs of a thread an export declares, and each one's manifest entry.

Pure, over runs read as planning reads them (:func:`reconciler.runs.run_from_api`): the
current run of each managed name, the newest unmanaged run (or every run), and for each the
echoed fields a manifest can declare in the form its recorded digest took.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from reconciler import identity
from reconciler.manifest import API_VERSION, KIND, Document, check_document
from reconciler.model import (
    CANCELLED_STATUSES,
    CREATE_ONLY_FIELDS,
    JSON,
    RUN_FIELDS,
    LiveRun,
    SourceLocation,
)
from reconciler.runs import MalformedRunError, run_from_api
from reconciler.timestamps import utc_timestamp

__all__ = ["ECHOED_FIELDS", "Exported", "Skipped", "ThreadExport", "run_name_for", "select_thread"]

#: ``CreateRunRequest`` fields the API echoes on the run object: the ones an export can write.
ECHOED_FIELDS: tuple[str, ...] = tuple(
    f for f in RUN_FIELDS if f not in CREATE_ONLY_FIELDS and f != "metadata"
)

_NAME_MAX = 48
_NAME_ID_CHARS = 12
_NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9-]*\Z")
_PLACEHOLDER_NAME = "x"


@dataclass(frozen=True)
class Skipped:
    """A run the export leaves out, and why (a person decides what to do about it)."""

    thread_id: str
    run_id: str
    reason: str


@dataclass(frozen=True)
class Exported:
    """One run chosen for export, before it is written: its manifest entry and notes."""

    live: LiveRun
    name: str
    fields: Mapping[str, JSON]
    managed: bool
    comments: tuple[str, ...]


@dataclass(frozen=True)
class ThreadExport:
    thread_id: str
    runs: tuple[Exported, ...]
    skipped: tuple[Skipped, ...] = field(default_factory=tuple)


def run_name_for(run_id: str) -> str:
    """The manifest name of an unmanaged run: ``run-`` and the id's last 12 characters.

    Real ids are ``run_`` and 24 random characters; the prefix is dropped from shorter ones.
    """
    tail = run_id.removeprefix("run_")[-_NAME_ID_CHARS:].lower()
    tail = re.sub(r"[^a-z0-9]+", "-", tail).strip("-")
    return f"run-{tail}" if tail else "run"


def select_thread(
    thread_id: str,
    objects: Sequence[Mapping[str, Any]],
    *,
    project: str,
    latest_only: bool,
) -> ThreadExport:
    """The runs of one thread worth exporting, oldest first, and those left out."""
    skipped: list[Skipped] = []
    managed: dict[str, list[LiveRun]] = {}
    unmanaged: list[LiveRun] = []
    for run in _read_runs(thread_id, objects, skipped):
        owner = run.metadata.get(identity.KEY_PROJECT)
        if identity.is_managed_by(run.metadata, project):
            managed.setdefault(run.metadata[identity.KEY_NAME], []).append(run)
        elif owner and owner != project:
            skipped.append(Skipped(thread_id, run.id, f"managed by another project ({owner!r})"))
        else:
            unmanaged.append(run)
    chosen = _chosen(thread_id, managed, skipped, latest_only=latest_only)
    chosen.extend((run, None) for run in (unmanaged[:1] if latest_only else unmanaged))

    taken = {name for _, name in chosen if name is not None}
    exported: list[Exported] = []
    for run, managed_name in sorted(chosen, key=lambda item: _created(item[0])):
        if managed_name is None:
            run_name = _unique_name(run_name_for(run.id), taken)
            taken.add(run_name)
        else:
            run_name = managed_name
        result = _export_run(run, run_name, managed=managed_name is not None)
        if isinstance(result, Skipped):
            skipped.append(result)
        else:
            exported.append(result)
    return ThreadExport(thread_id, tuple(exported), tuple(skipped))


def _read_runs(
    thread_id: str, objects: Sequence[Mapping[str, Any]], skipped: list[Skipped]
) -> list[LiveRun]:
    """The thread's runs read as planning reads them, newest first; unreadable ones skipped."""
    runs: list[LiveRun] = []
    for obj in objects:
        try:
            runs.append(run_from_api(obj, thread_id))
        except MalformedRunError as exc:
            run_id = obj.get("id")
            skipped.append(Skipped(thread_id, run_id if isinstance(run_id, str) else "",
                                   exc.api_message))
    runs.sort(key=_created, reverse=True)
    return runs


def _chosen(
    thread_id: str, managed: Mapping[str, list[LiveRun]], skipped: list[Skipped],
    *, latest_only: bool,
) -> list[tuple[LiveRun, str | None]]:
    """The current run of each managed name (the name belongs to it, as planning decides)."""
    chosen: list[tuple[LiveRun, str | None]] = []
    for name, found in managed.items():
        runs = sorted(found, key=_recency, reverse=True)
        if not _NAME_PATTERN.match(name) or len(name) > _NAME_MAX:
            skipped.extend(
                Skipped(thread_id, run.id, f"its recorded name {name!r} is not a valid run name")
                for run in runs
            )
            continue
        chosen.append((runs[0], name))
        if not latest_only:
            skipped.extend(
                Skipped(thread_id, run.id, f"an older run named {name!r}: the manifest "
                        f"declares the newest, {runs[0].id}")
                for run in runs[1:]
            )
    return chosen


def _recency(run: LiveRun) -> tuple[int, int, str, str]:
    """Newest first as planning chooses the current run: by the recorded generation."""
    return identity.recency(run.metadata, run.created_at, run.id)


def _created(run: LiveRun) -> tuple[int, str]:
    """Sort key in creation order, as planning orders a thread's runs."""
    return (run.created_at, run.id)


def _unique_name(base: str, taken: set[str]) -> str:
    base = base[:_NAME_MAX]
    name, counter = base, 2
    while name in taken:
        suffix = f"-{counter}"
        name = base[: _NAME_MAX - len(suffix)] + suffix
        counter += 1
    return name


def _export_run(run: LiveRun, name: str, *, managed: bool) -> Exported | Skipped:
    """One run's manifest entry; a run no manifest could declare is skipped, with the reason."""
    comments = [_describe(run)]
    recorded: dict[str, str] = {}
    revision = 0
    if managed:
        record = identity.decode_spec(run.metadata.get(identity.KEY_SPEC, ""))
        recorded, revision = dict(record.fields), record.revision or 0
        lost = sorted(f for f in recorded if f in CREATE_ONLY_FIELDS)
        if lost:
            comments.append(
                f"created with {' and '.join(lost)}, which the API never echoes: not exported "
                "(add it back by hand if you still want it: that would replace the run)"
            )
    else:
        comments.append(
            "not exportable: additional_instructions, additional_messages (never echoed)"
        )
    fields = _exported_fields(run, recorded, comments, managed=managed)
    if "assistant_id" not in fields:
        return Skipped(run.thread_id, run.id,
                       "it has no valid assistant_id, which a manifest needs")
    user = identity.user_metadata(run.metadata)
    if user:
        problem = _field_problem("metadata", user)
        if problem is not None:
            return Skipped(run.thread_id, run.id, f"its metadata cannot be adopted: {problem}")
        fields["metadata"] = dict(user)
    if run.status in CANCELLED_STATUSES:
        fields["state"] = "cancelled"
    if revision:
        fields["revision"] = revision
    functions = sorted({call.function_name for call in run.pending_tool_calls} - {""})
    if functions:
        comments.append(
            f"waits for answers to {', '.join(functions)}: add tool_outputs to answer them"
        )
    return Exported(run, name, fields, managed, tuple(comments))


def _exported_fields(
    run: LiveRun, recorded: Mapping[str, str], comments: list[str], *, managed: bool
) -> dict[str, JSON]:
    """The echoed fields a manifest can declare, each in the form its recorded digest took."""
    fields: dict[str, JSON] = {}
    for name in ECHOED_FIELDS:
        value = run.fields.get(name)
        if value is None:
            continue
        if managed and recorded and name not in recorded:
            continue  # filled in by the server: the manifest that created the run left it unset
        value = _best_value(name, value, recorded.get(name))
        problem = _field_problem(name, value)
        if problem is not None:
            comments.append(f"{name} not exported: {problem}")
            continue
        fields[name] = value
    return fields


def _describe(run: LiveRun) -> str:
    """The comment line naming the run an entry came from."""
    parts = [_one_line(run.id), _one_line(run.status)]
    created = run.created_at
    if created > 0:
        if created < _LAST_SECOND:
            parts.append(f"created {utc_timestamp(created)}")
        else:  # milliseconds, or nonsense: shown as the server sent it
            parts.append(f"created_at {created} (not a Unix time in seconds)")
    return ", ".join(parts)


#: 9999-12-31T23:59:59Z + 1 s: a later ``created_at`` is not seconds since the epoch.
_LAST_SECOND = 253_402_300_800
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]+")


def _one_line(value: object, limit: int = 120) -> str:
    """Server text written into a comment: one line, no control characters, bounded."""
    text = _CONTROL.sub(" ", str(value)).strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _best_value(name: str, value: JSON, recorded_digest: str | None) -> JSON:
    """The echoed value, tidied; for a managed run, the form whose digest was recorded.

    The API echoes ``truncation_strategy`` with ``last_messages: null``, which a manifest
    would leave out; either form means the same, but only one hashes as the run was created.
    """
    tidy = value
    if name == "truncation_strategy" and isinstance(value, Mapping):
        tidy = {k: v for k, v in value.items() if v is not None}
    if recorded_digest is not None:
        for candidate in (tidy, value):
            if identity.field_digests({name: candidate})[name] == recorded_digest:
                return candidate
    return tidy


def _field_problem(name: str, value: JSON) -> str | None:
    """What the manifest schema says against one field's value, or None when it is valid."""
    document = {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "runs": [{"name": _PLACEHOLDER_NAME, name: value}],
    }
    where = SourceLocation("export", 1, 1)
    problems = check_document(Document("export", document, where, {}, {}))
    if not problems:
        return None
    messages = [
        p.message.removeprefix(f"runs[0].{name}: ").removeprefix("runs[0].") for p in problems
    ]
    return "; ".join(messages)
