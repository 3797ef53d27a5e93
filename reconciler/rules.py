"""The planner's rules for one declared run against its live run (PRODUCT.md §5).

Pure: :func:`reconciler.planning.plan_thread` calls :class:`Planner` once per declared run and
orders what it returns. Most of a large plan is the no-op of an unchanged run, so that path
allocates little: one header over shared payloads and reason tuples.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Mapping

from reconciler import identity
from reconciler.changes import (
    Cancel,
    Change,
    Create,
    Drift,
    FieldChange,
    Modify,
    NoOp,
    Payload,
    Reason,
    Replace,
    SubmitToolOutputs,
    ToolOutput,
)
from reconciler.model import (
    CANCELLABLE_STATUSES,
    CANCELLED_STATUSES,
    CREATE_ONLY_FIELDS,
    IMMUTABLE_FIELDS,
    JSON,
    DesiredRun,
    DesiredState,
    LiveRun,
    RunStatus,
)

__all__ = ["Planner", "undeclared"]


def _metadata_changes(
    before: Mapping[str, str], after: Mapping[str, str]
) -> tuple[FieldChange, ...]:
    return tuple(
        FieldChange(f"metadata.{key}", before.get(key), after.get(key))
        for key in sorted(set(before) | set(after))
        if before.get(key) != after.get(key)
    )


class Planner:
    """Plans declared runs one at a time; memoises metadata hashes within one plan() call.

    Metadata maps repeat across runs (manifest defaults), and hashing dominates planning time.
    """

    def __init__(self, project: str) -> None:
        self.project = project
        self._meta_hashes: dict[tuple[tuple[str, str], ...], str] = {}

    def metadata_hash(self, metadata: Mapping[str, str]) -> str:
        key = tuple(metadata.items())  # insertion order: a miss only costs a hash
        digest = self._meta_hashes.get(key)
        if digest is None:
            digest = self._meta_hashes[key] = identity.metadata_hash(metadata)
        return digest

    def full_metadata(self, run: DesiredRun, generation: int) -> dict[str, str]:
        """User metadata plus the reserved keys: what a create sends."""
        reserved = identity.reserved_metadata(
            project=self.project, name=run.name, spec=run.spec, revision=run.revision,
            user_metadata=run.metadata, generation=generation,
        )
        return {**run.metadata, **reserved}

    def modified_metadata(
        self, run: DesiredRun, live: Mapping[str, str], meta_hash: str
    ) -> dict[str, str]:
        """What a modify sends: the spec is unchanged, so its recorded key is kept as is."""
        return {
            **run.metadata,
            identity.KEY_PROJECT: self.project,
            identity.KEY_NAME: run.name,
            identity.KEY_SPEC: live[identity.KEY_SPEC],
            identity.KEY_META: meta_hash,
        }

    def create_request(self, run: DesiredRun, generation: int = 1) -> dict[str, JSON]:
        """The CreateRunRequest body; ``generation`` is one more than the run it replaces."""
        return {**run.spec, "metadata": self.full_metadata(run, generation)}

    def unmarked(self, run: DesiredRun, twin: LiveRun, *, recreate: bool) -> list[Change]:
        """A declared run with no managed run, beside a run that looks like its stripped self.

        Creating a twin of it costs money and cannot be undone, so without being told
        (``recreate``) the plan only says so.
        """
        if identity.KEY_NAME in twin.metadata:
            why = (
                f"run {twin.id} still names itself {run.name!r} but is no longer marked as "
                "managed (its reconciler.project key was removed outside reconciler)"
            )
        else:
            why = (
                f"run {twin.id} matches this run's spec but is not marked as managed (its "
                "reserved reconciler.* metadata was removed outside reconciler, or it was "
                "never adopted)"
            )
        drift = Drift(
            kind="unmarked",
            message=(
                f"{why}; no new run is planned: adopt it with `reconciler export --thread "
                f"{run.thread_id} --adopt`, or plan with --recreate-unmarked to create another"
            ),
        )
        if recreate:  # told to: plan as if there were no run, and still show the drift
            first, *rest = self.declared(run, None)
            return [_with_drift(first, (drift,)), *rest]
        return [Change(
            run.thread_id, run.name, _REASON_TUPLES[Reason.UNMARKED], _NOOP, twin.id,
            twin.status, (drift,), _source(run),
        )]

    def declared(self, run: DesiredRun, live_run: LiveRun | None) -> list[Change]:
        """The changes one declared run needs (PRODUCT.md §5); usually one, at most two."""
        if live_run is None:
            if run.state is DesiredState.CANCELLED:
                return [Change(run.thread_id, run.name, _REASON_TUPLES[Reason.UP_TO_DATE],
                               _NOOP, source=_source(run))]
            payload = Create(self.create_request(run), dict(run.tool_outputs))
            return [Change(run.thread_id, run.name, _REASON_TUPLES[Reason.NEW], payload,
                           source=_source(run))]
        return self._on_live_run(run, live_run)

    def _on_live_run(self, run: DesiredRun, live_run: LiveRun) -> list[Change]:
        on_run = functools.partial(_on_run, run, live_run, _source(run))
        meta = live_run.metadata
        wanted_hash = self.metadata_hash(run.metadata)
        recorded_meta = meta.get(identity.KEY_META)
        live_user: Mapping[str, str]
        if recorded_meta == wanted_hash and _holds_exactly(meta, run.metadata):
            live_user, metadata_differs = run.metadata, False  # the common case, made cheap
        else:
            live_user = identity.user_metadata(meta)
            metadata_differs = recorded_meta != wanted_hash or live_user != run.metadata
        drift: list[Drift] = []
        if metadata_differs:  # otherwise the live metadata hashes to the recorded hash
            drift.extend(self.metadata_drift(run, live_run, live_user))

        changes: list[Change] = []
        if run.state is DesiredState.CANCELLED:
            changes.append(_cancelled(live_run, on_run))
        elif identity.recorded_spec_hash(meta) != identity.spec_hash(run.spec, run.revision):
            changes.append(self.replace(run, live_run, live_user))
        else:
            if live_run.status in CANCELLED_STATUSES:
                drift.append(_cancelled_outside(live_run))
            if metadata_differs:
                field_changes = _metadata_changes(live_user, run.metadata) or (
                    FieldChange(f"metadata.{identity.KEY_META}", recorded_meta, wanted_hash,
                                known_before=recorded_meta is not None),
                )
                metadata = self.modified_metadata(run, meta, wanted_hash)
                changes.append(on_run(Modify(metadata, field_changes), Reason.METADATA_CHANGED))
            changes.extend(_answer(run, live_run, on_run))
            if not changes:
                changes.append(on_run(_NOOP, Reason.UP_TO_DATE))
        if drift:
            changes[0] = _with_drift(changes[0], tuple(drift))
        return changes

    def metadata_drift(
        self, run: DesiredRun, live_run: LiveRun, live_user: Mapping[str, str]
    ) -> list[Drift]:
        """Drift when the live user metadata no longer hashes to what the last apply recorded.

        The run keeps only a hash of that metadata, so what it was is found by hashing the
        likely candidates (:func:`_recorded_user`): then only the keys changed outside are
        listed, before and after. When no candidate matches, nothing can be said of the old
        values, and every live key is listed with its value "not recorded".
        """
        recorded = live_run.metadata.get(identity.KEY_META)
        if recorded is None or self.metadata_hash(live_user) == recorded:
            return []
        message = f"the metadata of run {live_run.id} was changed outside reconciler"
        before = _recorded_user(recorded, live_user, run.metadata, self.metadata_hash)
        if before is not None:
            return [Drift("metadata", message, _metadata_changes(before, live_user))]
        now = "its keys are now:" if live_user else "it is now empty"
        return [Drift(
            kind="metadata",
            message=f"{message}; {now}",
            fields=tuple(
                FieldChange(f"metadata.{key}", None, value, known_before=False)
                for key, value in sorted(live_user.items())
            ),
        )]

    def replace(self, run: DesiredRun, live_run: LiveRun, live_user: Mapping[str, str]) -> Change:
        """A new run for a changed spec; the recorded digests name the fields that force it."""
        meta = live_run.metadata
        record = identity.decode_spec(meta.get(identity.KEY_SPEC, ""))
        recorded_revision, recorded_fields = record.revision, record.fields
        request = self.create_request(run, (record.generation or 0) + 1)
        digests = identity.decode_spec(request["metadata"][identity.KEY_SPEC]).fields
        changed = [
            name for name in IMMUTABLE_FIELDS if digests.get(name) != recorded_fields.get(name)
        ]
        revision_changed = recorded_revision is not None and recorded_revision != run.revision
        forces = tuple(changed) + (("revision",) if revision_changed else ())
        reasons = ((Reason.IMMUTABLE_FIELD,) if changed or not revision_changed else ()) + (
            (Reason.REVISION,) if revision_changed else ()
        )
        has_record = identity.KEY_SPEC in meta
        field_changes = [
            _spec_change(name, run, live_run, has_record, recorded_fields) for name in changed
        ]
        if revision_changed:
            field_changes.append(FieldChange("revision", recorded_revision, run.revision))
        field_changes.extend(_metadata_changes(live_user, run.metadata))
        payload = Replace(
            request, dict(run.tool_outputs), field_changes=tuple(field_changes),
            forces_replace=forces,
        )
        return Change(run.thread_id, run.name, reasons, payload, live_run.id, live_run.status,
                      source=_source(run))


#: Shared immutable values, so the common no-op allocates little (plans can be 100,000 long).
_NOOP = NoOp()
_CANCEL = Cancel()
_REASON_TUPLES = {reason: (reason,) for reason in Reason}
_RESERVED_KEY_SET = frozenset(identity.RESERVED_KEYS)

OnRun = Callable[[Payload, Reason], Change]


#: Keys on which the live and declared metadata may differ for :func:`_recorded_user` to try
#: every mix of the two (2**8 hashes at most, and only for a run whose metadata drifted).
_MAX_GUESSED_KEYS = 8


def _recorded_user(
    recorded: str, live: Mapping[str, str], declared: Mapping[str, str],
    hash_of: Callable[[Mapping[str, str]], str],
) -> dict[str, str] | None:
    """The user metadata the last apply recorded, when its hash ``recorded`` tells: the
    manifest's own (unchanged since the apply), or else, key by key where the live and the
    declared metadata differ, one or the other (both edited since). None when no candidate
    hashes to it."""
    if hash_of(declared) == recorded:
        return dict(declared)
    differing = sorted(key for key in live.keys() | declared.keys()
                       if live.get(key) != declared.get(key))
    if len(differing) > _MAX_GUESSED_KEYS:
        return None
    same = {key: value for key, value in live.items() if key not in differing}
    for sources in itertools.product((live, declared), repeat=len(differing)):
        candidate = dict(same)
        for key, source in zip(differing, sources, strict=True):
            if key in source:
                candidate[key] = source[key]
        if identity.metadata_hash(candidate) == recorded:
            return candidate
    return None


def _source(run: DesiredRun) -> str | None:
    return str(run.location) if run.location else None


def _holds_exactly(live: Mapping[str, str], user: Mapping[str, str]) -> bool:
    """Whether ``live`` is ``user`` plus the reserved keys, without building a copy of it."""
    if len(live) != len(user) + len(identity.RESERVED_KEYS):
        return False
    # Items views compare as sets, in C: far cheaper than a loop over 100,000 runs.
    return live.items() >= user.items() and live.keys() >= _RESERVED_KEY_SET


def _on_run(
    run: DesiredRun, live_run: LiveRun, source: str | None, payload: Payload, reason: Reason
) -> Change:
    """A change acting on a live run; most of a large plan is these (usually no-ops)."""
    return Change(run.thread_id, run.name, _REASON_TUPLES[reason], payload, live_run.id,
                  live_run.status, (), source)


def _with_drift(change: Change, drift: tuple[Drift, ...]) -> Change:
    return Change(change.thread_id, change.name, change.reasons, change.payload, change.run_id,
                  change.run_status, drift, change.source)


def _cancelled(live_run: LiveRun, on_run: OnRun) -> Change:
    """``state: cancelled``: cancel a run that can be, or say why nothing is done."""
    if live_run.status in CANCELLABLE_STATUSES:
        return on_run(_CANCEL, Reason.STATE_CANCELLED)
    if live_run.status in CANCELLED_STATUSES:
        return on_run(_NOOP, Reason.UP_TO_DATE)
    return on_run(_NOOP, Reason.FINISHED)


def _cancelled_outside(live_run: LiveRun) -> Drift:
    return Drift(
        kind="cancelled",
        message=(
            f"run {live_run.id} was cancelled outside reconciler while the manifest says "
            "active; reconciler does not restart it: bump `revision` to ask for a new run"
        ),
    )


def _answer(run: DesiredRun, live_run: LiveRun, on_run: OnRun) -> list[Change]:
    """Submit tool outputs when every pending call is answered; otherwise say which are not."""
    pending = live_run.pending_tool_calls
    if live_run.status != RunStatus.REQUIRES_ACTION or not pending:
        return []
    unanswered = sorted({c.function_name for c in pending} - set(run.tool_outputs))
    if unanswered:
        return [on_run(NoOp(tuple(unanswered)), Reason.UNANSWERED_TOOL_CALLS)]
    outputs = tuple(ToolOutput(c.id, run.tool_outputs[c.function_name]) for c in pending)
    return [on_run(SubmitToolOutputs(outputs), Reason.TOOL_CALLS_PENDING)]


def _spec_change(
    name: str, run: DesiredRun, live_run: LiveRun, has_record: bool,
    recorded_fields: Mapping[str, str],
) -> FieldChange:
    """One field forcing a replace: the echoed value before, the manifest's after.

    Create-only fields are never echoed, so their old value is unknown unless the recorded
    digests say the field was unset. A field the manifest drops is filled by the server.
    """
    if name in live_run.fields and name not in CREATE_ONLY_FIELDS:
        before, known_before = live_run.fields[name], True
    elif has_record and name not in recorded_fields:
        before, known_before = None, True
    else:
        before, known_before = None, False
    known_after = name in run.spec or name in CREATE_ONLY_FIELDS
    return FieldChange(name, before, run.spec.get(name), known_before, known_after)


def undeclared(thread_id: str, live_run: LiveRun, name: str, *, prune: bool) -> Change:
    """A managed run no manifest declares: cancelled with --prune, otherwise only shown."""
    if prune:
        return Change(thread_id, name, _REASON_TUPLES[Reason.PRUNE], _CANCEL, live_run.id,
                      live_run.status)
    return Change(thread_id, name, _REASON_TUPLES[Reason.NOT_DECLARED], _NOOP, live_run.id,
                  live_run.status)
