"""Export: manifests that declare runs which already exist, and the metadata that adopts them.

Like ``terraform import`` plus generated configuration. Pure: API run objects in, manifest text
and the ``modifyRun`` metadata of each adoption out; the caller lists runs, writes files and
sends the modifications. The text is loaded back with :func:`load_manifests` before it is
returned, so an export is always a valid manifest, and each adoption records the spec exactly
as that manifest loads: after adopting, ``reconciler plan`` on the export shows no changes.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import yaml

from reconciler import identity
from reconciler.errors import ReconcilerError
from reconciler.manifest import (
    API_VERSION,
    KIND,
    Document,
    check_document,
    load_manifests,
    resolve_plain_scalar,
)
from reconciler.model import (
    CANCELLED_STATUSES,
    CREATE_ONLY_FIELDS,
    JSON,
    RUN_FIELDS,
    RunStatus,
    SourceLocation,
)

__all__ = [
    "DEFAULT_SCHEMA_REF",
    "ECHOED_FIELDS",
    "Adoption",
    "Export",
    "ExportError",
    "Skipped",
    "export_runs",
    "run_name_for",
]

#: Where the ``yaml-language-server`` line points editors, relative to a file in the repository
#: root's ``manifests/`` folder (as the examples do); the caller may pass another.
DEFAULT_SCHEMA_REF = "../schemas/manifest.schema.json"

#: ``CreateRunRequest`` fields the API echoes on the run object: the ones an export can write.
ECHOED_FIELDS: tuple[str, ...] = tuple(
    f for f in RUN_FIELDS if f not in CREATE_ONLY_FIELDS and f != "metadata"
)

_NAME_MAX = 48
_NAME_ID_CHARS = 12
_NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9-]*\Z")
#: Statuses that end (or are ending) in ``cancelled``: exported as ``state: cancelled``.
_PLACEHOLDER_NAME = "x"


class ExportError(ReconcilerError):
    """The generated manifest would not load: a bug, or run objects no manifest can declare."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        count = len(self.problems)
        listed = "; ".join(self.problems[:5]) + ("; …" if count > 5 else "")
        super().__init__(
            f"the exported manifest does not load ({count} problem{'s' if count != 1 else ''}):"
            f" {listed}"
        )


@dataclass(frozen=True)
class Adoption:
    """A ``modifyRun`` that makes a run managed: ``metadata`` is the whole map to send.

    ``managed`` runs are ours already; adopting them re-records the spec the export declares
    (it differs when the run was created with fields the API never echoes)."""

    thread_id: str
    run_id: str
    name: str
    metadata: Mapping[str, str]
    managed: bool = False


@dataclass(frozen=True)
class Skipped:
    """A run the export leaves out, and why (a person decides what to do about it)."""

    thread_id: str
    run_id: str
    reason: str


@dataclass(frozen=True)
class Export:
    """The manifest text, the adoptions it needs, the runs it left out, how many it declares."""

    text: str
    adoptions: tuple[Adoption, ...]
    skipped: tuple[Skipped, ...]
    runs: int


@dataclass(frozen=True)
class _Exported:
    """One run chosen for export, before it is written: its manifest entry and notes."""

    run_id: str
    thread_id: str
    name: str
    fields: Mapping[str, JSON]
    live_metadata: Mapping[str, str]
    managed: bool
    comments: tuple[str, ...]


@dataclass(frozen=True)
class _ThreadExport:
    thread_id: str
    runs: tuple[_Exported, ...]
    skipped: tuple[Skipped, ...] = field(default_factory=tuple)


