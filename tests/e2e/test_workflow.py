"""The example GitHub workflow (``.github/workflows/reconciler.yml``), checked and run here.

It must be a valid workflow (GitHub's JSON Schema, as check-jsonschema ships it: no network),
ask for no more than it needs, and work: its jobs run step by step against the emulator over
a loopback socket (``tests/e2e/pipeline.py``), from a pull request's plan to the merge that
applies exactly that plan, or refuses it.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from reconciler import __version__
from reconciler.cli import cli
from reconciler.saved import read_plan_file
from tests.e2e.harness import (
    KEY,
    THREAD_A,
    THREAD_B,
    THREAD_C,
    Api,
    BackgroundServer,
    start_server,
)
from tests.e2e.pipeline import (
    WORKFLOW,
    Event,
    Pipeline,
    StepResult,
    command_lines,
    load_workflow,
    reconciler_steps,
    used_flags,
)

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
HEAD_SHA = "1" * 40
MERGE_SHA = "2" * 40
THREADS = (THREAD_A, THREAD_B, THREAD_C)
#: The runs the example manifests declare, by thread.
DECLARED = {THREAD_A: "weekly-report", THREAD_B: "backlog-triage", THREAD_C: "competitor-scan"}


def check_workflow(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.github-workflows",
         str(path)], text=True, capture_output=True, timeout=60,
    )


def failed(results: list[StepResult]) -> str:
    return "\n".join(result.text for result in results)


@pytest.fixture
def pipeline(tmp_path: Path, server: BackgroundServer) -> Pipeline:
    """A repository holding the example manifests, its secrets pointing at the emulator."""
    return copy_examples(Pipeline(tmp_path, {
        "OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": server.base_url, "RECONCILER_LOCK_URL": ""}))


def copy_examples(repo: Pipeline) -> Pipeline:
    shutil.copytree(REPO / "manifests", repo.workspace / "manifests",
                    ignore=shutil.ignore_patterns(".reconciler"))
    return repo


def pull_request(number: int = 7, head_sha: str = HEAD_SHA, run_id: int = 101) -> Event:
    return Event("pull_request", f"refs/pull/{number}/merge", "3" * 40, run_id=run_id,
                 pr_number=number, pr_head_sha=head_sha)


def planned(pipeline: Pipeline, pr: Event | None = None) -> Event:
    """A pull request's plan job, which must succeed."""
    pr = pr or pull_request()
    results = pipeline.run_job("plan", pr)
    assert results[-1].code == 0, failed(results)
    return pr


# --- the file itself --------------------------------------------------------------------------


def test_the_workflow_is_valid_against_githubs_schema_offline(tmp_path: Path) -> None:
    done = check_workflow(WORKFLOW)
    assert done.returncode == 0, done.stdout + done.stderr
    broken = WORKFLOW.read_text("utf-8").replace("pull-requests: write", "pull-requests: all")
    assert broken != WORKFLOW.read_text("utf-8")
    (tmp_path / "broken.yml").write_text(broken)
    done = check_workflow(tmp_path / "broken.yml")
    assert done.returncode == 1, "the schema check must catch a wrong permission"


def test_the_workflow_asks_for_the_least_and_serialises_applies() -> None:
    workflow = load_workflow()
    assert set(workflow["on"]) == {"push", "pull_request"}
    assert workflow["permissions"] == {}
    jobs = workflow["jobs"]
    # Reviewed by hand: the least each job needs (PR comments; reading the other run's artifact
    # and the merged pull request).
    assert jobs["validate"]["permissions"] == {"contents": "read"}
    assert jobs["plan"]["permissions"] == {"contents": "read", "pull-requests": "write"}
    assert jobs["apply"]["permissions"] == {
        "contents": "read", "actions": "read", "pull-requests": "read"}
    assert "pull_request" in jobs["plan"]["if"] and "head.repo.full_name" in jobs["plan"]["if"]
    assert "push" in jobs["apply"]["if"] and "refs/heads/main" in jobs["apply"]["if"]
    project = tomllib.loads((REPO / "manifests" / "reconciler.toml").read_text())["project"]
    assert jobs["apply"]["concurrency"] == {
        "group": f"reconciler-apply-{project}", "cancel-in-progress": False}
    assert "concurrency" not in jobs["plan"]  # plans only read: they never wait for an apply
    # A saved plan is bound to its backend: plan and apply must see the same one.
    backend = ("OPENAI_API_KEY", "OPENAI_BASE_URL")
    assert [jobs["plan"]["env"][k] for k in backend] == [jobs["apply"]["env"][k] for k in backend]
    assert jobs["plan"]["env"]["OPENAI_API_KEY"] == "${{ secrets.OPENAI_API_KEY }}"
    assert workflow["env"]["RECONCILER_VERSION"] == __version__


