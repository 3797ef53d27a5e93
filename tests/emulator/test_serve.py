"""``reconciler emulator serve`` as a real process: ports, the address it reports, Azure mode.

The last test is the reconciler's Azure support end to end: ``plan`` and ``apply`` as
processes, configured by ``reconciler.toml`` (``auth = "azure"``, ``api_version``, a base URL
under ``/openai``), against ``emulator serve --auth azure --path-prefix /openai`` over
loopback.
"""

from __future__ import annotations

import os
import re
import select
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.e2e.processes import kill, run_cli

KEY = "sk-serve-test-key-0123456789"
VERSION = "2024-05-01-preview"
LISTENING = re.compile(
    r"^Emulator listening on (http://127\.0\.0\.1:(\d+)(\S*)) \(Ctrl-C to stop\)$")
SERVE = [sys.executable, "-m", "reconciler", "emulator", "serve"]


def quiet_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("OPENAI_") and k != "RECONCILER_LOCK_URL"}
    return {**env, "NO_COLOR": "1", **extra}


@contextmanager
def serving(*args: str) -> Iterator[tuple[str, int]]:
    """``emulator serve --port 0 ARGS…``: its base URL and port, read from its first line."""
    proc = subprocess.Popen([*SERVE, "--port", "0", *args], env=quiet_env(EMU_KEY=KEY),
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        ready, _, _ = select.select([proc.stderr], [], [], 30)
        assert ready, "emulator serve said nothing within 30 s"
        line = proc.stderr.readline().strip()
        match = LISTENING.match(line)
        assert match, line
        yield match.group(1), int(match.group(2))
    finally:
        kill(proc)


def test_port_zero_binds_a_free_port_and_reports_it() -> None:
    with serving("--demo", "--timing", "instant") as (base_url, port):
        assert port != 0 and base_url.endswith(f":{port}/v1")
        answer = httpx.get(f"{base_url}/threads/thread_demo_reports",
                           headers={"OpenAI-Beta": "assistants=v2"}, timeout=10)
    assert answer.status_code == 200 and answer.json()["id"] == "thread_demo_reports"


def test_a_port_in_use_is_one_sentence_and_exit_1() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run([*SERVE, "--port", str(port)], env=quiet_env(),
                              capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        f"Error: cannot listen on 127.0.0.1:{port}: the port is already in use (choose "
        "another with --port, or --port 0 for a free one)"]
    assert done.stdout == ""


def test_a_bad_path_prefix_is_one_sentence_and_exit_1() -> None:
    done = subprocess.run([*SERVE, "--port", "0", "--path-prefix", "/a b"], env=quiet_env(),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        "Error: invalid path prefix '/a b': 'a b' is not a plain path segment (letters, "
        "digits, '.', '_', '~', '-')"]


ONE_RUN = """\
    apiVersion: reconciler/v1
    kind: Runs
    runs:
      - name: weekly
        thread_id: thread_demo_reports
        assistant_id: asst_demo
        metadata: {team: azure}
"""


def test_reconciler_plan_and_apply_against_an_azure_style_host(tmp_path: Path) -> None:
    with serving("--auth", "azure", "--path-prefix", "/openai", "--demo", "--timing", "instant",
                 "--api-key-env", "EMU_KEY") as (base_url, _):
        assert base_url.endswith("/openai")
        (tmp_path / "reconciler.toml").write_text(textwrap.dedent(f"""\
            project = "az"
            auth = "azure"
            api_version = "{VERSION}"
            base_url = "{base_url}"
        """))
        (tmp_path / "runs.yaml").write_text(textwrap.dedent(ONE_RUN))
        env = quiet_env(OPENAI_API_KEY=KEY)
        planned = run_cli(["plan", str(tmp_path), "--detailed-exitcode"], env)
        assert planned.code == 2, planned.text
        assert "weekly" in planned.out
        applied = run_cli(["apply", str(tmp_path), "--auto-approve"], env)
        assert applied.code == 0, applied.text
        assert "1 applied" in applied.out
        again = run_cli(["plan", str(tmp_path), "--detailed-exitcode"], env)
        assert again.code == 0, again.text

        runs_url = f"{base_url}/threads/thread_demo_reports/runs"
        listed = httpx.get(runs_url, params={"api-version": VERSION},
                           headers={"api-key": KEY}, timeout=10)
        runs = listed.json()["data"]
        assert [r["metadata"]["reconciler.name"] for r in runs] == ["weekly"]
        assert runs[0]["metadata"]["reconciler.project"] == "az"
        unversioned = httpx.get(runs_url, headers={"api-key": KEY}, timeout=10)
        assert unversioned.status_code == 404  # so the tool sent api-version every time
        wrong_key = run_cli(["plan", str(tmp_path)], quiet_env(OPENAI_API_KEY="sk-wrong"))
    assert wrong_key.code == 1
    assert "Access denied due to invalid subscription key" in wrong_key.err
    assert "Traceback" not in wrong_key.err and "sk-wrong" not in wrong_key.err
    for result in (planned, applied, again, wrong_key):
        assert KEY not in result.out + result.err
