"""The plan: a value computed by a pure function from desired runs and live runs.

Like Terraform's ``plans.Plan``, a plan is data: renderers show it, ``apply`` executes it,
``--out`` saves it. ``plan()`` is purely computational, with no side-effects; the caller
performs the actions. Reasons exist only to explain a change to people: apply never decides
anything from them.
"""


import hashlib
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property

from reconciler import identity
from reconciler.changes import (
    PAYLOAD_TYPES,
    Action,
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
    JSON,
    RUNNING_STATUSES,
    DesiredRun,
    LiveRun,
    LiveState,
    RunStatus,
    ThreadState,
)
from reconciler.rules import Planner, undeclared

__all__ = [
    "PAYLOAD_TYPES",
    "PLAN_FORMAT_VERSION",
    "Action",
    "Binding",
    "Cancel",
    "Change",
    "Create",
    "Drift",
    "FieldChange",
    "Modify",
    "NoOp",
    "Payload",
    "Plan",
    "PlanOptions",
    "Reason",
    "Replace",
    "SubmitToolOutputs",
    "ThreadPlan",
    "ToolOutput",
    "assemble",
    "desired_by_thread",
    "fingerprint",
    "index_thread",
    "looks_like",
    "plan",
    "plan_thread",
    "unmarked_runs",
]

#: Version of the plan's JSON representation (``schemas/plan.schema.json``).
PLAN_FORMAT_VERSION = "2.0"


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

    # The views below are cached on the value (its changes never change): a plan of 100,000
    # runs is asked for them by every renderer, and each look was a pass over all of them.

    @cached_property
    def actionable(self) -> tuple[Change, ...]:
        """Changes apply will perform (everything but no-ops)."""
        return tuple(c for c in self.changes if c.action is not Action.NOOP)

    @property
    def has_changes(self) -> bool:
        return bool(self.actionable)

    def count(self, action: Action) -> int:
        return self._counts[action]

    @cached_property
    def _counts(self) -> Counter[Action]:
        return Counter(c.action for c in self.changes)

    @property
    def partial(self) -> bool:
        """Whether ``--target`` limited the plan (other changes may be pending)."""
        return bool(self.options.targets)

    @cached_property
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

    planner = Planner(project)
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
                planned[0] = _with_drift(planned[0], twins)
        changes.extend(planned)

    for name, runs in managed.items():
        if name in declared:
            continue
        if targets and name not in targets and f"{thread_id}/{name}" not in targets:
            continue
        for live_run in runs:
            if live_run.status in CANCELLABLE_STATUSES:
                changes.append(undeclared(thread_id, live_run, name, prune=options.prune))

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
        payload = change.payload
        if isinstance(payload, Create | Replace):
            waits = active + previous
            if waits:
                change = _with_payload(change, _waiting(payload, waits))
            previous = (change.address,)
        result.append(change)
    return result


def _waiting(payload: Create | Replace, waits: tuple[str, ...]) -> Create | Replace:
    if isinstance(payload, Create):
        return Create(payload.create_request, payload.answers, waits)
    return Replace(payload.create_request, payload.answers, waits, payload.field_changes,
                   payload.forces_replace)


def _with_payload(change: Change, payload: Payload) -> Change:
    return Change(change.thread_id, change.name, change.reasons, payload, change.run_id,
                  change.run_status, change.drift, change.source)


def _with_drift(change: Change, drift: Drift) -> Change:
    return Change(change.thread_id, change.name, change.reasons, change.payload, change.run_id,
                  change.run_status, (*change.drift, drift), change.source)