def export_runs(
    runs_by_thread: Mapping[str, Sequence[Mapping[str, Any]]],
    *,
    project: str,
    latest_only: bool = True,
    exported_at: str = "",
    schema_ref: str = DEFAULT_SCHEMA_REF,
) -> Export:
    """A manifest declaring the given runs (one document per thread) and their adoptions.

    Purely computational, with no side effects: ``exported_at`` is the caller's clock reading,
    shown in the header. Runs of another project are skipped, never adopted. With
    ``latest_only`` only the newest run of each managed name, and the newest unmanaged run of
    each thread, are exported; otherwise every run (older runs of a managed name excepted:
    the name belongs to the newest, as planning decides).
    """
    threads = [
        _select_thread(thread_id, runs, project=project, latest_only=latest_only)
        for thread_id, runs in runs_by_thread.items()
    ]
    documents = [_render_document(thread) for thread in threads]
    exported = [run for thread in threads for run in thread.runs]
    skipped = tuple(s for thread in threads for s in thread.skipped)
    header = _header(
        project=project,
        exported_at=exported_at,
        schema_ref=schema_ref,
        threads=len(threads),
        runs=len(exported),
        to_adopt=sum(1 for run in exported if not run.managed),
        skipped=len(skipped),
    )
    text = header + "---\n".join(documents)

    loaded = load_manifests([("export.yaml", text)])
    if loaded.problems:
        raise ExportError([str(problem) for problem in loaded.problems])
    by_key = {run.key: run for run in loaded.runs}
    adoptions: list[Adoption] = []
    for run in exported:
        desired = by_key.get((run.thread_id, run.name))
        if desired is None:
            raise ExportError([f"run {run.run_id} was exported as {run.name!r} but did not load"])
        record = identity.decode_spec(run.live_metadata.get(identity.KEY_SPEC, ""))
        reserved = identity.reserved_metadata(
            project=project,
            name=desired.name,
            spec=desired.spec,
            revision=desired.revision,
            user_metadata=desired.metadata,
            generation=(record.generation or 1) if run.managed else 1,
        )
        if run.managed and record.attempt:  # the run keeps the id of the create that made it
            reserved[identity.KEY_SPEC] = identity.with_attempt(
                reserved[identity.KEY_SPEC], record.attempt
            )
        live_reserved = {k: run.live_metadata.get(k) for k in identity.RESERVED_KEYS}
        if not run.managed or live_reserved != reserved:
            adoptions.append(
                Adoption(run.thread_id, run.run_id, desired.name,
                         {**desired.metadata, **reserved}, managed=run.managed)
            )
    return Export(text=text, adoptions=tuple(adoptions), skipped=skipped, runs=len(exported))


def run_name_for(run_id: str) -> str:
    """The manifest name of an unmanaged run: ``run-`` and the id's last 12 characters.

    Real ids are ``run_`` and 24 random characters; the prefix is dropped from shorter ones.
    """
    tail = run_id.removeprefix("run_")[-_NAME_ID_CHARS:].lower()
    tail = re.sub(r"[^a-z0-9]+", "-", tail).strip("-")
    return f"run-{tail}" if tail else "run"


# --- choosing runs ------------------------------------------------------------------------


def _select_thread(
    thread_id: str,
    objects: Sequence[Mapping[str, Any]],
    *,
    project: str,
    latest_only: bool,
) -> _ThreadExport:
    """The runs of one thread worth exporting, oldest first, and those left out."""
    skipped: list[Skipped] = []
    managed: dict[str, list[Mapping[str, Any]]] = {}
    unmanaged: list[Mapping[str, Any]] = []
    for obj in sorted(objects, key=_created, reverse=True):
        run_id = obj.get("id")
        if not isinstance(run_id, str) or not run_id:
            skipped.append(Skipped(thread_id, "", "the server returned a run without an id"))
            continue
        metadata = _metadata_of(obj)
        owner = metadata.get(identity.KEY_PROJECT)
        if identity.is_managed_by(metadata, project):
            managed.setdefault(metadata[identity.KEY_NAME], []).append(obj)
            managed[metadata[identity.KEY_NAME]].sort(key=_recency, reverse=True)
        elif owner and owner != project:
            skipped.append(
                Skipped(thread_id, run_id, f"managed by another project ({owner!r})")
            )
        else:
            unmanaged.append(obj)

    chosen: list[tuple[Mapping[str, Any], str | None]] = []  # (run, managed name or None)
    for name, runs in managed.items():
        if not _NAME_PATTERN.match(name) or len(name) > _NAME_MAX:
            for obj in runs:
                skipped.append(
                    Skipped(thread_id, obj["id"], f"its recorded name {name!r} is not a valid "
                            "run name")
                )
            continue
        chosen.append((runs[0], name))
        if not latest_only:
            for obj in runs[1:]:
                skipped.append(
                    Skipped(thread_id, obj["id"], f"an older run named {name!r}: the manifest "
                            f"declares the newest, {runs[0]['id']}")
                )
    for obj in unmanaged[:1] if latest_only else unmanaged:
        chosen.append((obj, None))

    taken = {name for _, name in chosen if name is not None}
    exported: list[_Exported] = []
    for obj, managed_name in sorted(chosen, key=lambda item: _created(item[0])):
        if managed_name is None:
            run_name = _unique_name(run_name_for(obj["id"]), taken)
            taken.add(run_name)
        else:
            run_name = managed_name
        result = _export_run(thread_id, obj, run_name, managed=managed_name is not None)
        if isinstance(result, Skipped):
            skipped.append(result)
        else:
            exported.append(result)
    return _ThreadExport(thread_id, tuple(exported), tuple(skipped))


