"""Terminal comfort, through the real entry point in a child process: the live counter of
threads read only at a terminal, ``--color`` that reaches a pipe, ``--quiet``/``--verbose``,
and click's shell completion. Terminals are real pseudo-terminals (``pty``), pipes real pipes.
"""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.harness import BackgroundServer
from tests.e2e.processes import cli_env, manifest, write_project

pytestmark = pytest.mark.e2e

#: The console script pip installs for ``[project.scripts]`` (``reconciler.cli:main``).
SCRIPT = Path(sys.executable).with_name("reconciler")
COUNTER = re.compile(r"read \d+ of \d+ threads?")
SGR = re.compile(r"\x1b\[[0-9;]*m")  # a colour or style
REDRAW = re.compile(r"\r|\x1b\[[0-9;]*[A-HJKST]")  # carriage return, cursor moves, erasing


@dataclass
class Output:
    code: int
    out: str
    err: str


def run_cli(args: list[str], env: dict[str, str], *, out_tty: bool, err_tty: bool,
            cwd: Path | None = None) -> Output:
    """``reconciler ARGS`` with stdout and stderr each a pseudo-terminal or a pipe."""
    ends: dict[str, tuple[int, int]] = {}  # stream -> (what the child gets, what we read)
    for name, tty in (("out", out_tty), ("err", err_tty)):
        ends[name] = (pty.openpty() if tty else os.pipe())[::-1]  # (slave, master), (w, r)
    child = subprocess.Popen([str(SCRIPT), *args], env=env, cwd=cwd,
                             stdin=subprocess.DEVNULL, stdout=ends["out"][0],
                             stderr=ends["err"][0])
    for given, _ in ends.values():
        os.close(given)
    readers = {ends[name][1]: name for name in ends}
    chunks: dict[str, bytes] = {"out": b"", "err": b""}
    deadline = time.monotonic() + 60
    while readers and time.monotonic() < deadline:
        ready, _, _ = select.select(list(readers), [], [], 1.0)
        for fd in ready:
            try:
                data = os.read(fd, 65536)
            except OSError:  # a pty's reading end says EIO once the child has closed it
                data = b""
            if data:
                chunks[readers[fd]] += data
            else:
                os.close(fd)
                del readers[fd]
    code = child.wait(timeout=60)
    return Output(code, chunks["out"].decode(), chunks["err"].decode())


