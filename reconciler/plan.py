"""The plan: a value computed by a pure function from desired runs and live runs.

Like Terraform's ``plans.Plan``, a plan is data: renderers show it, ``apply`` executes it,
``--out`` saves it. ``plan()`` is purely computational, with no side-effects; the caller
performs the actions. Reasons exist only to explain a change to people: apply never decides
anything from them.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

from reconciler import identity
from reconciler.model import (
    CANCELLABLE_STATUSES,
    CANCELLED_STATUSES,
    CREATE_ONLY_FIELDS,
    IMMUTABLE_FIELDS,
    JSON,
    RUNNING_STATUSES,
    DesiredRun,
    DesiredState,
    LiveRun,
    LiveState,
    RunStatus,
    ThreadState,
)

#: Version of the plan's JSON representation (``schemas/plan.schema.json``).
PLAN_FORMAT_VERSION = "2.0"


class Action(enum.Enum):
    """What apply will do for one address; the mark is how the text view shows it."""

    CREATE = "create"
    MODIFY = "modify"
    REPLACE = "replace"
    CANCEL = "cancel"
    SUBMIT_TOOL_OUTPUTS = "submit_tool_outputs"
    NOOP = "no-op"

    @property
    def mark(self) -> str:
        return {
            Action.CREATE: "+",
            Action.MODIFY: "~",
            Action.REPLACE: "-/+",
            Action.CANCEL: "-",
            Action.SUBMIT_TOOL_OUTPUTS: "!",
            Action.NOOP: " ",
        }[self]


class Reason(enum.Enum):
    """Why a change was planned: for people only."""

    NEW = "new"  # no managed run with that name on the thread
    METADATA_CHANGED = "metadata_changed"  # user metadata differs from the manifest
    IMMUTABLE_FIELD = "immutable_field"  # a field that cannot be updated differs
    REVISION = "revision"  # the manifest's revision was bumped
    STATE_CANCELLED = "state_cancelled"  # the manifest asks for the run to be cancelled
    TOOL_CALLS_PENDING = "tool_calls_pending"  # requires_action, answers declared
    PRUNE = "prune"  # managed run no longer declared, --prune given
    NOT_DECLARED = "not_declared"  # managed run no longer declared, kept (no --prune)
    UP_TO_DATE = "up_to_date"  # nothing to do
    UNANSWERED_TOOL_CALLS = "unanswered_tool_calls"  # requires_action, no answer declared
    FINISHED = "finished"  # the manifest asks for a cancel but the run already ended
    UNMARKED = "unmarked"  # the run lost its reserved keys outside reconciler: no twin made


@dataclass(frozen=True)
class FieldChange:
    """One field's before and after. ``known_before`` is False when only a digest is kept
    (create-only fields such as ``additional_messages`` are never echoed by the API)."""

    path: str
    before: JSON = None
    after: JSON = None
    known_before: bool = True
    known_after: bool = True


@dataclass(frozen=True)
class Drift:
    """A change made outside reconciler since the last apply, shown apart from the plan."""

    kind: str  # "metadata" | "cancelled" | "unmarked" | "duplicate"
    message: str
    fields: tuple[FieldChange, ...] = ()


@dataclass(frozen=True)
class ToolOutput:
    """One answer to a pending tool call, as ``submit_tool_outputs`` sends it."""

    tool_call_id: str
    output: str


@dataclass(frozen=True)
class Change:
    """One planned action on one address (``thread_id/name``).

    Carries everything apply needs to execute it without the manifests: the create body,
    the full metadata for a modify, the tool outputs to submit, and the run to wait for.
    """

    thread_id: str
    name: str
    action: Action
    reasons: tuple[Reason, ...] = ()
    run_id: str | None = None  # the live run acted on (modify, cancel, submit, replace's old)
    run_status: str | None = None  # its status when planned
    field_changes: tuple[FieldChange, ...] = ()
    forces_replace: tuple[str, ...] = ()  # fields (or "revision") that force a replace
    create_request: Mapping[str, JSON] | None = None  # CreateRunRequest body, reserved keys in
    metadata: Mapping[str, str] | None = None  # full metadata to send for a modify
    tool_outputs: tuple[ToolOutput, ...] = ()  # for submit_tool_outputs
    answers: Mapping[str, str] = field(default_factory=dict)  # tool_outputs by function name
    # runs that must end before a create/replace: live run ids, or the address of a run this
    # plan creates earlier on the same thread
    wait_for: tuple[str, ...] = ()
    drift: tuple[Drift, ...] = ()
    source: str | None = None  # "file:line:col" of the declaration, when declared
    unanswered: tuple[str, ...] = ()  # functions of pending calls tool_outputs does not answer

    @property
    def address(self) -> str:
        return f"{self.thread_id}/{self.name}"


@dataclass(frozen=True)
class PlanOptions:
    """What the user asked for beyond the manifests."""

    project: str
    prune: bool = False
    targets: frozenset[str] = frozenset()  # run names or thread_id/name addresses
    recreate_unmarked: bool = False  # create anew where a run lost its reserved keys outside


@dataclass(frozen=True)
class Binding:
    """The backend a plan was computed against; a saved plan is applied only there.

    ``base_url`` is the API's base URL, or ``emulator:<state file>`` for the embedded emulator.
    Never the key.
    """

    base_url: str
    auth: str = "bearer"
    api_version: str | None = None

    def describe(self) -> str:
        extra = f", api-version {self.api_version}" if self.api_version else ""
        return f"{self.base_url} ({self.auth} auth{extra})"


@dataclass(frozen=True)
class Plan:
    """The whole plan: changes in execution order per thread, and what it was computed from.

    ``fingerprints`` maps each thread read to a digest of the live facts the plan depends
    on; apply of a saved plan recomputes them and refuses a stale plan. ``backend`` is set by
    the shell that read the live state (the planner itself does no I/O).
    """

    options: PlanOptions
    changes: tuple[Change, ...]
    fingerprints: Mapping[str, str]
    format_version: str = PLAN_FORMAT_VERSION
    backend: Binding | None = None

    @property
    def actionable(self) -> tuple[Change, ...]:
        """Changes apply will perform (everything but no-ops)."""
        return tuple(c for c in self.changes if c.action is not Action.NOOP)

    @property
    def has_changes(self) -> bool:
        return bool(self.actionable)

    def count(self, action: Action) -> int:
        return sum(1 for c in self.changes if c.action is action)

    @property
    def partial(self) -> bool:
        """Whether ``--target`` limited the plan (other changes may be pending)."""
        return bool(self.options.targets)

    @property
    def drifted(self) -> tuple[Change, ...]:
        """Changes whose live run was changed outside reconciler since the last apply."""
        return tuple(c for c in self.changes if c.drift)



# Within a thread: free the thread first (cancels, and replaces whose old run must be
# cancelled), then touch runs in place, then start new runs; no-ops last.
_RANK: dict[Action, int] = {
    Action.CANCEL: 0,
    Action.MODIFY: 1,
    Action.SUBMIT_TOOL_OUTPUTS: 2,
    Action.REPLACE: 4,
    Action.CREATE: 4,
    Action.NOOP: 5,
}


def _rank(change: Change) -> int:
    if change.action is Action.REPLACE and change.run_status in CANCELLABLE_STATUSES:
        return 3
    return _RANK[change.action]




@dataclass(frozen=True)
class ThreadPlan:
    """One thread's part of a plan: its changes in order, and the fingerprint of its runs."""

    thread_id: str
    changes: tuple[Change, ...]
    fingerprint: str


