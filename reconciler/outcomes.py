"""What an apply reports: one outcome per planned change, and where followed runs ended.

Values and the hooks protocol only: the applier produces them, the CLI renders them (the
report owns the exit status, as black's ``Report`` does).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Protocol

from reconciler.changes import Change

__all__ = ["ActionResult", "ApplyHooks", "ApplyReport", "Outcome", "SilentHooks", "WaitResult"]


class Outcome(enum.Enum):
    APPLIED = "applied"
    SKIPPED = "created meanwhile"  # another apply made the same run first: nothing left to do
    FAILED = "failed"
    UNKNOWN = "unknown"  # a create may or may not have made its run (never counted as success)
    NOT_ATTEMPTED = "not attempted"


#: Outcomes after which the thread's desired state holds for that change.
_DONE = frozenset({Outcome.APPLIED, Outcome.SKIPPED})


@dataclass(frozen=True)
class ActionResult:
    """What happened to one planned change."""

    change: Change
    outcome: Outcome
    run_id: str | None = None
    message: str = ""


@dataclass(frozen=True)
class WaitResult:
    """Where a followed run ended (``--wait``)."""

    address: str
    run_id: str
    status: str
    message: str = ""

    @property
    def succeeded(self) -> bool:
        return self.status == "completed"


@dataclass(frozen=True)
class ApplyReport:
    """The result of an apply: black's ``Report`` idea, it owns the exit status."""

    results: tuple[ActionResult, ...]
    waited: tuple[WaitResult, ...] = ()

    def count(self, outcome: Outcome) -> int:
        return sum(1 for r in self.results if r.outcome is outcome)

    @property
    def ok(self) -> bool:
        return all(r.outcome in _DONE for r in self.results) and all(
            w.succeeded for w in self.waited
        )

    def summary(self) -> str:
        skipped, unknown = self.count(Outcome.SKIPPED), self.count(Outcome.UNKNOWN)
        text = (
            f"Apply complete: {self.count(Outcome.APPLIED)} applied, "
            + (f"{skipped} created meanwhile by another apply, " if skipped else "")
            + f"{self.count(Outcome.FAILED)} failed, "
            + (f"{unknown} with an unknown outcome, " if unknown else "")
            + f"{self.count(Outcome.NOT_ATTEMPTED)} not attempted."
        )
        if self.waited:
            done = sum(1 for w in self.waited if w.succeeded)
            text += f" Runs followed: {done} of {len(self.waited)} completed."
        return text


class ApplyHooks(Protocol):
    """Progress callbacks (Terraform's PreApply/PostApply); the CLI renders them."""

    def action_started(self, change: Change) -> None: ...

    def action_finished(self, result: ActionResult) -> None: ...

    def progress(self, address: str, message: str) -> None: ...

    def run_finished(self, result: WaitResult) -> None: ...


class SilentHooks:
    """Hooks that report nothing (library use, tests)."""

    def action_started(self, change: Change) -> None:
        return None

    def action_finished(self, result: ActionResult) -> None:
        return None

    def progress(self, address: str, message: str) -> None:
        return None

    def run_finished(self, result: WaitResult) -> None:
        return None
