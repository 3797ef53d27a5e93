"""The domain values shared by the pure core: desired runs, live runs, and their parts.

Everything here is a frozen dataclass over JSON-compatible values, so that manifest loading,
validation, diffing and planning stay pure functions that can be tested with plain values.
Nothing in this module (or in the core modules that use it) performs I/O.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple, TypeAlias

JSON: TypeAlias = Any
"""A JSON-compatible value: None, bool, int, float, str, list of JSON, dict of str to JSON."""

#: The fields of ``CreateRunRequest`` a manifest may set, in the API's own names and order.
RUN_FIELDS: tuple[str, ...] = (
    "assistant_id",
    "model",
    "reasoning_effort",
    "instructions",
    "additional_instructions",
    "additional_messages",
    "tools",
    "metadata",
    "temperature",
    "top_p",
    "max_prompt_tokens",
    "max_completion_tokens",
    "truncation_strategy",
    "tool_choice",
    "parallel_tool_calls",
    "response_format",
)

#: Fields that cannot change on an existing run: a change to any of them forces a replace.
IMMUTABLE_FIELDS: tuple[str, ...] = tuple(f for f in RUN_FIELDS if f != "metadata")

#: Fields sent only at creation and never echoed back on the run object.
CREATE_ONLY_FIELDS: frozenset[str] = frozenset(
    {"additional_instructions", "additional_messages"}
)

class RunStatus(enum.StrEnum):
    """The statuses Assistants v2 defines for a run (its status machine, in order).

    A ``StrEnum``: members equal the API's strings, so a status read from the wire compares
    and hashes as its member. The sets below are the only place runs are classified.
    """

    QUEUED = "queued"
    IN_PROGRESS = "in_progress"
    REQUIRES_ACTION = "requires_action"
    CANCELLING = "cancelling"
    CANCELLED = "cancelled"
    FAILED = "failed"
    COMPLETED = "completed"
    INCOMPLETE = "incomplete"
    EXPIRED = "expired"


#: Run statuses in which a run occupies its thread (the API allows one such run per thread).
ACTIVE_STATUSES: frozenset[str] = frozenset(
    {RunStatus.QUEUED, RunStatus.IN_PROGRESS, RunStatus.REQUIRES_ACTION, RunStatus.CANCELLING}
)
#: Statuses a run never leaves.
TERMINAL_STATUSES: frozenset[str] = frozenset(set(RunStatus) - ACTIVE_STATUSES)
#: Every status Assistants v2 defines; a run in any other is not planned from.
RUN_STATUSES: frozenset[str] = frozenset(RunStatus)
#: Statuses in which the API accepts a cancel.
CANCELLABLE_STATUSES: frozenset[str] = ACTIVE_STATUSES - {RunStatus.CANCELLING}
#: A cancel was asked for, or has taken effect.
CANCELLED_STATUSES: frozenset[str] = frozenset({RunStatus.CANCELLING, RunStatus.CANCELLED})
#: A run's statuses "running": queued and in progress change no decision of the planner.
RUNNING_STATUSES: frozenset[str] = frozenset({RunStatus.QUEUED, RunStatus.IN_PROGRESS})


class DesiredState(enum.Enum):
    """What the manifest asks of a run's lifecycle."""

    ACTIVE = "active"
    CANCELLED = "cancelled"


class SourceLocation(NamedTuple):
    """Where a value was written: 1-based line and column, as editors show them.

    A named tuple, not a dataclass: the YAML reader records one for every value of every
    manifest (1.5 million for 100,000 runs), and a tuple is built in C.
    """

    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


@dataclass(frozen=True)
class DesiredRun:
    """One run as the manifests declare it, after defaults are merged and values validated.

    ``spec`` holds the immutable ``CreateRunRequest`` fields the manifest sets (never
    ``metadata``), with unset fields absent rather than ``None``; ``metadata`` is the user's
    own metadata, without reserved keys.
    """

    thread_id: str
    name: str
    spec: Mapping[str, JSON]
    metadata: Mapping[str, str] = field(default_factory=dict)
    state: DesiredState = DesiredState.ACTIVE
    tool_outputs: Mapping[str, str] = field(default_factory=dict)
    revision: int = 0
    location: SourceLocation | None = None

    @property
    def key(self) -> tuple[str, str]:
        """Identity of a declared run: its thread and its name."""
        return (self.thread_id, self.name)


@dataclass(frozen=True)
class ToolCall:
    """A function call a run in ``requires_action`` is waiting to have answered."""

    id: str
    function_name: str
    arguments: str


@dataclass(frozen=True)
class LiveRun:
    """A run as the API returned it, reduced to what reconciling needs.

    ``metadata`` is the run's whole metadata map, reserved keys included. ``fields`` holds the
    run object's values for the fields in ``RUN_FIELDS`` that the API echoes back.
    ``ended_because`` says why a run ended badly (its ``last_error`` message, or the reason
    in ``incomplete_details``), for ``--wait`` to report.
    """

    id: str
    thread_id: str
    status: str
    created_at: int
    metadata: Mapping[str, str]
    fields: Mapping[str, JSON] = field(default_factory=dict)
    pending_tool_calls: tuple[ToolCall, ...] = ()
    ended_because: str = ""

    @property
    def is_active(self) -> bool:
        """Whether the run still occupies its thread."""
        return self.status in ACTIVE_STATUSES


@dataclass(frozen=True)
class ThreadState:
    """All runs of one thread, newest first, as listed from the API."""

    thread_id: str
    runs: tuple[LiveRun, ...]


@dataclass(frozen=True)
class LiveState:
    """The live runs of every thread the manifests name."""

    threads: Mapping[str, ThreadState]
