"""The ``reconciler-validate`` hook, installed by pre-commit itself (``try-repo``), offline.

``pre-commit try-repo`` clones the hook's repository and pip-installs it into a fresh
virtualenv, as it does for a user. Tests reach no network beyond loopback, so the install is
kept off PyPI, and nothing else is changed:

- the repository is a git snapshot of this checkout (try-repo itself would see only
  committed and tracked files, and works in the checkout's own git folder);
- pip reads no configuration and no index, and builds the package with the virtualenv's own
  setuptools (no build isolation, which would fetch the build requirements);
- reconciler's runtime dependencies, exactly those its ``pyproject.toml`` declares and theirs,
  are reached through ``PYTHONPATH`` in a folder of links into this test environment: pip
  sees them installed, and an import the package does not declare would fail the hook.
"""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import subprocess
import sys
import textwrap
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
HOOK = "reconciler-validate"
SNAPSHOT_FILES = ("pyproject.toml", "README.md", ".pre-commit-hooks.yaml")
GIT_IDENTITY = ("-c", "user.name=reconciler tests", "-c", "user.email=tests@localhost")


@dataclass(frozen=True)
class HookRepo:
    """A snapshot of this checkout as a git repository, pre-commit's home, the dependencies."""

    path: Path
    rev: str
    home: Path
    deps: Path


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(["git", *GIT_IDENTITY, *args], cwd=cwd, check=True, text=True,
                          capture_output=True)
    return done.stdout.strip()


def runtime_closure(pyproject: Path) -> list[importlib.metadata.Distribution]:
    """The installed distributions the package of ``pyproject`` needs at run time: its
    declared dependencies and theirs (extras and markers honoured)."""
    declared = tomllib.loads(pyproject.read_text("utf-8"))["project"]["dependencies"]
    seen: set[tuple[str, frozenset[str]]] = set()
    found: dict[str, importlib.metadata.Distribution] = {}
    todo = [Requirement(text) for text in declared]
    while todo:
        req = todo.pop()
        key = (canonicalize_name(req.name), frozenset(req.extras))
        if key in seen:
            continue
        seen.add(key)
        dist = importlib.metadata.distribution(req.name)
        found[key[0]] = dist
        for text in dist.requires or []:
            needed = Requirement(text)
            if needed.marker is None or any(needed.marker.evaluate({"extra": e})
                                            for e in req.extras | {""}):
                todo.append(needed)
    return list(found.values())


def link_dependencies(target: Path, pyproject: Path) -> Path:
    """A folder of links to each runtime dependency's top-level files (no ``.pth``)."""
    target.mkdir()
    for dist in runtime_closure(pyproject):
        for file in dist.files or []:
            top = file.parts[0]
            if top.startswith("..") or top.endswith(".pth") or top == "__pycache__":
                continue  # console scripts, path hooks: not importable code
            link = target / top
            if not link.exists():
                link.symlink_to(Path(str(dist.locate_file(top))))
    return target


@pytest.fixture(scope="module")
def hook_repo(tmp_path_factory: pytest.TempPathFactory) -> HookRepo:
    root = tmp_path_factory.mktemp("hook")
    snapshot = root / "repo"
    shutil.copytree(REPO / "reconciler", snapshot / "reconciler",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name in SNAPSHOT_FILES:
        shutil.copy2(REPO / name, snapshot / name)
    git(snapshot, "init", "-q")
    git(snapshot, "add", "-A")
    git(snapshot, "commit", "-q", "-m", "snapshot")
    return HookRepo(snapshot, git(snapshot, "rev-parse", "HEAD"), root / "pre-commit-home",
                    link_dependencies(root / "deps", snapshot / "pyproject.toml"))


def offline_env(hook: HookRepo) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PIP_", "VIRTUALENV_", "PRE_COMMIT", "PYTHON", "GIT_"))}
    env.update(
        PRE_COMMIT_HOME=str(hook.home),
        PIP_CONFIG_FILE=os.devnull,
        PIP_NO_INDEX="1",
        PIP_NO_BUILD_ISOLATION="0",  # pip's spelling of --no-build-isolation
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        VIRTUALENV_NO_PERIODIC_UPDATE="1",
        VIRTUALENV_SETUPTOOLS="bundle",  # seeded for every Python, for the build
        VIRTUALENV_OVERRIDE_APP_DATA=str(hook.home / "virtualenv"),
        PYTHONPATH=str(hook.deps),
        NO_COLOR="1",
    )
    return env


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Path]:
    """A user's repository: the example manifests, and YAML that is no manifest."""
    root = tmp_path / "project"
    shutil.copytree(REPO / "manifests", root / "manifests",
                    ignore=shutil.ignore_patterns(".reconciler"))
    (root / ".github" / "workflows").mkdir(parents=True)
    (root / ".github" / "workflows" / "ci.yml").write_text("on: push\njobs: {}\n")
    (root / "notes.yaml").write_text("just: notes\n")
    git(root, "init", "-q")
    git(root, "add", "-A")
    yield root


def try_repo(hook: HookRepo, project: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pre_commit", "try-repo", str(hook.path), HOOK,
         "--ref", hook.rev, "--all-files", "--verbose", "--color", "never"],
        cwd=project, env=offline_env(hook), text=True, capture_output=True, timeout=300,
    )


def test_the_hook_passes_the_examples_and_leaves_other_yaml_alone(
    hook_repo: HookRepo, project: Path
) -> None:
    done = try_repo(hook_repo, project)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "reconciler validate" in output and "Passed" in output
    # Only the two manifest files went in (3 runs, one file with two documents): the
    # workflow and notes.yaml would have failed as unknown documents.
    assert "The manifests are valid: 3 runs on 3 threads." in output
    assert "Installing environment for" in output  # its own virtualenv, from the snapshot


def test_the_hook_fails_a_bad_manifest_and_says_where(
    hook_repo: HookRepo, project: Path
) -> None:
    broken = textwrap.dedent("""\
        apiVersion: reconciler/v1
        kind: Runs
        runs:
          - {name: fine, thread_id: thread_demo_reports, assistant_id: asst_demo}
        ---
        apiVersion: reconciler/v1
        kind: Runs
        runs:
          - name: typo
            thread_id: thread_demo_triage
            assistant_id: asst_demo
            temprature: 0.2
        """)
    (project / "manifests" / "broken.yaml").write_text(broken)
    git(project, "add", "manifests/broken.yaml")
    line = broken.splitlines().index("    temprature: 0.2") + 1
    column = broken.splitlines()[line - 1].index("temprature") + 1

    done = try_repo(hook_repo, project)
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert "Failed" in output
    located = [text for text in output.splitlines()
               if text.startswith(f"manifests/broken.yaml:{line}:{column}: ")]
    assert len(located) == 1, output
    assert "temprature" in located[0]
    assert "nothing was sent to the API" in output
    assert "Traceback" not in output


def test_the_hooks_file_is_a_valid_manifest_and_the_readme_names_its_hook() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pre_commit", "validate-manifest", ".pre-commit-hooks.yaml"],
        cwd=REPO, text=True, capture_output=True, timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    (hook,) = yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text("utf-8"))
    assert (hook["id"], hook["entry"], hook["language"]) == (
        HOOK, "reconciler validate", "python")  # installable from the repository, not "system"
    readme = (REPO / "README.md").read_text("utf-8")
    section = readme.split("## In a pipeline", 1)[1].split("\n## ", 1)[0]
    assert f"- id: {HOOK}" in section
