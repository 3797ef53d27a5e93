"""Export: manifests that declare runs which already exist, and the metadata that adopts them.

Like ``terraform import`` plus generated configuration. Pure: API run objects in, manifest text
and one adoption per run out, each an ordinary modify change that ``Applier`` executes; the
caller lists runs, writes files and applies the adoptions. The text is loaded back with
:func:`load_manifests` before it is returned, so an export is always a valid manifest, and each
adoption records the spec exactly as that manifest loads: after adopting, ``reconciler plan``
on the export shows no changes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from reconciler import identity
from reconciler.changes import Change, FieldChange, Modify, Reason
from reconciler.errors import ReconcilerError
from reconciler.export.document import header, render_document
from reconciler.export.selection import (
    ECHOED_FIELDS,
    Exported,
    Skipped,
    run_name_for,
    select_thread,
)
from reconciler.manifest import load_manifests
from reconciler.model import DesiredRun

__all__ = [
    "DEFAULT_SCHEMA_REF",
    "ECHOED_FIELDS",
    "Export",
    "ExportError",
    "Skipped",
    "export_runs",
    "run_name_for",
]

#: Where the ``yaml-language-server`` line points editors, relative to a file in the repository
#: root's ``manifests/`` folder (as the examples do); the caller may pass another.
DEFAULT_SCHEMA_REF = "../schemas/manifest.schema.json"


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
class Export:
    """The manifest text, the adoptions it needs, the runs it left out, how many it declares.

    ``adoptions`` are ordinary modifies (reason ``adopt``, or ``rerecord`` for a run that is
    ours already but recorded a spec the export cannot reproduce) that ``Applier`` executes.
    """

    text: str
    adoptions: tuple[Change, ...]
    skipped: tuple[Skipped, ...]
    runs: int


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
        select_thread(thread_id, runs, project=project, latest_only=latest_only)
        for thread_id, runs in runs_by_thread.items()
    ]
    documents = [render_document(thread) for thread in threads]
    exported = [run for thread in threads for run in thread.runs]
    skipped = tuple(s for thread in threads for s in thread.skipped)
    head = header(
        project=project,
        exported_at=exported_at,
        schema_ref=schema_ref,
        threads=len(threads),
        runs=len(exported),
        to_adopt=sum(1 for run in exported if not run.managed),
        skipped=len(skipped),
    )
    text = head + "---\n".join(documents)

    loaded = load_manifests([("export.yaml", text)])
    if loaded.problems:
        raise ExportError([str(problem) for problem in loaded.problems])
    by_key = {run.key: run for run in loaded.runs}
    adoptions: list[Change] = []
    for run in exported:
        desired = by_key.get((run.live.thread_id, run.name))
        if desired is None:
            raise ExportError([f"run {run.live.id} was exported as {run.name!r} but did not load"])
        adoption = _adoption(run, desired, project)
        if adoption is not None:
            adoptions.append(adoption)
    return Export(text=text, adoptions=tuple(adoptions), skipped=skipped, runs=len(exported))


def _adoption(run: Exported, desired: DesiredRun, project: str) -> Change | None:
    """The modify that tags ``run`` as the manifest declares it; None if it already is.

    Each adoption records the spec exactly as the exported manifest loads, so that after
    it ``reconciler plan`` on the export shows no changes.
    """
    live = run.live
    record = identity.decode_spec(live.metadata.get(identity.KEY_SPEC, ""))
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
    if run.managed and all(live.metadata.get(k) == v for k, v in reserved.items()):
        return None
    metadata = {**desired.metadata, **reserved}
    changed = tuple(
        FieldChange(f"metadata.{key}", live.metadata.get(key), value)
        for key, value in reserved.items() if live.metadata.get(key) != value
    )
    reason = Reason.RERECORD if run.managed else Reason.ADOPT
    return Change(live.thread_id, desired.name, (reason,), Modify(metadata, changed),
                  run_id=live.id, run_status=live.status)
