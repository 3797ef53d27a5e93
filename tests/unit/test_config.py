"""reconciler.toml: parsing with located errors, and finding it beside the manifests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from reconciler.config import ProjectConfig, find_config, parse_config, read_config
from reconciler.model import SourceLocation

REPO = Path(__file__).resolve().parents[2]


def test_a_full_config() -> None:
    text = (
        'project = "analytics.prod"\n'
        'base_url = "https://example.test/openai/v1"\n'
        'auth = "azure"\n'
        'api_version = "2024-05-01-preview"\n'
        "concurrency = 32\n"
    )
    config, problems = parse_config(text, "reconciler.toml")
    assert problems == []
    assert config == ProjectConfig(
        project="analytics.prod",
        base_url="https://example.test/openai/v1",
        auth="azure",
        api_version="2024-05-01-preview",
        concurrency=32,
    )


def test_an_empty_config_is_all_defaults() -> None:
    assert parse_config("", "r.toml") == (ProjectConfig(), [])


def test_the_example_config_names_the_demo_project() -> None:
    config, problems = read_config(str(REPO / "manifests" / "reconciler.toml"))
    assert problems == []
    assert config.project == "demo"


@pytest.mark.parametrize(
    ("text", "line", "column", "fragment"),
    [
        ('project = "Demo"\n', 1, 11, "lower-case"),
        (f'project = "{"p" * 65}"\n', 1, 11, "at most 64"),
        ('project = "-x"\n', 1, 11, "starting with"),
        ("project = 7\n", 1, 11, "expected a string"),
        ('\n  proejct = "x"\n', 2, 3, "did you mean 'project'?"),
        ('base_url = "ftp://host"\n', 1, 12, "http"),
        ('auth = "azur"\n', 1, 8, "did you mean 'azure'?"),
        ('api_version = "2024-05-01"\n', 1, 1, "azure"),
        ("concurrency = 0\n", 1, 15, "1 to 1024"),
        ("concurrency = true\n", 1, 15, "got true"),
        ('project = "x"\n[server]\nport = 1\n', 2, 1, "unknown table 'server'"),
        ('project = "x\n', 1, 13, "TOML syntax error"),  # tomllib: the unclosed string's end
    ],
)
def test_each_problem_is_located(text: str, line: int, column: int, fragment: str) -> None:
    config, problems = parse_config(text, "cfg/reconciler.toml")
    assert len(problems) == 1, problems
    (problem,) = problems
    assert problem.location == SourceLocation("cfg/reconciler.toml", line, column)
    assert fragment in problem.message
    assert str(problem).startswith(f"cfg/reconciler.toml:{line}:{column}: ")
    assert config.project in (None, "x")


def test_azure_auth_may_leave_the_api_version_to_flags_or_environment() -> None:
    # --api-version or OPENAI_API_VERSION may supply it (the backend reports it missing)
    config, problems = parse_config('auth = "azure"\n', "r.toml")
    assert problems == []
    assert (config.auth, config.api_version) == ("azure", None)


def test_valid_values_survive_invalid_neighbours() -> None:
    config, problems = parse_config('project = "ok"\nconcurrency = -1\n', "r.toml")
    assert config.project == "ok" and config.concurrency is None
    assert len(problems) == 1


def test_find_config_in_the_directory_or_a_parent(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    (tmp_path / "reconciler.toml").write_text('project = "root"\n')
    nested = tmp_path / "deploy" / "runs"
    nested.mkdir(parents=True)
    manifest = nested / "a.yaml"
    manifest.write_text("")
    assert find_config([str(manifest)]) == str(tmp_path / "reconciler.toml")
    assert find_config([str(nested)]) == str(tmp_path / "reconciler.toml")
    (nested / "reconciler.toml").write_text('project = "near"\n')
    assert find_config([str(manifest)]) == str(nested / "reconciler.toml")
    assert find_config([str(nested)]) == str(nested / "reconciler.toml")


def test_find_config_stops_at_the_repository_root(tmp_path: Path) -> None:
    (tmp_path / "reconciler.toml").write_text('project = "outside"\n')
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    (repo / "manifests").mkdir()
    assert find_config([str(repo / "manifests")]) is None
    assert find_config([]) is None


def test_find_config_takes_the_first_path_that_has_one(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
    (tmp_path / "b" / "reconciler.toml").write_text("")
    found = find_config([str(tmp_path / "a" / "x.yaml"), str(tmp_path / "b")])
    assert found == str(tmp_path / "b" / "reconciler.toml")


def test_find_config_returns_a_relative_path_below_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / ".git").mkdir()
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "reconciler.toml").write_text("")
    monkeypatch.chdir(tmp_path)
    assert find_config(["m"]) == os.path.join("m", "reconciler.toml")


def test_read_config_refuses_what_is_not_a_small_text_file(tmp_path: Path) -> None:
    missing = str(tmp_path / "reconciler.toml")
    _, problems = read_config(missing)
    assert [p.location for p in problems] == [SourceLocation(missing, 0, 0)]
    binary = tmp_path / "bin.toml"
    binary.write_bytes(b"project = \xff\n")
    _, problems = read_config(str(binary))
    assert "UTF-8" in problems[0].message
