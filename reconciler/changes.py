"""What a plan is made of: one typed change per address.

A :class:`Change` is a common header (address, reasons, the live run acted on, drift, where
it was declared) and one payload whose type *is* the action: a :class:`Create` carries its
request, a :class:`Modify` the metadata to send, a :class:`SubmitToolOutputs` its outputs. What
an action needs is a type, so apply matches on payloads instead of asserting optional fields,
and the plan file's serializer walks these types instead of a hand-copied list of fields.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import ClassVar, TypeAlias

from reconciler.model import JSON

__all__ = [
    "PAYLOAD_TYPES",
    "Action",
    "Answers",
    "Cancel",
    "Change",
    "Create",
    "CreateRequest",
    "Drift",
    "FieldChange",
    "Modify",
    "NoOp",
    "Payload",
    "Reason",
    "Replace",
    "RunMetadata",
    "SubmitToolOutputs",
    "ToolOutput",
]


#: The ``CreateRunRequest`` body a create sends, reserved metadata keys included.
CreateRequest: TypeAlias = Mapping[str, JSON]
#: A run's whole metadata map, as a modify sends it.
RunMetadata: TypeAlias = Mapping[str, str]
#: Tool outputs by function name, to answer a followed run's calls.
Answers: TypeAlias = Mapping[str, str]


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
        return _MARKS[self]


_MARKS = {
    Action.CREATE: "+",
    Action.MODIFY: "~",
    Action.REPLACE: "-/+",
    Action.CANCEL: "-",
    Action.SUBMIT_TOOL_OUTPUTS: "!",
    Action.NOOP: " ",
}


class Reason(enum.Enum):
    """Why a change was planned: for people only (apply never decides anything from it)."""

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
    ADOPT = "adopt"  # export --adopt: an existing run is tagged as managed
    RERECORD = "rerecord"  # export --adopt: a managed run's recorded spec is written anew


@dataclass(frozen=True, slots=True)
class FieldChange:
    """One field's before and after. ``known_before`` is False when only a digest is kept
    (create-only fields such as ``additional_messages`` are never echoed by the API)."""

    path: str
    before: JSON = None
    after: JSON = None
    known_before: bool = True
    known_after: bool = True


@dataclass(frozen=True, slots=True)
class Drift:
    """A change made outside reconciler since the last apply, shown apart from the plan."""

    kind: str  # "metadata" | "cancelled" | "unmarked" | "duplicate"
    message: str
    fields: tuple[FieldChange, ...] = ()


@dataclass(frozen=True, slots=True)
class ToolOutput:
    """One answer to a pending tool call, as ``submit_tool_outputs`` sends it."""

    tool_call_id: str
    output: str


@dataclass(frozen=True, slots=True)
class Create:
    """Start a new run: the ``CreateRunRequest`` body (reserved keys in its metadata).

    ``answers`` (tool outputs by function name) answer its calls under ``--wait``;
    ``wait_for`` names the runs that must end first: live run ids, or the address of a run
    this plan creates earlier on the same thread (one active run per thread).
    """

    action: ClassVar[Action] = Action.CREATE
    create_request: CreateRequest
    answers: Answers = field(default_factory=dict)
    wait_for: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Replace:
    """A new run for a changed spec, after the old one (the header's run) is cancelled.

    ``forces_replace`` names the fields (or ``revision``) that force it.
    """

    action: ClassVar[Action] = Action.REPLACE
    create_request: CreateRequest
    answers: Answers = field(default_factory=dict)
    wait_for: tuple[str, ...] = ()
    field_changes: tuple[FieldChange, ...] = ()
    forces_replace: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Modify:
    """Update the header's run in place: ``metadata`` is the whole map to send."""

    action: ClassVar[Action] = Action.MODIFY
    metadata: RunMetadata
    field_changes: tuple[FieldChange, ...] = ()


@dataclass(frozen=True, slots=True)
class Cancel:
    """Cancel the header's run."""

    action: ClassVar[Action] = Action.CANCEL


@dataclass(frozen=True, slots=True)
class SubmitToolOutputs:
    """Answer the pending tool calls of the header's run."""

    action: ClassVar[Action] = Action.SUBMIT_TOOL_OUTPUTS
    tool_outputs: tuple[ToolOutput, ...]


@dataclass(frozen=True, slots=True)
class NoOp:
    """Nothing to do; ``unanswered`` names pending calls' functions no answer is declared for."""

    action: ClassVar[Action] = Action.NOOP
    unanswered: tuple[str, ...] = ()


Payload: TypeAlias = Create | Replace | Modify | Cancel | SubmitToolOutputs | NoOp

#: Every payload type, by the action it performs (the plan file reads them back by action).
PAYLOAD_TYPES: Mapping[Action, type[Payload]] = MappingProxyType({
    t.action: t for t in (Create, Replace, Modify, Cancel, SubmitToolOutputs, NoOp)
})


@dataclass(frozen=True, slots=True)
class Change:
    """One planned action on one address (``thread_id/name``): header and payload.

    ``run_id`` is the live run acted on (the old run of a replace) and ``run_status`` its
    status when planned; ``source`` is the declaration's ``file:line:col``. The payload carries
    everything apply needs to execute the action without the manifests.
    """

    thread_id: str
    name: str
    reasons: tuple[Reason, ...]
    payload: Payload
    run_id: str | None = None
    run_status: str | None = None
    drift: tuple[Drift, ...] = ()
    source: str | None = None

    @property
    def action(self) -> Action:
        return self.payload.action

    @property
    def address(self) -> str:
        return f"{self.thread_id}/{self.name}"

    # Read-only views for the renderers, which show these whatever the action.

    @property
    def field_changes(self) -> tuple[FieldChange, ...]:
        payload = self.payload
        return payload.field_changes if isinstance(payload, Modify | Replace) else ()

    @property
    def wait_for(self) -> tuple[str, ...]:
        payload = self.payload
        return payload.wait_for if isinstance(payload, Create | Replace) else ()

    @property
    def unanswered(self) -> tuple[str, ...]:
        payload = self.payload
        return payload.unanswered if isinstance(payload, NoOp) else ()
