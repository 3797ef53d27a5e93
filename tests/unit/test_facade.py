"""The package facade, and what start-up does not pay for."""

from __future__ import annotations

import subprocess
import sys

import reconciler


def test_the_facade_plans_with_plain_values() -> None:
    desired = [reconciler.DesiredRun("thread_a", "report", {"assistant_id": "asst_1"})]
    live = reconciler.LiveState({"thread_a": reconciler.ThreadState("thread_a", ())})
    result = reconciler.plan(desired, live, reconciler.PlanOptions("demo"))
    assert isinstance(result, reconciler.Plan)
    assert [c.action for c in result.changes] == [reconciler.Action.CREATE]
    assert set(reconciler.__all__) <= set(dir(reconciler))
    assert issubclass(reconciler.StalePlanError, reconciler.ReconcilerError)


def test_the_cli_starts_without_deepdiff_psycopg_or_the_emulator() -> None:
    """Imported where they are used: a diff rendered, a PostgreSQL lock, --emulator."""
    code = ("import sys, reconciler.cli; "
            "print(sorted(m for m in ('deepdiff', 'psycopg', 'reconciler.emulator', "
            "'starlette', 'uvicorn') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]"
