"""The package facade, and what start-up does not pay for."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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


def test_the_facade_plan_is_the_planner_even_after_its_module_is_imported() -> None:
    """The planner's module is ``reconciler.planning``: no submodule shadows a facade name."""
    code = ("import reconciler.planning, reconciler.changes, reconciler.errors; "
            "from reconciler import plan, Plan, Action; "
            "print(callable(plan), plan.__module__, Plan.__module__, Action.__module__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["True", "reconciler.planning", "reconciler.planning", "reconciler.changes"]


def test_help_imports_only_click_and_the_command_line() -> None:
    """``reconciler --help`` (and any usage error) needs no layer below the flags: the HTTP
    client, YAML, JSON Schema, rich and the core load only when a command runs."""
    code = ("import sys\n"
            "sys.argv = ['reconciler', '--help']\n"
            "from reconciler.cli import run\n"
            "code = run(['--help'])\n"
            "heavy = ('httpx', 'yaml', 'jsonschema', 'rich', 'deepdiff', 'reconciler.planning',\n"
            "         'reconciler.workflow', 'reconciler.client', 'reconciler.manifest')\n"
            "loaded = [m for m in heavy if m in sys.modules\n"
            "          and type(sys.modules[m]).__name__ != '_LazyModule']\n"
            "print(code, sorted(loaded))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip().splitlines()[-1]
    assert out == "0 []"


def test_the_http_client_loads_without_httpx_own_command_line() -> None:
    """httpx imports its console script's modules (rich, pygments) when rich is installed;
    reconciler's API commands do not pay for them, and ``httpx.main`` still works."""
    code = ("import sys\n"
            "import reconciler.client\n"
            "print(sorted(m for m in ('rich', 'pygments', 'rich.console') if m in sys.modules))\n"
            "import httpx\n"
            "sys.argv = ['httpx', '--help']\n"
            "httpx.main()\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    first, *rest = done.stdout.splitlines()
    assert first == "[]"
    assert done.returncode == 0, done.stderr
    assert any(line.startswith("Usage: httpx") for line in rest), done.stdout


def test_validate_imports_no_http_client_and_no_event_loop() -> None:
    """``validate`` (a pre-commit hook runs it on every commit) reads files only: httpx,
    asyncio and the apply engine stay unloaded, whatever the result's format."""
    code = ("import sys\n"
            "from reconciler.cli import run\n"
            "codes = [run(['validate', 'manifests/', '--format', f]) for f in\n"
            "         ('text', 'json', 'github')]\n"
            "heavy = ('httpx', 'asyncio', 'reconciler.client', 'reconciler.apply',\n"
            "         'reconciler.workflow', 'reconciler.terminal', 'rich')\n"
            "print(codes, sorted(m for m in heavy if m in sys.modules\n"
            "                    and type(sys.modules[m]).__name__ != '_LazyModule'))\n")
    root = Path(reconciler.__file__).parent.parent
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=root, check=True)
    assert done.stdout.strip().splitlines()[-1] == "[0, 0, 0] []"