def test_every_reconciler_command_uses_flags_the_cli_has() -> None:
    """Each flag of each command line is in that command's ``--help``: a flag that has not
    landed yet (``plan --out-dir`` came with issue 10's first item) fails here by name."""
    steps = reconciler_steps(load_workflow())
    assert {job for job, _ in steps} == {"validate", "plan", "apply"}
    for job, line in steps:
        command, flags = used_flags(line)
        help_text = CliRunner().invoke(cli, [command, "--help"]).output
        missing = [flag for flag in flags if flag not in help_text.split()]
        assert not missing, (
            f"the {job} job runs `{line}`, but `reconciler {command} --help` does not list "
            f"{', '.join(missing)}: that flag has not landed in this checkout"
        )


def documented_command_lines(text: str) -> list[str]:
    """The ``reconciler …`` lines of the code blocks of ``text`` (``run:`` prefixes removed)."""
    blocks = re.findall(r"```(?:sh|yaml)\n(.+?)```", text, flags=re.DOTALL)
    lines = [re.sub(r"^\s*(?:- )?run: ", "", line) for block in blocks
             for line in block.splitlines()]
    return command_lines("\n".join(lines))


def test_the_docs_show_the_commands_the_workflow_runs() -> None:
    ran = {line for _, line in reconciler_steps(load_workflow())}
    readme = (REPO / "README.md").read_text("utf-8")
    section = readme.split("## In a pipeline", 1)[1].split("\n## ", 1)[0]
    guide = (REPO / "docs" / "gitops.md").read_text("utf-8")
    shown = documented_command_lines(section) + documented_command_lines(guide)
    assert len(shown) >= 4
    assert [line for line in shown if line not in ran] == []


def test_command_lines_are_found_in_scripts_with_continuations() -> None:
    script = 'echo hi\nreconciler plan "$M" \\\n    --out p.json\n  reconciler validate x\n'
    assert command_lines(script) == ['reconciler plan "$M" --out p.json', "reconciler validate x"]
    assert used_flags('reconciler plan "$M" --out=p.json --detailed-exitcode') == (
        "plan", ["--out", "--detailed-exitcode"])


# --- the jobs, against the emulator -----------------------------------------------------------


def test_validate_passes_the_examples_and_annotates_a_broken_manifest(
    pipeline: Pipeline,
) -> None:
    push = Event("push", "refs/heads/feature", "4" * 40, run_id=100)
    results = pipeline.run_job("validate", push)
    assert [r.code for r in results] == [0] * len(load_workflow()["jobs"]["validate"]["steps"])

    (pipeline.workspace / "manifests" / "broken.yaml").write_text(
        "apiVersion: reconciler/v1\nkind: Runs\nruns:\n  - {name: Bad_Name}\n")
    results = pipeline.run_job("validate", push)
    assert results[-1].code == 1, failed(results)
    annotations = [line for line in results[-1].out.splitlines() if line.startswith("::error ")]
    assert annotations and all("file=manifests/broken.yaml,line=4" in a for a in annotations)


def test_a_pull_request_is_planned_posted_and_saved_and_changes_nothing(
    pipeline: Pipeline, api: Api,
) -> None:
    planned(pipeline)
    comments = pipeline.world()["comments"]
    written = sorted((pipeline.workspace / "comments").glob("comment-*.md"),
                     key=lambda p: int(p.stem.split("-")[1]))
    assert [c["file"] for c in comments] == [f"comments/{p.name}" for p in written]
    assert [c["body"] for c in comments] == [p.read_text("utf-8") for p in written]
    assert {c["number"] for c in comments} == {"7"}
    assert "3 to create" in comments[0]["body"].split("\n\n", 1)[0]
    assert KEY not in "".join(c["body"] for c in comments)
    saved = pipeline.artifacts / "101" / f"reconciler-plan-{HEAD_SHA}" / "plan.json"
    assert sorted(c.address for c in read_plan_file(str(saved)).changes) == sorted(
        f"{thread}/{name}" for thread, name in DECLARED.items())
    assert all(api.runs(thread) == [] for thread in THREADS)