@pytest.fixture
def project(server: BackgroundServer, tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """Six runs on the three demo threads, and the environment pointing at the emulator."""
    root = write_project(tmp_path / "p", "terminal", manifest(6, suite="terminal"))
    env = cli_env(server.base_url, TERM="xterm")
    del env["NO_COLOR"]
    return root, env


def test_the_thread_counter_appears_only_when_both_streams_are_terminals(
    project: tuple[Path, dict[str, str]],
) -> None:
    root, env = project
    piped = run_cli(["plan", str(root)], env, out_tty=False, err_tty=False)
    out_piped = run_cli(["plan", str(root)], env, out_tty=False, err_tty=True)
    at_terminal = run_cli(["plan", str(root)], env, out_tty=True, err_tty=True)

    for result in (piped, out_piped, at_terminal):
        assert result.code == 0, result.err
        assert "Plan: 6 to create" in result.out
    # into a pipe: neither the counter nor anything that redraws, on either stream
    assert not COUNTER.search(piped.out + piped.err)
    assert not REDRAW.search(piped.out + piped.err) and not SGR.search(piped.out)
    assert not COUNTER.search(out_piped.err)  # stdout is a pipe: no counter on stderr either
    # at a terminal: the count on stderr, wiped once reading ends; stdout gets only the plan
    assert "read 3 of 3 threads" in at_terminal.err
    assert at_terminal.err.endswith("\r\x1b[2K")
    assert not COUNTER.search(at_terminal.out)


def test_apply_into_a_pipe_shows_one_line_per_event_and_never_redraws(
    project: tuple[Path, dict[str, str]],
) -> None:
    root, env = project
    applied = run_cli(["apply", str(root), "--auto-approve"], env, out_tty=False, err_tty=False)
    assert applied.code == 0, applied.err
    assert "Apply complete: 6 applied, 0 failed, 0 not attempted." in applied.out
    assert len(re.findall(r": create done: ", applied.out)) == 6
    assert not COUNTER.search(applied.out + applied.err)
    assert not REDRAW.search(applied.out + applied.err) and not SGR.search(applied.out)


def test_color_forces_ansi_into_a_pipe_and_no_color_wins_over_the_terminal(
    project: tuple[Path, dict[str, str]],
) -> None:
    root, env = project
    forced = run_cli(["--color", "plan", str(root)], env, out_tty=False, err_tty=False)
    default = run_cli(["plan", str(root)], env, out_tty=False, err_tty=False)
    refused = run_cli(["--no-color", "plan", str(root)], env, out_tty=True, err_tty=True)
    no_color = run_cli(["plan", str(root)], {**env, "NO_COLOR": "1"}, out_tty=True,
                       err_tty=True)
    at_terminal = run_cli(["plan", str(root)], env, out_tty=True, err_tty=True)
    flag_beats_env = run_cli(["--color", "plan", str(root)], {**env, "NO_COLOR": "1"},
                             out_tty=False, err_tty=False)

    assert "\x1b[1mReconciler plan for project" in forced.out  # bold, into a pipe
    assert "\x1b[32m+\x1b[0m thread_demo_reports/run-00" in forced.out  # a green create
    assert SGR.search(flag_beats_env.out)  # no-color.org: a command-line flag beats NO_COLOR
    assert SGR.search(at_terminal.out)
    for plain in (default, refused, no_color):
        assert plain.code == 0, plain.err
        assert not SGR.search(plain.out), plain.out[:300]
        assert "Plan: 6 to create" in plain.out


def test_quiet_prints_the_result_and_errors_only_and_verbose_every_request(
    project: tuple[Path, dict[str, str]],
) -> None:
    root, env = project
    planfile = str(root / "plan.json")
    quiet_plan = run_cli(["--quiet", "plan", str(root), "--out", planfile], env,
                         out_tty=True, err_tty=True)
    quiet_apply = run_cli(["-q", "apply", str(root), "--auto-approve"], env,
                          out_tty=True, err_tty=True)
    verbose = run_cli(["--verbose", "plan", str(root)], env, out_tty=False, err_tty=False)
    both = run_cli(["-q", "-v", "plan", str(root)], env, out_tty=False, err_tty=False)

    assert quiet_plan.code == 0 and "Plan: 6 to create" in quiet_plan.out
    assert quiet_plan.err == ""  # no counter, no "Saved the plan to …" hint
    assert quiet_apply.code == 0, quiet_apply.err
    assert quiet_apply.out.strip() == "Apply complete: 6 applied, 0 failed, 0 not attempted."
    assert quiet_apply.err == ""
    assert verbose.code == 0
    lines = verbose.err.strip().splitlines()
    assert len(lines) == 3, verbose.err  # one list request per thread
    for line in lines:
        request = r"GET /v1/threads/thread_demo_\w+/runs\?limit=100&order=desc"
        assert re.fullmatch(rf"{request} → 200 in \d+ ms", line), line
    assert both.code == 1 and "--quiet and --verbose contradict each other" in both.err


def test_shell_completion_works_through_the_console_script(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("_RECONCILER")}
    source = subprocess.run([str(SCRIPT)], env={**env, "_RECONCILER_COMPLETE": "bash_source"},
                            capture_output=True, text=True, timeout=60)
    assert source.returncode == 0, source.stderr
    assert "complete -o nosort -F _reconciler_completion reconciler" in source.stdout
    # the script bash would source, asked to complete `reconciler pl` and `reconciler apply --au`
    script = tmp_path / "complete.bash"
    script.write_text(
        source.stdout
        + "COMP_WORDS=(reconciler pl); COMP_CWORD=1; _reconciler_completion reconciler\n"
        + 'echo "commands: ${COMPREPLY[*]}"; COMPREPLY=()\n'
        + "COMP_WORDS=(reconciler apply --au); COMP_CWORD=2; _reconciler_completion reconciler\n"
        + 'echo "options: ${COMPREPLY[*]}"\n'
    )
    path = f"{SCRIPT.parent}{os.pathsep}{env.get('PATH', '')}"
    done = subprocess.run(["bash", str(script)], env={**env, "PATH": path},
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "commands: plan\n" in done.stdout
    assert "options: --auto-approve --auth\n" in done.stdout  # in declaration order