def plan(desired: Sequence[DesiredRun], live: LiveState, options: PlanOptions) -> Plan:
    """Decide what to do; purely computational, with no side-effects.

    Every thread is planned on its own (the API's rules never cross threads), so the shell
    may instead call :func:`plan_thread` as each thread's runs arrive and :func:`assemble`
    the parts: the result is the same. Planning is linear in desired and live runs.
    """
    by_thread = desired_by_thread(desired)
    for thread_id in live.threads:
        by_thread.setdefault(thread_id, [])
    parts = [
        plan_thread(runs, live.threads.get(thread_id), options, thread_id=thread_id)
        for thread_id, runs in by_thread.items()
    ]
    return assemble(parts, options)


def desired_by_thread(desired: Sequence[DesiredRun]) -> dict[str, list[DesiredRun]]:
    """Declared runs grouped by thread, threads in the order the manifests first name them."""
    groups: dict[str, list[DesiredRun]] = {}
    for run in desired:
        group = groups.get(run.thread_id)
        if group is None:
            group = groups[run.thread_id] = []
        group.append(run)
    return groups


def assemble(parts: Sequence[ThreadPlan], options: PlanOptions) -> Plan:
    """The plan made of its threads' parts, in the order given."""
    changes = [change for part in parts for change in part.changes]
    fingerprints = {part.thread_id: part.fingerprint for part in parts if part.fingerprint}
    return Plan(options=options, changes=tuple(changes), fingerprints=fingerprints)


