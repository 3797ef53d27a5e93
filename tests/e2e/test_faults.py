"""Under injected 429s, 500s, dropped connections and lost responses, apply converges with
zero duplicate runs and zero lost actions, and a second plan shows no changes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.harness import KEY, THREAD_A, THREAD_B, THREAD_C, Workspace, start_server

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


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_apply_converges_without_duplicates_under_faults(
    seed: int, ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    from reconciler.emulator import parse_faults, parse_rate_limit

    faults = parse_faults("500=0.15,drop=0.1,lost_create=0.5")
    with start_server(seed=seed, faults=faults, rate_limit=parse_rate_limit("40/s")) as srv:
        monkeypatch.setenv("OPENAI_BASE_URL", srv.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", KEY)
        ws.write("runs.yaml", MANIFEST)
        for _ in range(4):  # an apply may end with failures; the next one converges
            result = ws.cli("apply", ws.path, "--auto-approve", "--wait")
            assert "Traceback" not in result.err
            if result.code == 0:
                break
        assert result.code == 0, result.out + result.err
        runs = managed_runs(srv.base_url)
        assert sorted(runs) == ["alpha", "beta", "gamma"]
        assert all(len(v) == 1 for v in runs.values()), {k: len(v) for k, v in runs.items()}
        assert runs["beta"][0]["status"] == "completed"
        for _ in range(3):  # a read can still exhaust its retries under faults: plan again
            final = ws.cli("plan", ws.path, "--detailed-exitcode")
            if final.code != 1:
                break
        assert final.code == 0, final.out + final.err


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


@pytest.mark.parametrize("seed", [5, 6])
def test_modify_cancel_and_replace_converge_under_faults(
    seed: int, ws: Workspace, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
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
        for _ in range(5):
            result = ws.cli("apply", ws.path, "--auto-approve")
            assert "Traceback" not in result.err
            if result.code == 0:
                break
        assert result.code == 0, planned.out + result.out + result.err
    with start_server(state_path=state) as srv:  # look at the outcome without faults
        monkeypatch.setenv("OPENAI_BASE_URL", srv.base_url)
        runs = managed_runs(srv.base_url)
        assert {k: len(v) for k, v in runs.items()} == {"alpha": 2, "beta": 1, "gamma": 1}
        assert runs["beta"][0]["status"] == "cancelled"
        assert runs["gamma"][0]["metadata"]["suite"] == "faults-again"
        assert runs["alpha"][0]["instructions"] == "Changed, so replaced."
        final = ws.cli("plan", ws.path, "--detailed-exitcode")
        assert final.code == 0, final.out + final.err
