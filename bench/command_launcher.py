"""Commands started by a small process of their own, so that their peak memory is theirs.

Linux reports a child's peak resident set (``wait4``'s ``ru_maxrss``) as at least the size of
the process that forked it: the forked copy counts until ``exec``. A benchmark that seeds
100,000 runs in-process is hundreds of MiB, and every command it started would seem that big.
So the bench starts this launcher first, while it is small, and the launcher starts each
command and reports its wall time, CPU (children included), peak memory and exit code.

Run as a process: JSON lines in (``{"args": [...], "env": {...}}``), JSON lines out.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import IO, Any


@dataclass(frozen=True)
class Finished:
    wall: float
    cpu: float
    peak_mib: float
    code: int
    stderr_tail: str


def _run(args: Sequence[str], env: dict[str, str]) -> dict[str, Any]:
    started = time.perf_counter()
    proc = subprocess.Popen(list(args), env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    assert proc.stderr is not None
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    return {"wall": elapsed, "cpu": usage.ru_utime + usage.ru_stime,
            "peak_mib": usage.ru_maxrss / 1024, "code": proc.returncode,
            "stderr_tail": err.decode(errors="replace")[-400:]}


def serve(lines: IO[str], out: IO[str]) -> None:
    for line in lines:
        request = json.loads(line)
        out.write(json.dumps(_run(request["args"], request["env"])) + "\n")
        out.flush()


class Launcher:
    """The launcher process, started small; :meth:`run` starts one command through it."""

    def __init__(self) -> None:
        self._proc = subprocess.Popen([sys.executable, __file__], stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, text=True)

    def run(self, args: Sequence[str], env: dict[str, str]) -> Finished:
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._proc.stdin.write(json.dumps({"args": list(args), "env": env}) + "\n")
        self._proc.stdin.flush()
        answer = json.loads(self._proc.stdout.readline())
        return Finished(answer["wall"], answer["cpu"], answer["peak_mib"], answer["code"],
                        answer["stderr_tail"])

    def close(self) -> None:
        assert self._proc.stdin is not None
        self._proc.stdin.close()
        self._proc.wait()


if __name__ == "__main__":
    serve(sys.stdin, sys.stdout)