def plan_thread(
    desired: Sequence[DesiredRun], thread: ThreadState | None, options: PlanOptions,
    *, thread_id: str | None = None,
) -> ThreadPlan:
    """Plan one thread: its declared runs against its live runs (``None``: not read)."""
    thread_id = thread_id or (thread.thread_id if thread else desired[0].thread_id)
    project = options.project
    targets = options.targets
    if thread is not None:
        current, managed = index_thread(thread, project)
        active = tuple(run.id for run in thread.runs if run.is_active)
    else:
        current, managed, active = {}, {}, ()

    planner = _Planner(project)
    changes: list[Change] = []
    declared: set[str] = set()
    orphans: list[LiveRun] | None = None  # found only when a declared run has no current run
    for run in desired:
        declared.add(run.name)
        if targets and run.name not in targets and f"{thread_id}/{run.name}" not in targets:
            continue
        live_run = current.get(run.name)
        if live_run is None and thread is not None:
            if orphans is None:
                orphans = unmarked_runs(thread)
            twin = next((o for o in orphans if looks_like(run, o)), None)
            if twin is not None:
                orphans.remove(twin)
                changes.extend(planner.unmarked(run, twin, recreate=options.recreate_unmarked))
                continue
        planned = planner.declared(run, live_run)
        if live_run is not None and len(managed[run.name]) > 1:
            twins = _twins(live_run, managed[run.name])
            if twins:
                planned[0] = dataclasses.replace(planned[0], drift=(*planned[0].drift, twins))
        changes.extend(planned)

    for name, runs in managed.items():
        if name in declared:
            continue
        if targets and name not in targets and f"{thread_id}/{name}" not in targets:
            continue
        for live_run in runs:
            if live_run.status in CANCELLABLE_STATUSES:
                changes.append(_undeclared(thread_id, live_run, name, prune=options.prune))

    changes.sort(key=_rank)
    return ThreadPlan(
        thread_id=thread_id,
        changes=tuple(_with_waits(changes, active)),
        fingerprint=fingerprint(thread, project) if thread is not None else "",
    )


def fingerprint(thread: ThreadState, project: str) -> str:
    """Digest of the live facts a plan of ``thread`` depends on, to refuse a stale saved plan.

    Covers every run the project manages (id, status class, whole metadata) and every active
    run it does not (id, status class). A run moving from queued to in_progress changes no
    decision, so both share the class "running".
    """
    facts: list[str] = []
    for run in thread.runs:
        if identity.is_managed_by(run.metadata, project):
            facts.append(f"{run.id}\x1d{_status_class(run)}\x1d{identity.flat_text(run.metadata)}")
        elif run.is_active:
            facts.append(f"{run.id}\x1d{_status_class(run)}")
    facts.sort()
    text = "\x1c".join([project, thread.thread_id, *facts])
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def _status_class(run: LiveRun) -> str:
    if run.status in RUNNING_STATUSES:
        return "running"
    if run.status == RunStatus.REQUIRES_ACTION:
        return "requires_action:" + ",".join(sorted(c.id for c in run.pending_tool_calls))
    if run.status in CANCELLED_STATUSES:
        return "cancelled"
    return run.status