def test_the_merge_applies_exactly_the_plan_reviewed_in_the_pull_request(
    pipeline: Pipeline, api: Api,
) -> None:
    pr = planned(pipeline)
    # After the review, a manifest gains a run: no reviewed plan holds it, so it waits.
    (pipeline.workspace / "manifests" / "later.yaml").write_text(yaml.safe_dump({
        "apiVersion": "reconciler/v1", "kind": "Runs",
        "runs": [{"name": "added-later", "thread_id": THREAD_A, "assistant_id": "asst_demo"}],
    }))
    push = pipeline.merge(pr, MERGE_SHA, run_id=102)
    for job in ("validate", "apply"):
        results = pipeline.run_job(job, push)
        assert results[-1].code == 0, failed(results)
    assert (pipeline.workspace / "manifests" / "plan.json").is_file()
    assert "Apply complete: 3 applied, 0 failed, 0 not attempted." in results[-1].out
    for thread, name in DECLARED.items():
        assert len(api.managed(thread, name)) == 1
    assert api.managed(THREAD_A, "added-later") == []


def test_of_two_pull_requests_planned_together_the_second_merge_is_refused_as_stale(
    pipeline: Pipeline, api: Api,
) -> None:
    """Both plans create the same runs; the first merge applies them, so the second plan is
    stale: refused, with no duplicate run."""
    first = planned(pipeline)
    second = planned(pipeline, pull_request(8, "5" * 40, run_id=103))
    results = pipeline.run_job("apply", pipeline.merge(first, MERGE_SHA, run_id=104))
    assert results[-1].code == 0, failed(results)
    results = pipeline.run_job("apply", pipeline.merge(second, "6" * 40, run_id=105))
    assert results[-1].name.startswith("Apply exactly that plan"), failed(results)
    assert results[-1].code == 1
    assert "saved plan is stale" in results[-1].err
    assert "Traceback" not in results[-1].err
    for thread, name in DECLARED.items():
        assert len(api.managed(thread, name)) == 1, (thread, name)


@pytest.mark.parametrize("case", ["no pull request", "no successful plan"])
def test_a_merge_without_a_reviewed_plan_applies_nothing(
    pipeline: Pipeline, api: Api, case: str,
) -> None:
    if case == "no pull request":
        push = Event("push", "refs/heads/main", MERGE_SHA, run_id=102)
        says = "merges no pull request"
    else:
        pr = pull_request()
        pipeline.record_run(pr, "failure")
        push = pipeline.merge(pr, MERGE_SHA, run_id=102)
        says = "no successful plan"
    results = pipeline.run_job("apply", push)
    assert results[-1].name.startswith("Fetch the plan"), failed(results)
    assert results[-1].code == 1
    assert "::error::" in results[-1].out and says in results[-1].out
    assert all(api.runs(thread) == [] for thread in THREADS)


def documented_azure_env() -> dict[str, Any]:
    """The ``env`` block of docs/gitops.md's "Azure hosts" section."""
    text = (REPO / "docs" / "gitops.md").read_text("utf-8")
    section = text.split("## Azure hosts", 1)[1].split("\n## ", 1)[0]
    found = re.search(r"```yaml\n(.+?)```", section, flags=re.DOTALL)
    assert found, "docs/gitops.md shows the Azure variables in a yaml block"
    env: dict[str, Any] = yaml.safe_load(found.group(1))["env"]
    return env


def test_the_documented_azure_setup_plans_and_applies(tmp_path: Path) -> None:
    workflow = load_workflow()
    azure = documented_azure_env()
    for job in ("plan", "apply"):
        env = workflow["jobs"][job]["env"]
        workflow["jobs"][job]["env"] = {
            **{k: v for k, v in env.items() if k not in ("OPENAI_API_KEY", "OPENAI_BASE_URL")},
            **azure,
        }
    with start_server(auth="azure", path_prefix="/openai") as server:
        endpoint = server.base_url.removesuffix("/openai")
        repo = copy_examples(Pipeline(tmp_path, {
            "AZURE_OPENAI_API_KEY": KEY, "AZURE_OPENAI_ENDPOINT": endpoint,
            "RECONCILER_LOCK_URL": ""}, workflow))
        pr = planned(repo)
        saved = repo.artifacts / "101" / f"reconciler-plan-{HEAD_SHA}" / "plan.json"
        backend = read_plan_file(str(saved)).backend
        assert backend is not None
        assert (backend.base_url, backend.auth, backend.api_version) == (
            server.base_url, "azure", str(azure["OPENAI_API_VERSION"]))
        results = repo.run_job("apply", repo.merge(pr, MERGE_SHA, run_id=102))
        assert results[-1].code == 0, failed(results)
        assert "Apply complete: 3 applied, 0 failed, 0 not attempted." in results[-1].out
