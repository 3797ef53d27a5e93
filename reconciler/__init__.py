"""reconciler: GitOps for OpenAI Assistants v2 runs.

Declare runs in YAML, ``plan`` what would change against the live API, ``apply`` it. This is
the library's facade: the pure planner and its values, and the errors it raises. The rest
(the HTTP client, the apply engine, the CLI) is imported from its own module.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from reconciler.lazy import defer_httpx_command_line

defer_httpx_command_line()

if TYPE_CHECKING:
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
    from reconciler.planning import Binding, Plan, PlanOptions, plan

#: Where each public name lives: imported on first use (PEP 562), so that importing any
#: ``reconciler`` module (the CLI's ``--help`` included) does not load the whole core.
_HOMES = {
    "Action": "reconciler.changes",
    "ApiError": "reconciler.errors",
    "ApplyError": "reconciler.errors",
    "Binding": "reconciler.planning",
    "Cancel": "reconciler.changes",
    "Change": "reconciler.changes",
    "ConfigError": "reconciler.errors",
    "Create": "reconciler.changes",
    "DesiredRun": "reconciler.model",
    "DesiredState": "reconciler.model",
    "Drift": "reconciler.changes",
    "FieldChange": "reconciler.changes",
    "LiveRun": "reconciler.model",
    "LiveState": "reconciler.model",
    "ManifestError": "reconciler.errors",
    "Modify": "reconciler.changes",
    "NoOp": "reconciler.changes",
    "Plan": "reconciler.planning",
    "PlanFileError": "reconciler.errors",
    "PlanOptions": "reconciler.planning",
    "Reason": "reconciler.changes",
    "ReconcilerError": "reconciler.errors",
    "Replace": "reconciler.changes",
    "StalePlanError": "reconciler.errors",
    "SubmitToolOutputs": "reconciler.changes",
    "ThreadState": "reconciler.model",
    "ToolOutput": "reconciler.changes",
    "UnknownOutcomeError": "reconciler.errors",
    "plan": "reconciler.planning",
}


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'reconciler' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


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