def index_thread(
    thread: ThreadState, project: str
) -> tuple[dict[str, LiveRun], dict[str, list[LiveRun]]]:
    """The current managed run per name, and every managed run per name.

    The current run is the one with the highest recorded generation (:func:`identity.recency`),
    never merely the newest by the server's ids or clock.
    """
    current: dict[str, LiveRun] = {}
    by_name: dict[str, list[LiveRun]] = {}
    for run in thread.runs:
        if not identity.is_managed_by(run.metadata, project):
            continue
        name = run.metadata[identity.KEY_NAME]
        runs = by_name.get(name)
        if runs is None:
            by_name[name] = [run]
            current[name] = run
        else:
            runs.append(run)
            newest = current[name]
            if _recency(run) > _recency(newest):
                current[name] = run
    return current, by_name


def _recency(run: LiveRun) -> tuple[int, int, str, str]:
    return identity.recency(run.metadata, run.created_at, run.id)


def _twins(current: LiveRun, runs: Sequence[LiveRun]) -> Drift | None:
    """Runs of the current run's generation beside it: made by one create that landed twice
    (a commit later than its settle window) or by applies that ran without the lock."""
    generation = identity.recorded_generation(current.metadata)
    twins = sorted(
        run.id for run in runs
        if run.id != current.id and identity.recorded_generation(run.metadata) == generation
    )
    if not twins:
        return None
    return Drift(
        kind="duplicate",
        message=(
            f"{len(twins)} other run{'s' if len(twins) != 1 else ''} of this name and generation "
            f"exist beside the current run {current.id}: {', '.join(twins)}; reconciler acts only "
            "on the current run (cancel the others with `reconciler query \"EXEC "
            "openai.assistants.runs.cancel_run …\"` if they are still active)"
        ),
    )


def unmarked_runs(thread: ThreadState) -> list[LiveRun]:
    """Runs that carry no owner: never managed, or stripped of their reserved keys outside."""
    return [run for run in thread.runs if identity.KEY_PROJECT not in run.metadata]


def looks_like(run: DesiredRun, live: LiveRun) -> bool:
    """Whether ``live`` is probably the run ``run`` declares, its reserved keys gone.

    A run still naming itself (``reconciler.name``) without an owner is; a run with no reserved
    key at all is when every field the manifest sets that the API echoes has that value.
    """
    name = live.metadata.get(identity.KEY_NAME)
    if name is not None:
        return name == run.name
    if any(key.startswith(identity.RESERVED_PREFIX) for key in live.metadata):
        return False
    echoed = [f for f in run.spec if f not in CREATE_ONLY_FIELDS]
    return bool(echoed) and all(
        f in live.fields and _echo_matches(run.spec[f], live.fields[f]) for f in echoed
    )


def _echo_matches(want: JSON, have: JSON) -> bool:
    """``have`` says ``want``, allowing the keys a server adds to echoed objects."""
    if isinstance(want, dict):
        return isinstance(have, dict) and all(
            k in have and _echo_matches(v, have[k]) for k, v in want.items()
        )
    if isinstance(want, list):
        return (
            isinstance(have, list) and len(want) == len(have)
            and all(_echo_matches(w, h) for w, h in zip(want, have, strict=True))
        )
    if isinstance(want, bool) or isinstance(have, bool):
        return want is have
    if isinstance(want, int | float) and isinstance(have, int | float):
        return float(want) == float(have)
    return bool(want == have)


