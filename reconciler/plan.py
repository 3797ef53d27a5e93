"""The plan: a value computed by a pure function from desired runs and live runs.

Like Terraform's ``plans.Plan``, a plan is data: renderers show it, ``apply`` executes it,
``--out`` saves it. ``plan()`` is purely computational, with no side-effects; the caller
performs the actions. Reasons exist only to explain a change to people: apply never decides
anything from them.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from reconciler.model import JSON, DesiredRun, LiveState

#: Version of the plan's JSON representation (``schemas/plan.schema.json``).
PLAN_FORMAT_VERSION = "1.0"


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

    kind: str  # "metadata" | "cancelled" | "spec"
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
    wait_for: tuple[str, ...] = ()  # run ids (or "name") that must end before this action
    drift: tuple[Drift, ...] = ()
    source: str | None = None  # "file:line:col" of the declaration, when declared

    @property
    def address(self) -> str:
        return f"{self.thread_id}/{self.name}"


@dataclass(frozen=True)
class PlanOptions:
    """What the user asked for beyond the manifests."""

    project: str
    prune: bool = False
    targets: frozenset[str] = frozenset()  # run names or thread_id/name addresses


@dataclass(frozen=True)
class Plan:
    """The whole plan: changes in execution order per thread, and what it was computed from.

    ``fingerprints`` maps each thread read to a digest of the live facts the plan depends
    on; apply of a saved plan recomputes them and refuses a stale plan.
    """

    options: PlanOptions
    changes: tuple[Change, ...]
    fingerprints: Mapping[str, str]
    format_version: str = PLAN_FORMAT_VERSION

    @property
    def actionable(self) -> tuple[Change, ...]:
        """Changes apply will perform (everything but no-ops)."""
        return tuple(c for c in self.changes if c.action is not Action.NOOP)

    @property
    def has_changes(self) -> bool:
        return bool(self.actionable)

    def count(self, action: Action) -> int:
        return sum(1 for c in self.changes if c.action is action)


def plan(desired: Sequence[DesiredRun], live: LiveState, options: PlanOptions) -> Plan:
    """Decide what to do; purely computational, with no side-effects."""
    raise NotImplementedError
