"""Small things a new user notices, end to end against the emulator: a drift on one metadata
key lists that key, reconciler.toml problems are named as such, one --concurrency range, an
apply with nothing to do still reports, and every timestamp in one format."""

from __future__ import annotations

import re

import pytest

from tests.e2e.harness import THREAD_A, Api, Workspace

pytestmark = pytest.mark.e2e

RUN = f"""\
    apiVersion: reconciler/v1
    kind: Runs
    runs:
      - name: report
        thread_id: {THREAD_A}
        assistant_id: asst_demo
        metadata: {{team: analytics, cadence: weekly, owner: kpi-bot}}
"""
APPLIED = "Apply complete: 1 applied, 0 failed, 0 not attempted."
NOTHING = "Apply complete: 0 applied, 0 failed, 0 not attempted."


def test_a_drift_on_one_metadata_key_lists_only_that_key(
    env: object, ws: Workspace, api: Api,
) -> None:
    ws.write("runs.yaml", RUN)
    assert ws.cli("apply", ws.path, "--auto-approve").code == 0
    (run,) = api.managed(THREAD_A, "report")
    api.modify(THREAD_A, run["id"], {**run["metadata"], "team": "growth"})

    planned = ws.cli("plan", ws.path)

    assert planned.code == 0, planned.err
    drift = planned.out[planned.out.index("Changes outside"):
                       planned.out.index("Reconciler will perform")]
    assert f"the metadata of run {run['id']} was changed outside reconciler" in drift
    assert '~ metadata.team: "analytics" → "growth"' in drift
    assert "cadence" not in drift and "owner" not in drift
    assert "(value not recorded)" not in drift
    assert ws.cli("apply", ws.path, "--auto-approve").out.rstrip().endswith(APPLIED)


def test_an_apply_with_nothing_to_do_still_ends_with_its_report(
    env: object, ws: Workspace,
) -> None:
    ws.write("runs.yaml", RUN)
    planfile = str(ws.root / "plan.json")
    assert ws.cli("apply", ws.path, "--auto-approve").out.rstrip().endswith(APPLIED)

    again = ws.cli("apply", ws.path, "--auto-approve")
    assert ws.cli("plan", ws.path, "--out", planfile).code == 0
    saved = ws.cli("apply", planfile)

    for result in (again, saved):
        assert result.code == 0, result.err
        assert "No changes. Live runs match the manifests." in result.out
        assert result.out.rstrip().splitlines()[-1] == NOTHING


def test_reconciler_toml_problems_are_not_called_problems_in_the_manifests(
    ws: Workspace,
) -> None:
    ws.write("runs.yaml", RUN)
    (ws.root / "reconciler.toml").write_text('project = "e2e"\nconcurrency = 0\n')

    for command in ("validate", "plan"):
        result = ws.cli(command, ws.path)
        assert result.code == 1
        lines = result.err.strip().splitlines()
        assert lines[0].endswith("reconciler.toml:2:15: concurrency: expected an integer from 1 "
                                 "to 1024, got 0")
        assert re.fullmatch(r"Error: 1 problem in \S*reconciler\.toml; nothing was sent to the "
                            r"API\.", lines[-1]), lines[-1]
        assert "manifests" not in result.err


def test_concurrency_has_one_range_in_flags_and_file(env: object, ws: Workspace) -> None:
    ws.write("runs.yaml", RUN)
    assert ws.cli("plan", ws.path, "--concurrency", "1024").code == 0
    flag = ws.cli("plan", ws.path, "--concurrency", "1025")
    (ws.root / "reconciler.toml").write_text('project = "e2e"\nconcurrency = 1025\n')
    file = ws.cli("plan", ws.path)
    (ws.root / "reconciler.toml").write_text('project = "e2e"\nconcurrency = 1024\n')
    largest = ws.cli("plan", ws.path)

    assert flag.code == 1 and "1<=x<=1024" in flag.err
    assert file.code == 1 and "expected an integer from 1 to 1024, got 1025" in file.err
    assert largest.code == 0, largest.err


def test_the_export_header_and_the_runs_it_names_share_one_timestamp_format(
    env: object, ws: Workspace, api: Api,
) -> None:
    api.create(THREAD_A, {"assistant_id": "asst_demo"})

    exported = ws.cli("export", "--project", "e2e", "--thread", THREAD_A)

    assert exported.code == 0, exported.err
    stamp = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"
    assert re.search(rf"^# Exported by `reconciler export` at {stamp} for project 'e2e'",
                     exported.out, re.MULTILINE), exported.out[:400]
    assert re.search(rf", created {stamp}$", exported.out, re.MULTILINE), exported.out[:800]
    assert "+00:00" not in exported.out
