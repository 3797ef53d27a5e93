"""The pull-request side of a pipeline, as the CLI: comments written to a folder, annotations.

Against the emulator over a loopback socket: ``plan --format markdown --out-dir DIR`` for a
plan too long for one comment (300 runs with 8-line instructions), ``--max-comments``, and
``validate`` / ``plan`` with ``--format github``.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.e2e.harness import KEY, THREAD_A, THREAD_B, THREAD_C, Workspace
from tests.fixtures import markdown_structure_problems

pytestmark = pytest.mark.e2e

LIMIT = 65_536
THREADS = (THREAD_A, THREAD_B, THREAD_C)


def many_runs(count: int = 300) -> str:
    """A manifest of ``count`` runs with 8-line instructions, the API key in one of them."""
    lines = ["apiVersion: reconciler/v1", "kind: Runs", "defaults:", "  assistant_id: asst_demo",
             "runs:"]
    for i in range(count):
        lines += [f"  - name: run-{i:03d}", f"    thread_id: {THREADS[i % 3]}",
                  "    instructions: |"]
        lines += [f"      Step {s}: read region {s}'s numbers and report them in a table."
                  for s in range(8)]
    if count > 7:
        lines.insert(lines.index("  - name: run-007") + 3, f"      Log in with {KEY} first.")
    return "\n".join(lines) + "\n"


def comment_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("comment-*.md"), key=lambda p: int(p.stem.split("-")[1]))


def test_plan_writes_numbered_comments_that_each_post(env: object, ws: Workspace) -> None:
    ws.write("runs.yaml", many_runs())
    folder = ws.root / "comments"
    folder.mkdir()
    (folder / "comment-9.md").write_text("a stale comment of an earlier, longer plan\n")
    result = ws.cli("plan", ws.path, "--format", "markdown", "--out-dir", str(folder))
    assert result.code == 0, result.err
    assert result.out == ""
    files = comment_files(folder)
    assert len(files) > 1 and not (folder / "comment-9.md").exists()
    assert f"Wrote the plan as {len(files)} comments: " in result.err
    texts = [f.read_text("utf-8") for f in files]
    for number, text in enumerate(texts, start=1):
        assert len(text) <= LIMIT and len(text.encode("utf-8")) <= LIMIT
        assert markdown_structure_problems(text) == []
        assert text.startswith("**Plan: 300 to create, 0 to modify, 0 to replace, 0 to cancel, "
                               "0 to answer.**\n")
        assert f"· comment {number} of {len(files)}." in text
        assert KEY not in text
    shown = re.findall(r"^`\+` `[^`]+/(run-\d+)` will be created$", "".join(texts), re.MULTILINE)
    assert sorted(shown) == [f"run-{i:03d}" for i in range(300)]
    assert "Log in with *** first." in "".join(texts)
    printed = ws.cli("plan", ws.path, "--format", "markdown")  # one document, and a hint
    assert printed.code == 0 and len(printed.out) > LIMIT
    assert "--out-dir DIR writes it as numbered comments that fit." in printed.err


def test_max_comments_points_to_the_saved_plan(env: object, ws: Workspace) -> None:
    ws.write("runs.yaml", many_runs())
    folder, saved = ws.root / "out", ws.root / "plan.json"
    result = ws.cli("plan", ws.path, "--format", "markdown", "--out-dir", str(folder),
                    "--max-comments", "2", "--out", str(saved))
    assert result.code == 0, result.err
    assert result.out == ""
    assert [f.name for f in comment_files(folder)] == ["comment-1.md", "comment-2.md"]
    last = (folder / "comment-2.md").read_text("utf-8")
    assert markdown_structure_problems(last) == []
    assert re.search(r"\*\*Not shown:\*\* \d+ runs on \d threads, from `thread_demo_\w+/run-\d+` "
                     r"on: the plan is cut to 2 comments\. The whole plan is saved in "
                     + re.escape(f"`{saved}`: `reconciler show {saved}` prints it.") + r"\n\Z",
                     last), last[-400:]
    shown = ws.cli("show", str(saved))
    assert shown.code == 0 and "300 to create" in shown.out


def test_comment_flags_need_markdown_and_a_folder(env: object, ws: Workspace) -> None:
    ws.write("runs.yaml", many_runs(3))
    text = ws.cli("plan", ws.path, "--out-dir", str(ws.root / "c"))
    assert text.code == 1 and "use it with --format markdown" in text.err
    alone = ws.cli("plan", ws.path, "--format", "markdown", "--max-comments", "2")
    assert alone.code == 1 and "give --out-dir DIR too" in alone.err
    assert not (ws.root / "c").exists()


BAD = """\
    apiVersion: reconciler/v1
    kind: Runs
    runs:
      - name: Bad_Name
        thread_id: thread_demo_reports
        assistant_id: asst_demo
        temperature: 5
"""


def test_validate_format_github_annotates_each_problem(env: object, ws: Workspace) -> None:
    bad = ws.write("bad.yaml", BAD)
    result = ws.cli("validate", str(bad), "--format", "github")
    assert result.code == 1
    name = str(bad).replace(":", "%3A").replace(",", "%2C")
    assert result.out.splitlines() == [
        f"::error file={name},line=4,col=11,title=reconciler validate::runs[0].name: "
        "'Bad_Name' is not valid: lower-case letters, digits and dashes, starting with a letter "
        "or digit",
        f"::error file={name},line=7,col=18,title=reconciler validate::runs[0].temperature: "
        "must be at most 2, got 5",
    ]
    assert result.err.strip() == "Error: 2 problems found."
    good = ws.write("good.yaml", many_runs(2))
    valid = ws.cli("validate", str(good), "--format", "github")
    assert (valid.code, valid.out) == (0, "")
    assert valid.err.strip() == "The manifests are valid: 2 runs on 2 threads."


def test_plan_format_github_annotates_the_declaring_lines(env: object, ws: Workspace) -> None:
    manifest = ws.write("runs.yaml", many_runs(2))
    result = ws.cli("plan", ws.path, "--format", "github")
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert lines[0] == '::group::Reconciler plan for project "e2e"'
    name = str(manifest).replace(":", "%3A").replace(",", "%2C")
    notices = [line for line in lines if line.startswith("::notice ")]
    assert notices == [
        f"::notice file={name},line={line},col=5,title=reconciler plan%3A create::"
        f"{thread}/run-00{i} will be created: no run with this name exists yet"
        for i, (line, thread) in enumerate(((6, THREAD_A), (17, THREAD_B)))
    ]
    assert lines[-1] == "Plan: 2 to create, 0 to modify, 0 to replace, 0 to cancel, 0 to answer."
