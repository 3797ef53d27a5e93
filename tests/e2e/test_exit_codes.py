"""Every exit code, through the installed entry point as well as in-process."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.e2e.harness import THREAD_A, Workspace

pytestmark = pytest.mark.e2e

ONE_RUN = f"""\
    apiVersion: reconciler/v1
    kind: Runs
    runs:
      - name: one
        thread_id: {THREAD_A}
        assistant_id: asst_demo
"""


def test_detailed_exitcode_two_with_changes_zero_without(env: object, ws: Workspace) -> None:
    ws.write("runs.yaml", ONE_RUN)
    assert ws.cli("plan", ws.path).code == 0
    assert ws.cli("plan", ws.path, "--detailed-exitcode").code == 2
    assert ws.cli("apply", ws.path, "--auto-approve").code == 0
    assert ws.cli("plan", ws.path, "--detailed-exitcode").code == 0


def test_invalid_manifest_exits_one_before_any_api_call(ws: Workspace,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")  # nothing listens there
    monkeypatch.setenv("OPENAI_API_KEY", "x")
    ws.write("runs.yaml", ONE_RUN.replace("assistant_id: asst_demo", "temperature: 7"))
    result = ws.cli("plan", ws.path)
    assert result.code == 1
    assert "runs.yaml:" in result.err and "temperature" in result.err
    assert "nothing was sent to the API" in result.err
    assert "Traceback" not in result.err


@pytest.mark.parametrize(
    "args",
    [
        ["plan"],  # missing argument
        ["plan", ".", "--format", "yaml"],  # bad choice
        ["plan", ".", "--no-such-flag"],
        ["no-such-command"],
    ],
)
def test_usage_errors_exit_one_not_two(ws: Workspace, args: list[str]) -> None:
    result = ws.cli(*args)
    assert result.code == 1
    assert result.err.startswith("Error:")
    assert "Traceback" not in result.err


def test_apply_refuses_without_a_terminal_or_auto_approve(env: object, ws: Workspace) -> None:
    ws.write("runs.yaml", ONE_RUN)
    result = ws.cli("apply", ws.path)
    assert result.code == 1
    assert "--auto-approve" in result.err
    assert "Plan: 1 to create" in result.out
    assert ws.cli("plan", ws.path, "--detailed-exitcode").code == 2  # nothing happened


def test_unreachable_api_is_one_clear_sentence(ws: Workspace,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:{port}/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "x")
    ws.write("runs.yaml", ONE_RUN)
    result = ws.cli("plan", ws.path)
    assert result.code == 1
    assert "could not connect" in result.err and "127.0.0.1" in result.err
    assert result.err.count("\n") == 1 and "Traceback" not in result.err


def test_missing_thread_names_it(env: object, ws: Workspace) -> None:
    ws.write("runs.yaml", ONE_RUN.replace(THREAD_A, "thread_missing"))
    result = ws.cli("plan", ws.path)
    assert result.code == 1
    assert "thread_missing" in result.err and "404" in result.err


def test_missing_project_name_is_explained(env: object, ws: Workspace) -> None:
    (ws.root / "reconciler.toml").unlink()
    ws.write("runs.yaml", ONE_RUN)
    result = ws.cli("plan", ws.path)
    assert result.code == 1 and "reconciler.toml" in result.err
    assert ws.cli("plan", ws.path, "--project", "adhoc").code == 0


def test_corrupt_plan_file_is_refused(ws: Workspace) -> None:
    bad = ws.root / "plan.json"
    bad.write_text('{"format_version": "99"}')
    result = ws.cli("show", str(bad))
    assert result.code == 1 and "plan.json" in result.err
    bad.write_text("{not json")
    result = ws.cli("show", str(bad))
    assert result.code == 1 and "not a plan file" in result.err


def test_console_script_and_module_entry_points(tmp_path: Path) -> None:
    manifest = tmp_path / "runs.yaml"
    manifest.write_text(textwrap.dedent(ONE_RUN))
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    module = subprocess.run(
        [sys.executable, "-m", "reconciler", "validate", str(manifest)],
        capture_output=True, text=True, env=env, timeout=60,
    )
    assert module.returncode == 0, module.stderr
    assert "1 run" in module.stdout
    usage = subprocess.run(
        [sys.executable, "-m", "reconciler", "plan", "--bogus"],
        capture_output=True, text=True, env=env, timeout=60,
    )
    assert usage.returncode == 1 and "Traceback" not in usage.stderr


def test_a_manifest_written_as_json_is_not_taken_for_a_plan(env: object, ws: Workspace) -> None:
    manifest = {"apiVersion": "reconciler/v1", "kind": "Runs",
                "runs": [{"name": "json", "thread_id": THREAD_A, "assistant_id": "asst_demo"}]}
    path = ws.root / "runs.json.yaml"
    path.write_text(json.dumps(manifest))
    result = ws.cli("apply", str(path), "--auto-approve")
    assert result.code == 0, result.err
    assert "1 applied" in result.out
