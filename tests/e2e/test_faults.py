"""Under injected 429s, 500s, dropped connections and lost responses, apply converges with
zero duplicate runs and zero lost actions, and a second plan shows no changes."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.harness import (
    KEY,
    THREAD_A,
    THREAD_B,
    THREAD_C,
    Result,
    Workspace,
    start_server,
)

pytestmark = pytest.mark.e2e

MANIFEST = f"""\
    apiVersion: reconciler/v1
    kind: Runs
    defaults:
      assistant_id: asst_demo
      metadata: {{suite: faults}}
    runs:
      - name: alpha
        thread_id: {THREAD_A}
      - name: beta
        thread_id: {THREAD_B}
        tools:
          - type: function
            function: {{name: lookup}}
        tool_outputs: {{lookup: ok}}
      - name: gamma
        thread_id: {THREAD_C}
        instructions: Third.
"""


def list_runs(http: httpx.Client, thread: str) -> list[dict[str, Any]]:
    """The faults hit this test's own reads too: try until one read gets through."""
    for _ in range(50):
        try:
            response = http.get(f"threads/{thread}/runs", params={"limit": 100})
        except httpx.TransportError:
            continue
        if response.status_code == 200:
            data: list[dict[str, Any]] = response.json()["data"]
            return data
    raise AssertionError(f"could not list the runs of {thread}")


def managed_runs(base_url: str) -> dict[str, list[dict[str, Any]]]:
    headers = {"Authorization": f"Bearer {KEY}", "OpenAI-Beta": "assistants=v2"}
    found: dict[str, list[dict[str, Any]]] = {}
    with httpx.Client(base_url=base_url + "/", headers=headers) as http:
        for thread in (THREAD_A, THREAD_B, THREAD_C):
            for run in list_runs(http, thread):
                name = run["metadata"].get("reconciler.name")
                if name:
                    found.setdefault(name, []).append(run)
    return found


#: Settle ambiguous creates quickly: the emulator's injected faults commit at once or never.
SETTLE = ("--settle-window", "0.3", "--settle-poll", "0.05")
#: One request at a time, so that a seed draws its faults in the same order on every run.
SEQUENTIAL = ("--concurrency", "1")

_COUNTS = re.compile(
    r"Apply complete: (\d+) applied, (?:(\d+) created meanwhile by another apply, )?(\d+) "
    r"failed, (?:(\d+) with an unknown outcome, )?(\d+) not attempted\."
)


def converge(ws: Workspace, *args: str, limit: int) -> list[Result]:
    """Apply until one run succeeds, as a user would; every run's report is checked."""
    results: list[Result] = []
    for _ in range(limit):
        result = ws.cli("apply", ws.path, "--auto-approve", *SETTLE, *SEQUENTIAL, *args)
        results.append(result)
        check_report(result)
        if result.code == 0:
            break
    return results


def check_report(result: Result) -> None:
    """A run says what happened: success with nothing left, or exit 1 naming what is left."""
    assert "Traceback" not in result.out + result.err
    last = result.err.strip().splitlines()[-1] if result.err.strip() else ""
    found = _COUNTS.search(result.out)
    if result.code == 0:
        assert found is not None, result.out
        _, _, failed, unknown, not_attempted = found.groups()
        assert (failed, unknown or "0", not_attempted) == ("0", "0", "0"), result.out
        return
    assert result.code == 1 and last.startswith("Error: "), result.out + result.err
    if found is not None:  # it got as far as applying: the summary counts what is left
        _, _, failed, unknown, not_attempted = found.groups()
        assert int(failed) + int(unknown or 0) + int(not_attempted) > 0, result.out
        assert "run `reconciler plan` to see what is left" in last or "unknown" in last
        for line in result.out.splitlines():
            if line.endswith(" not attempted") and ": " in line:
                assert line.split(": ")[0].startswith("thread_"), line  # named by address
    else:  # it failed while reading or planning, before anything was sent
        assert " (HTTP " in last or "talking to" in last, last


