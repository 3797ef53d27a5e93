"""A small stand-in for GitHub Actions: runs the example workflow's jobs, step by step, here.

A job's ``run:`` steps go through ``bash -eo pipefail`` as on a runner, in a workspace that
plays the checkout, with the workflow's, job's and step's ``env`` and ``${{ … }}``
expressions replaced by test values (an expression without one fails the test, so a changed
workflow is noticed). ``reconciler`` is this checkout's (the ``pip install`` step is checked,
not run: no network); ``gh`` is ``fake_gh.py``; the actions the workflow uses have stand-ins
(checkout and setup-python have nothing left to do, upload-artifact files the artifact under
the run's id). Which job runs for an event is the test's choice, not evaluated from ``if:``.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.e2e.fake_gh import WORLD_ENV

REPO = Path(__file__).resolve().parents[2]
WORKFLOW = REPO / ".github" / "workflows" / "reconciler.yml"
FAKE_GH = Path(__file__).resolve().parent / "fake_gh.py"
REPOSITORY = "acme/assistants-runs"
TOKEN = "ghs_fake_token_for_the_workflow_test"
EXPRESSION = re.compile(r"\$\{\{\s*(.+?)\s*\}\}")
PIP_INSTALL = 'pip install "reconciler==$RECONCILER_VERSION"'
STEP_KEYS = frozenset({"name", "uses", "with", "run", "env"})


def load_workflow(path: Path = WORKFLOW) -> dict[str, Any]:
    """The workflow as data (YAML 1.1 reads the key ``on`` as True: given back as "on")."""
    data: dict[Any, Any] = yaml.safe_load(path.read_text("utf-8"))
    if True in data:
        data["on"] = data.pop(True)
    return data


def command_lines(script: str) -> list[str]:
    """The ``reconciler …`` command lines of a ``run:`` script, continuation lines joined."""
    joined = re.sub(r"[ \t]*\\\n\s*", " ", script)
    return [line.strip() for line in joined.splitlines()
            if line.strip().startswith("reconciler ")]


def reconciler_steps(workflow: dict[str, Any]) -> list[tuple[str, str]]:
    """(job, command line) for every ``reconciler`` command of every job."""
    return [(job, line) for job, spec in workflow["jobs"].items()
            for step in spec["steps"] if "run" in step for line in command_lines(step["run"])]


def used_flags(line: str) -> tuple[str, list[str]]:
    """The subcommand of a ``reconciler`` command line and the long flags it passes."""
    words = shlex.split(line)[1:]
    return words[0], [word.split("=", 1)[0] for word in words[1:] if word.startswith("--")]


@dataclass(frozen=True)
class Event:
    """What triggered one workflow run, as the ``github`` context and the runner's variables
    show it."""

    name: str  # push | pull_request
    ref: str
    sha: str
    run_id: int
    pr_number: int | None = None
    pr_head_sha: str | None = None

    def expressions(self) -> dict[str, str]:
        values = {"github.token": TOKEN, "github.repository": REPOSITORY}
        if self.pr_number is not None and self.pr_head_sha is not None:
            values["github.event.pull_request.number"] = str(self.pr_number)
            values["github.event.pull_request.head.sha"] = self.pr_head_sha
        return values


@dataclass
class StepResult:
    name: str
    code: int
    out: str = ""
    err: str = ""

    @property
    def text(self) -> str:
        return f"[{self.name}: exit {self.code}]\n{self.out}{self.err}"


@dataclass
class Pipeline:
    """A repository on a fake GitHub: the workspace, the runs and artifacts, ``gh``'s world."""

    root: Path
    secrets: dict[str, str]
    workflow: dict[str, Any] = field(default_factory=load_workflow)

    def __post_init__(self) -> None:
        self.workspace = self.root / "workspace"
        self.artifacts = self.root / "artifacts"
        self.bin = self.root / "bin"
        self.world_path = self.root / "world.json"
        for folder in (self.workspace, self.artifacts, self.bin, self.root / "home"):
            folder.mkdir(parents=True, exist_ok=True)
        shim = self.bin / "gh"
        shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{FAKE_GH}" "$@"\n')
        shim.chmod(0o755)
        self._save({"repository": REPOSITORY, "pulls": [], "runs": [],
                    "artifacts": str(self.artifacts), "comments": []})

    def world(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.world_path.read_text("utf-8"))
        return data

    def _save(self, world: dict[str, Any]) -> None:
        self.world_path.write_text(json.dumps(world))

    def record_run(self, event: Event, conclusion: str) -> None:
        world = self.world()
        world["runs"].append({"databaseId": event.run_id, "workflowName": self.workflow["name"],
                              "event": event.name, "headSha": event.pr_head_sha or event.sha,
                              "conclusion": conclusion})
        self._save(world)

    def merge(self, pr: Event, merge_sha: str, run_id: int) -> Event:
        """The push to main that merging ``pr`` makes."""
        world = self.world()
        world["pulls"].append({"number": pr.pr_number, "head_sha": pr.pr_head_sha,
                               "merge_sha": merge_sha, "merged_at": "2026-12-01T12:00:00Z"})
        self._save(world)
        return Event("push", "refs/heads/main", merge_sha, run_id)

    def run_job(self, job: str, event: Event) -> list[StepResult]:
        """Run ``job`` for ``event`` until a step fails, as a runner does; record the run as
        successful or failed (what ``gh run list --status`` sees)."""
        spec = self.workflow["jobs"][job]
        values = {**event.expressions(), **{f"secrets.{k}": v for k, v in self.secrets.items()}}
        env = {**self._runner_env(event),
               **substitute_all(self.workflow.get("env", {}), values),
               **substitute_all(spec.get("env", {}), values)}
        results: list[StepResult] = []
        for index, step in enumerate(spec["steps"]):
            assert set(step) <= STEP_KEYS, f"{job} step {index}: no stand-in for {set(step)}"
            name = step.get("name") or step.get("uses") or step["run"].splitlines()[0]
            step_env = {**env, **substitute_all(step.get("env", {}), values)}
            result = self._step(name, step, step_env, values, event)
            results.append(result)
            if result.code != 0:
                break
        self.record_run(event, "success" if results[-1].code == 0 else "failure")
        return results

    def _step(self, name: str, step: dict[str, Any], env: dict[str, str],
              values: dict[str, str], event: Event) -> StepResult:
        if "uses" in step:
            return self._action(name, step["uses"], substitute_all(step.get("with", {}), values),
                                event)
        script = substitute(step["run"], values)
        if "pip install" in script:  # never from here: tests reach no package index
            assert script.strip() == PIP_INSTALL, f"no stand-in for the step `{script.strip()}`"
            return StepResult(name, 0, "(the checkout's reconciler is installed)\n")
        done = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
                              cwd=self.workspace, env=env, text=True, capture_output=True,
                              stdin=subprocess.DEVNULL, timeout=120)
        return StepResult(name, done.returncode, done.stdout, done.stderr)

    def _action(self, name: str, uses: str, inputs: dict[str, str], event: Event) -> StepResult:
        action = uses.split("@", 1)[0]
        if action in ("actions/checkout", "actions/setup-python"):
            return StepResult(name, 0)  # the workspace is the checkout; Python is this one
        if action == "actions/upload-artifact":
            source = self.workspace / inputs["path"]
            if not source.is_file():
                code = 1 if inputs.get("if-no-files-found") == "error" else 0
                return StepResult(name, code, err=f"No files were found at {inputs['path']}\n")
            target = self.artifacts / str(event.run_id) / inputs["name"]
            target.mkdir(parents=True)
            shutil.copy2(source, target / source.name)
            return StepResult(name, 0, f"Uploaded artifact {inputs['name']}\n")
        raise AssertionError(f"no stand-in for the action {uses}")

    def _runner_env(self, event: Event) -> dict[str, str]:
        bin_dir = Path(sys.executable).parent
        assert (bin_dir / "reconciler").is_file(), f"no reconciler script in {bin_dir}"
        summary = self.root / f"summary-{event.run_id}.md"
        return {
            "PATH": os.pathsep.join([str(self.bin), str(bin_dir), os.environ.get("PATH", "")]),
            "HOME": str(self.root / "home"), "LANG": "C.UTF-8", "CI": "true", "NO_COLOR": "1",
            "GITHUB_ACTIONS": "true", "GITHUB_REPOSITORY": REPOSITORY,
            "GITHUB_WORKFLOW": self.workflow["name"], "GITHUB_EVENT_NAME": event.name,
            "GITHUB_REF": event.ref, "GITHUB_SHA": event.sha, "GITHUB_RUN_ID": str(event.run_id),
            "GITHUB_WORKSPACE": str(self.workspace), "GITHUB_STEP_SUMMARY": str(summary),
            "RUNNER_TEMP": str(self.root / "home"), WORLD_ENV: str(self.world_path),
        }


def substitute(text: str, values: dict[str, str]) -> str:
    """``text`` with every ``${{ expression }}`` replaced by its test value."""

    def value(match: re.Match[str]) -> str:
        expression = match.group(1)
        assert expression in values, f"no test value for the expression ${{{{ {expression} }}}}"
        return values[expression]

    return EXPRESSION.sub(value, text)


def substitute_all(mapping: dict[str, Any], values: dict[str, str]) -> dict[str, str]:
    return {key: substitute(str(value), values) for key, value in mapping.items()}