def _with_waits(changes: list[Change], active: tuple[str, ...]) -> list[Change]:
    """Say which runs must end before each create or replace (one active run per thread).

    Every run active now is still active when the first new run would start (cancel is
    asynchronous); each later one waits for the run created before it, which by then has
    waited for the rest, so naming only the previous address keeps this linear.
    """
    previous: tuple[str, ...] = ()
    result: list[Change] = []
    for change in changes:
        if change.action in (Action.CREATE, Action.REPLACE):
            waits = active + previous
            if waits:
                # The change was built by this plan() call and has not escaped it yet, so
                # setting the field in place is unobservable; dataclasses.replace would
                # rebuild every create of a large plan.
                object.__setattr__(change, "wait_for", waits)
            previous = (change.address,)
        result.append(change)
    return result


def _metadata_changes(
    before: Mapping[str, str], after: Mapping[str, str]
) -> tuple[FieldChange, ...]:
    return tuple(
        FieldChange(f"metadata.{key}", before.get(key), after.get(key))
        for key in sorted(set(before) | set(after))
        if before.get(key) != after.get(key)
    )


class _Planner:
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
        source = str(run.location) if run.location else None
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
            return [dataclasses.replace(first, drift=(drift,)), *rest]
        return [Change(
            run.thread_id, run.name, Action.NOOP, (Reason.UNMARKED,), run_id=twin.id,
            run_status=twin.status, source=source, drift=(drift,),
        )]

    def declared(self, run: DesiredRun, live_run: LiveRun | None) -> list[Change]:
        """The changes one declared run needs (PRODUCT.md §5); usually one, at most two."""
        source = str(run.location) if run.location else None
        if live_run is None:
            if run.state is DesiredState.CANCELLED:
                return [Change(run.thread_id, run.name, Action.NOOP, (Reason.UP_TO_DATE,),
                               source=source)]
            return [Change(
                run.thread_id, run.name, Action.CREATE, (Reason.NEW,),
                create_request=self.create_request(run), answers=dict(run.tool_outputs),
                source=source,
            )]

        change = functools.partial(_on_run, run, live_run, source)
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
            drift.extend(self.metadata_drift(live_run, live_user))
        same_spec = identity.recorded_spec_hash(meta) == identity.spec_hash(run.spec, run.revision)

        changes: list[Change] = []
        if run.state is DesiredState.CANCELLED:
            if live_run.status in CANCELLABLE_STATUSES:
                changes.append(change(Action.CANCEL, Reason.STATE_CANCELLED))
            elif live_run.status in CANCELLED_STATUSES:
                changes.append(change(Action.NOOP, Reason.UP_TO_DATE))
            else:
                changes.append(change(Action.NOOP, Reason.FINISHED))
        elif not same_spec:
            changes.append(self.replace(run, live_run, live_user, source))
        else:
            if live_run.status in CANCELLED_STATUSES:
                drift.append(Drift(
                    kind="cancelled",
                    message=(
                        f"run {live_run.id} was cancelled outside reconciler while the manifest"
                        " says active; reconciler does not restart it: bump `revision` to ask"
                        " for a new run"
                    ),
                ))
            if metadata_differs:
                field_changes = _metadata_changes(live_user, run.metadata) or (
                    FieldChange(f"metadata.{identity.KEY_META}", recorded_meta, wanted_hash,
                                known_before=recorded_meta is not None),
                )
                changes.append(dataclasses.replace(
                    change(Action.MODIFY, Reason.METADATA_CHANGED),
                    field_changes=field_changes,
                    metadata=self.modified_metadata(run, meta, wanted_hash),
                ))
            changes.extend(_answer(run, live_run, change))
            if not changes:
                changes.append(change(Action.NOOP, Reason.UP_TO_DATE))
        if drift:
            changes[0] = dataclasses.replace(changes[0], drift=tuple(drift))
        return changes

    def metadata_drift(self, live_run: LiveRun, live_user: Mapping[str, str]) -> list[Drift]:
        """Drift when the live user metadata no longer hashes to what the last apply recorded."""
        recorded = live_run.metadata.get(identity.KEY_META)
        if recorded is None or self.metadata_hash(live_user) == recorded:
            return []
        now = "its keys are now:" if live_user else "it is now empty"
        return [Drift(
            kind="metadata",
            message=f"the metadata of run {live_run.id} was changed outside reconciler; {now}",
            fields=tuple(
                FieldChange(f"metadata.{key}", None, value, known_before=False)
                for key, value in sorted(live_user.items())
            ),
        )]

    def replace(
        self, run: DesiredRun, live_run: LiveRun, live_user: Mapping[str, str],
        source: str | None,
    ) -> Change:
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
        return Change(
            run.thread_id, run.name, Action.REPLACE, reasons, run_id=live_run.id,
            run_status=live_run.status, field_changes=tuple(field_changes),
            forces_replace=forces, create_request=request, answers=dict(run.tool_outputs),
            source=source,
        )