def _recency(obj: Mapping[str, Any]) -> tuple[int, int, str, str]:
    """Newest first as planning chooses the current run: by the recorded generation."""
    created = obj.get("created_at")
    return identity.recency(
        _metadata_of(obj), created if isinstance(created, int) else 0, str(obj.get("id", ""))
    )


def _created(obj: Mapping[str, Any]) -> tuple[int, str]:
    """Sort key in creation order, as planning orders a thread's runs."""
    created = obj.get("created_at")
    return (created if isinstance(created, int) else 0, str(obj.get("id", "")))


def _unique_name(base: str, taken: set[str]) -> str:
    base = base[:_NAME_MAX]
    name, counter = base, 2
    while name in taken:
        suffix = f"-{counter}"
        name = base[: _NAME_MAX - len(suffix)] + suffix
        counter += 1
    return name


def _metadata_of(obj: Mapping[str, Any]) -> dict[str, str]:
    raw = obj.get("metadata")
    return {str(k): str(v) for k, v in raw.items()} if isinstance(raw, Mapping) else {}


def _export_run(
    thread_id: str, obj: Mapping[str, Any], name: str, *, managed: bool
) -> _Exported | Skipped:
    """One run's manifest entry; a run no manifest could declare is skipped, with the reason."""
    run_id: str = obj["id"]
    metadata = _metadata_of(obj)
    user = identity.user_metadata(metadata)
    comments = [_describe(obj)]
    revision = 0
    recorded: dict[str, str] = {}
    if managed:
        record = identity.decode_spec(metadata.get(identity.KEY_SPEC, ""))
        recorded = dict(record.fields)
        revision = record.revision or 0
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

    fields: dict[str, JSON] = {}
    for name_ in ECHOED_FIELDS:
        value = obj.get(name_)
        if value is None:
            continue
        if managed and recorded and name_ not in recorded:
            continue  # filled in by the server: the manifest that created the run left it unset
        value = _best_value(name_, value, recorded.get(name_))
        problem = _field_problem(name_, value)
        if problem is not None:
            comments.append(f"{name_} not exported: {problem}")
            continue
        fields[name_] = value
    if "assistant_id" not in fields:
        return Skipped(thread_id, run_id, "it has no valid assistant_id, which a manifest needs")

    if user:
        problem = _field_problem("metadata", user)
        if problem is not None:
            return Skipped(thread_id, run_id, f"its metadata cannot be adopted: {problem}")
        fields["metadata"] = dict(user)
    status = obj.get("status")
    if status in CANCELLED_STATUSES:
        fields["state"] = "cancelled"
    if revision:
        fields["revision"] = revision
    if status == RunStatus.REQUIRES_ACTION:
        functions = sorted({call for call in _pending_functions(obj)})
        if functions:
            comments.append(
                f"waits for answers to {', '.join(functions)}: add tool_outputs to answer them"
            )
    return _Exported(
        run_id=run_id,
        thread_id=thread_id,
        name=name,
        fields=fields,
        live_metadata=metadata,
        managed=managed,
        comments=tuple(comments),
    )


def _describe(obj: Mapping[str, Any]) -> str:
    """The comment line naming the run an entry came from."""
    parts = [_one_line(obj["id"]), _one_line(obj.get("status", "unknown status"))]
    created = obj.get("created_at")
    if isinstance(created, int) and not isinstance(created, bool) and created > 0:
        if created < _LAST_SECOND:
            moment = datetime.fromtimestamp(created, tz=UTC)
            parts.append(f"created {moment.strftime('%Y-%m-%dT%H:%M:%SZ')}")
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


