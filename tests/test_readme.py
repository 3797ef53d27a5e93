"""The README stays true: its test command is what CI runs, and its commands exist."""

from __future__ import annotations

import re
from pathlib import Path

from click.testing import CliRunner

from reconciler.cli import cli

ROOT = Path(__file__).resolve().parent.parent


def quickstart_commands() -> list[str]:
    text = (ROOT / "README.md").read_text("utf-8")
    section = text.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.+?)\n```", section)


def test_quickstart_has_exactly_two_commands() -> None:
    commands = quickstart_commands()
    assert len(commands) == 2
    assert "plan manifests/" in commands[0] and "apply manifests/" in commands[0]
    assert "pytest" in commands[1]


def test_ci_runs_the_readme_test_command_word_for_word() -> None:
    ci = (ROOT / ".ci" / "run").read_text("utf-8")
    assert quickstart_commands()[1] in ci.splitlines()


def test_every_command_in_the_readme_table_exists() -> None:
    text = (ROOT / "README.md").read_text("utf-8")
    named = set(re.findall(r"^\| `reconciler (\w+)", text, flags=re.MULTILINE))
    assert {"validate", "plan", "apply", "show", "export", "query", "emulator"} <= named
    for command in named:
        result = CliRunner().invoke(cli, [command, "--help"])
        assert result.exit_code == 0, (command, result.output)


def test_the_global_and_backend_options_the_readme_names_exist() -> None:
    text = (ROOT / "README.md").read_text("utf-8")
    for option in ("--quiet", "--verbose", "--color/--no-color", "--debug"):
        assert f"`{option}" in text
        assert option.split("/")[0] in CliRunner().invoke(cli, ["--help"]).output
    for command in ("plan", "apply", "export", "query", "status"):
        shown = CliRunner().invoke(cli, [command, "--help"]).output
        assert "--auth [bearer|azure]" in shown and "--api-version VERSION" in shown, command
    assert "`--auth bearer|azure`, `--api-version VERSION`" in text
    assert "_RECONCILER_COMPLETE=bash_source reconciler" in text
