"""The tool as separate processes: `emulator serve` as a real server, and `apply` asking for
confirmation at a real terminal (a pseudo-terminal)."""

from __future__ import annotations

import os
import pty
import select
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.harness import KEY, THREAD_A, BackgroundServer

pytestmark = pytest.mark.e2e

ONE_RUN = f"""\
    apiVersion: reconciler/v1
    kind: Runs
    runs:
      - name: one
        thread_id: {THREAD_A}
        assistant_id: asst_demo
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def workspace(tmp_path: Path) -> Path:
    (tmp_path / "reconciler.toml").write_text('project = "proc"\n')
    (tmp_path / "runs.yaml").write_text(textwrap.dedent(ONE_RUN))
    return tmp_path


def cli_env(base_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    env.update(OPENAI_BASE_URL=base_url, OPENAI_API_KEY=KEY, NO_COLOR="1")
    return env


def test_emulator_serve_is_a_real_server_requiring_its_key(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "EMULATOR_KEY": KEY}
    server = subprocess.Popen(
        [sys.executable, "-m", "reconciler", "emulator", "serve", "--port", str(port),
         "--demo", "--timing", "instant", "--api-key-env", "EMULATOR_KEY",
         "--state", str(tmp_path / "state.sqlite")],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                answer = httpx.get(f"{base_url}/threads/{THREAD_A}",
                                   headers={"OpenAI-Beta": "assistants=v2"}, timeout=1)
                break
            except httpx.TransportError:
                assert server.poll() is None, server.stderr.read() if server.stderr else ""
                assert time.monotonic() < deadline, "the emulator did not start"
                time.sleep(0.1)
        assert answer.status_code == 401  # a key is configured and none was sent

        ws = workspace(tmp_path)
        applied = subprocess.run(
            [sys.executable, "-m", "reconciler", "apply", str(ws), "--auto-approve"],
            env=cli_env(base_url), capture_output=True, text=True, timeout=60,
        )
        assert applied.returncode == 0, applied.stdout + applied.stderr
        assert "1 applied" in applied.stdout
        planned = subprocess.run(
            [sys.executable, "-m", "reconciler", "plan", str(ws), "--detailed-exitcode"],
            env=cli_env(base_url), capture_output=True, text=True, timeout=60,
        )
        assert planned.returncode == 0, planned.stdout + planned.stderr
    finally:
        server.terminate()
        _, err = server.communicate(timeout=10)
    assert KEY not in err


def run_at_terminal(args: list[str], env: dict[str, str], answer: str) -> tuple[int, str]:
    """Run the CLI with a pseudo-terminal as stdin/stdout and type ``answer`` at the prompt."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen(args, stdin=follower, stdout=follower, stderr=follower, env=env)
    os.close(follower)
    output = b""
    typed = False
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(leader, 4096)
            except OSError:
                break
            if not chunk:
                break
            output += chunk
            if not typed and b"Only 'yes' will be accepted" in output:
                os.write(leader, answer.encode() + b"\n")
                typed = True
        elif proc.poll() is not None:
            break
    code = proc.wait(timeout=30)
    os.close(leader)
    return code, output.decode(errors="replace")


@pytest.mark.parametrize(("answer", "code"), [("no", 1), ("yes", 0)])
def test_apply_asks_at_a_terminal(server: BackgroundServer, tmp_path: Path, answer: str,
                                  code: int) -> None:
    ws = workspace(tmp_path)
    got, output = run_at_terminal(
        [sys.executable, "-m", "reconciler", "apply", str(ws)], cli_env(server.base_url), answer
    )
    assert got == code, output
    if answer == "yes":
        assert "Apply complete: 1 applied" in output
    else:
        assert "Apply cancelled" in output and "Apply complete" not in output