def _pending_functions(obj: Mapping[str, Any]) -> Iterable[str]:
    action = obj.get("required_action")
    submit = action.get("submit_tool_outputs") if isinstance(action, Mapping) else None
    calls = submit.get("tool_calls") if isinstance(submit, Mapping) else None
    for call in calls if isinstance(calls, list) else []:
        function = call.get("function") if isinstance(call, Mapping) else None
        if isinstance(function, Mapping) and isinstance(function.get("name"), str):
            yield function["name"]


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


# --- writing YAML ---------------------------------------------------------------------------


class _Dumper(yaml.SafeDumper):
    """Block style, ``|`` blocks for multi-line text, no anchors, and quotes where needed.

    PyYAML decides quoting by YAML 1.1, but manifests are read by YAML 1.2 rules (``09`` and
    ``1e5`` are numbers there): a string is quoted whenever the loader would read it
    otherwise.
    """

    def ignore_aliases(self, data: Any) -> bool:
        return True

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)  # lists indented under their key, as in the docs


def _represent_str(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    style: str | None = None
    if "\n" in data:
        style = "|"
    elif resolve_plain_scalar(data) != data or data != data.strip():
        style = "'"
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_Dumper.add_representer(str, _represent_str)


def _dump(value: JSON) -> str:
    text: str = yaml.dump(
        value,
        Dumper=_Dumper,
        default_flow_style=False,
        sort_keys=False,
        allow_unicode=True,
        width=1_000_000,
        indent=2,
    )
    return text


def _indent(text: str, prefix: str) -> str:
    """Shift YAML text right; empty lines stay empty (they may be inside a ``|`` block)."""
    return "".join(prefix + line if line.strip("\n") else line
                   for line in text.splitlines(keepends=True))


def _header(
    *,
    project: str,
    exported_at: str,
    schema_ref: str,
    threads: int,
    runs: int,
    to_adopt: int,
    skipped: int,
) -> str:
    exported_at = " ".join(exported_at.split())  # a comment line must stay one line
    when = f" at {exported_at}" if exported_at else ""
    lines = [
        f"# yaml-language-server: $schema={schema_ref}",
        "#",
        f"# Exported by `reconciler export`{when} for project {project!r}:",
        f"# {_count(runs, 'run')} from {_count(threads, 'thread')}, {to_adopt} not yet managed "
        f"by this project, {skipped} skipped.",
        "# A run not yet managed is adopted by writing reconciler's keys into its metadata;",
        "# until then, `reconciler plan` would create it anew.",
    ]
    return "\n".join(lines) + "\n"


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _render_document(thread: _ThreadExport) -> str:
    """One ``Runs`` document for one thread; ``assistant_id`` is a default when shared."""
    assistants = {run.fields.get("assistant_id") for run in thread.runs}
    shared = assistants.pop() if len(assistants) == 1 else None
    defaults: dict[str, JSON] = {"thread_id": thread.thread_id}
    if shared is not None:
        defaults["assistant_id"] = shared
    head = _dump({"apiVersion": API_VERSION, "kind": KIND, "defaults": defaults})
    lines = [_comment(f"thread {thread.thread_id}", ""), head]
    for skipped in thread.skipped:
        lines.append(_comment(f"skipped {skipped.run_id or 'a run'}: {skipped.reason}", ""))
    if not thread.runs:
        lines.append("runs: []  # nothing to export on this thread\n")
        return "".join(lines)
    lines.append("runs:\n")
    for run in thread.runs:
        entry: dict[str, JSON] = {"name": run.name}
        for key, value in run.fields.items():
            if key == "assistant_id" and shared is not None:
                continue
            entry[key] = value
        lines.extend(_comment(comment, "  ") for comment in run.comments)
        lines.append(_indent(_dump([entry]), "  "))
    return "".join(lines)


def _comment(text: str, indent: str) -> str:
    """A YAML comment, wrapped to stay readable within 100 columns."""
    lines = textwrap.wrap(" ".join(text.split()), width=96 - len(indent)) or [""]
    first, *rest = lines
    return "".join(
        [f"{indent}# {first}\n", *(f"{indent}#   {line}\n" for line in rest)]
    )