#: Shared immutable values, so the common no-op allocates little (plans can be 100,000 long).
_NO_ANSWERS: Mapping[str, str] = MappingProxyType({})
_REASON_TUPLES = {reason: (reason,) for reason in Reason}
_RESERVED_KEY_SET = frozenset(identity.RESERVED_KEYS)


def _holds_exactly(live: Mapping[str, str], user: Mapping[str, str]) -> bool:
    """Whether ``live`` is ``user`` plus the reserved keys, without building a copy of it."""
    if len(live) != len(user) + len(identity.RESERVED_KEYS):
        return False
    # Items views compare as sets, in C: far cheaper than a loop over 100,000 runs.
    return live.items() >= user.items() and live.keys() >= _RESERVED_KEY_SET


#: Every field of a Change at its default: the base of the no-op built by ``_on_run``.
_CHANGE_DEFAULTS: Mapping[str, object] = MappingProxyType(
    vars(Change("", "", Action.NOOP, answers=_NO_ANSWERS))
)


def _on_run(
    run: DesiredRun, live_run: LiveRun, source: str | None, action: Action, reason: Reason
) -> Change:
    """A change acting on a live run; most of a large plan is these (usually no-ops).

    Equal to ``Change(run.thread_id, run.name, action, (reason,), run_id=…, run_status=…,
    answers={}, source=source)``, but built by filling the instance dictionary at once: the
    frozen dataclass ``__init__`` pays one ``object.__setattr__`` per field (17 of them), a
    third of the cost of planning 100,000 unchanged runs.
    """
    change: Change = object.__new__(Change)
    values = vars(change)
    values.update(_CHANGE_DEFAULTS)
    values["thread_id"] = run.thread_id
    values["name"] = run.name
    values["action"] = action
    values["reasons"] = _REASON_TUPLES[reason]
    values["run_id"] = live_run.id
    values["run_status"] = live_run.status
    values["source"] = source
    return change


def _answer(
    run: DesiredRun, live_run: LiveRun, change: Callable[[Action, Reason], Change]
) -> list[Change]:
    """Submit tool outputs when every pending call is answered; otherwise say which are not."""
    pending = live_run.pending_tool_calls
    if live_run.status != RunStatus.REQUIRES_ACTION or not pending:
        return []
    unanswered = sorted({c.function_name for c in pending} - set(run.tool_outputs))
    if unanswered:
        return [dataclasses.replace(
            change(Action.NOOP, Reason.UNANSWERED_TOOL_CALLS), unanswered=tuple(unanswered)
        )]
    outputs = tuple(ToolOutput(c.id, run.tool_outputs[c.function_name]) for c in pending)
    return [dataclasses.replace(
        change(Action.SUBMIT_TOOL_OUTPUTS, Reason.TOOL_CALLS_PENDING), tool_outputs=outputs
    )]


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


def _undeclared(thread_id: str, live_run: LiveRun, name: str, *, prune: bool) -> Change:
    """A managed run no manifest declares: cancelled with --prune, otherwise only shown."""
    return Change(
        thread_id, name, Action.CANCEL if prune else Action.NOOP,
        (Reason.PRUNE if prune else Reason.NOT_DECLARED,),
        run_id=live_run.id, run_status=live_run.status,
    )