# How many applies each seed needs, one request at a time (so the faults fall the same way on
# every run): each recovers from all of its faults within its first apply.
@pytest.mark.parametrize(("seed", "runs_needed"), [(1, 1), (2, 1), (3, 1), (4, 1)])
def test_apply_converges_without_duplicates_under_faults(
    seed: int, runs_needed: int, ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    from reconciler.emulator import parse_faults

    faults = parse_faults("500=0.15,drop=0.1,lost_create=0.5")
    with start_server(seed=seed, faults=faults) as srv:
        monkeypatch.setenv("OPENAI_BASE_URL", srv.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", KEY)
        ws.write("runs.yaml", MANIFEST)
        results = converge(ws, "--wait", limit=6)
        assert [r.code for r in results] == [1] * (runs_needed - 1) + [0], [
            r.out + r.err for r in results
        ]
        runs = managed_runs(srv.base_url)
        assert sorted(runs) == ["alpha", "beta", "gamma"]
        assert all(len(v) == 1 for v in runs.values()), {k: len(v) for k, v in runs.items()}
        assert runs["beta"][0]["status"] == "completed"
        for _ in range(3):  # a read can still exhaust its retries under faults: plan again
            final = ws.cli("plan", ws.path, "--detailed-exitcode")
            if final.code != 1:
                break
        assert final.code == 0, final.out + final.err


def test_apply_converges_under_a_rate_limit(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from reconciler.emulator import parse_rate_limit

    state = str(tmp_path / "state.sqlite")
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    ws.write("runs.yaml", MANIFEST)
    with start_server(state_path=state, rate_limit=parse_rate_limit("5/s")) as srv:
        monkeypatch.setenv("OPENAI_BASE_URL", srv.base_url)
        results = converge(ws, "--wait", limit=1)  # 429s are waited out, never failures
        assert [r.code for r in results] == [0], results[-1].out + results[-1].err
    with start_server(state_path=state) as srv:  # look at the outcome without the limit
        assert {k: len(v) for k, v in managed_runs(srv.base_url).items()} == {
            "alpha": 1, "beta": 1, "gamma": 1,
        }


def test_lost_create_answers_are_found_again_not_repeated(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    from reconciler.emulator import parse_faults

    with start_server(faults=parse_faults("lost_create=1.0")) as srv:
        monkeypatch.setenv("OPENAI_BASE_URL", srv.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", KEY)
        ws.write("runs.yaml", MANIFEST)
        result = ws.cli("apply", ws.path, "--auto-approve")
        assert result.code == 0, result.out + result.err
        assert result.out.count("after a lost answer") == 3  # each found by its attempt id
        runs = managed_runs(srv.base_url)
        assert {k: len(v) for k, v in runs.items()} == {"alpha": 1, "beta": 1, "gamma": 1}


CHANGED = f"""\
    apiVersion: reconciler/v1
    kind: Runs
    defaults:
      assistant_id: asst_demo
      metadata: {{suite: faults-again}}
    runs:
      - name: alpha
        thread_id: {THREAD_A}
        instructions: Changed, so replaced.
      - name: beta
        thread_id: {THREAD_B}
        tools:
          - type: function
            function: {{name: lookup}}
        state: cancelled
      - name: gamma
        thread_id: {THREAD_C}
        instructions: Third.
"""


@pytest.mark.parametrize(("seed", "runs_needed"), [(5, 1), (6, 1)])
def test_modify_cancel_and_replace_converge_under_faults(
    seed: int, runs_needed: int, ws: Workspace, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from reconciler.emulator import parse_faults

    state = str(tmp_path / "state.sqlite")
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    ws.write("runs.yaml", MANIFEST.replace("tool_outputs: {lookup: ok}", ""))
    with start_server(state_path=state) as srv:  # a clean start: beta waits for an answer
        monkeypatch.setenv("OPENAI_BASE_URL", srv.base_url)
        assert ws.cli("apply", ws.path, "--auto-approve").code == 0
    ws.write("runs.yaml", CHANGED)
    faults = parse_faults("500=0.2,drop=0.15,lost_create=0.5")
    with start_server(state_path=state, seed=seed, faults=faults) as srv:
        monkeypatch.setenv("OPENAI_BASE_URL", srv.base_url)
        planned = ws.cli("plan", ws.path)
        results = converge(ws, limit=6)
        assert [r.code for r in results] == [1] * (runs_needed - 1) + [0], planned.out + "".join(
            r.out + r.err for r in results
        )
    with start_server(state_path=state) as srv:  # look at the outcome without faults
        monkeypatch.setenv("OPENAI_BASE_URL", srv.base_url)
        runs = managed_runs(srv.base_url)
        assert {k: len(v) for k, v in runs.items()} == {"alpha": 2, "beta": 1, "gamma": 1}
        assert runs["beta"][0]["status"] == "cancelled"
        assert runs["gamma"][0]["metadata"]["suite"] == "faults-again"
        assert runs["alpha"][0]["instructions"] == "Changed, so replaced."
        final = ws.cli("plan", ws.path, "--detailed-exitcode")
        assert final.code == 0, final.out + final.err
