"""reconciler: GitOps for OpenAI Assistants v2 runs.

Declare runs in YAML, ``plan`` what would change against the live API, ``apply`` it. This is
the library's facade: the pure planner and its values, and the errors it raises. The rest
(the HTTP client, the apply engine, the CLI) is imported from its own module.
"""

from __future__ import annotations

from reconciler.changes import (
    Action,
    Cancel,
    Change,
    Create,
    Drift,
    FieldChange,
    Modify,
    NoOp,
    Reason,
    Replace,
    SubmitToolOutputs,
    ToolOutput,
)
from reconciler.errors import (
    ApiError,
    ApplyError,
    ConfigError,
    ManifestError,
    PlanFileError,
    ReconcilerError,
    StalePlanError,
    UnknownOutcomeError,
)
from reconciler.model import DesiredRun, DesiredState, LiveRun, LiveState, ThreadState
from reconciler.plan import Binding, Plan, PlanOptions, plan

__version__ = "0.1.0"

__all__ = [
    "Action",
    "ApiError",
    "ApplyError",
    "Binding",
    "Cancel",
    "Change",
    "ConfigError",
    "Create",
    "DesiredRun",
    "DesiredState",
    "Drift",
    "FieldChange",
    "LiveRun",
    "LiveState",
    "ManifestError",
    "Modify",
    "NoOp",
    "Plan",
    "PlanFileError",
    "PlanOptions",
    "Reason",
    "ReconcilerError",
    "Replace",
    "StalePlanError",
    "SubmitToolOutputs",
    "ThreadState",
    "ToolOutput",
    "UnknownOutcomeError",
    "__version__",
    "plan",
]
