"""What ``plan`` and ``validate`` leave for people and machines, once the work is done.

The plan's view on stdout (or its Markdown comments in a folder, numbered to post), the
drift report of ``--drift-only``, and the verdict of ``validate`` in its formats. Values in,
lines out through the callbacks the CLI gives; the files written here are written atomically.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from reconciler.defaults import PLAN_FORMATS, VALIDATE_FORMATS
from reconciler.errors import ConfigError
from reconciler.files import write_text_file
from reconciler.loading import Checked, check_manifests, load_desired, load_project_config
from reconciler.manifest import Problem
from reconciler.planning import Plan
from reconciler.render.markdown import COMMENT_LIMIT

__all__ = [
    "PLAN_FORMATS", "VALIDATE_FORMATS", "PlanOutput", "show_drift", "show_plan",
    "validate_manifests", "write_comments",
]

Say = Callable[[str], None]



@dataclass(frozen=True)
class PlanOutput:
    """Where and how ``plan`` shows its result (its flags, checked together by the CLI)."""

    fmt: str = "text"
    out: str | None = None  # the saved plan
    out_dir: str | None = None  # the Markdown comments
    max_comments: int | None = None
    drift_only: bool = False
    detailed_exitcode: bool = False


def show_plan(
    plan: Plan, output: PlanOutput, render: Callable[[Plan, str], str], *, echo: Say,
    warn: Say, note: Say,
) -> None:
    """The plan in ``output.fmt`` on stdout, or as comments in ``output.out_dir``."""
    if output.out_dir is None:
        shown = render(plan, output.fmt)
        echo(shown)
        if output.fmt == "markdown" and len(shown.encode("utf-8")) > COMMENT_LIMIT:
            warn(f"The Markdown is longer than one comment may be ({COMMENT_LIMIT:,} "
                 "characters): --out-dir DIR writes it as numbered comments that fit.")
    else:
        written = write_comments(plan, output.out_dir, max_comments=output.max_comments,
                                 saved_plan=output.out)
        warn(f"Wrote the plan as {len(written)} comment{'s' if len(written) != 1 else ''}: "
             f"{', '.join(written)}.")
    if output.out:
        note(f"Saved the plan to {output.out}: apply it with `reconciler apply {output.out}`.")


def validate_manifests(
    paths: Sequence[str], fmt: str, *, echo: Say, warn: Say,
    problems: Callable[[Sequence[Problem], str], str],
) -> bool:
    """``validate``: a sentence when valid (text), or every problem at once for a machine
    (``github``, ``json``) on stdout with the verdict on stderr. Whether they are valid."""
    if fmt == "text":
        load_project_config(paths)  # a broken reconciler.toml is a validation error too
        desired = load_desired(paths).runs  # raises ManifestError, listing every problem
        echo(Checked((), len(desired), len({r.thread_id for r in desired})).summary())
        return True
    checked = check_manifests(paths)
    shown = problems(checked.problems, fmt)
    if shown:
        echo(shown.removesuffix("\n"))
    if checked.problems:
        count = len(checked.problems)
        warn(f"Error: {count} problem{'s' if count != 1 else ''} found.")
        return False
    warn(checked.summary())
    return True


def show_drift(plan: Plan, fmt: str, *, color: bool, echo: Say) -> None:
    """``plan --drift-only``: Terraform's ``-refresh-only``, what changed outside, nothing else."""
    from reconciler.render.drift import render_drift

    echo(render_drift(plan, fmt, color=color))


def write_comments(
    plan: Plan, out_dir: str, *, max_comments: int | None, saved_plan: str | None
) -> list[str]:
    """``plan --out-dir``: the plan as ``comment-1.md``, ``comment-2.md``, … in ``out_dir``,
    each written atomically; comment files an earlier, longer plan left there are removed,
    so a pipeline that posts ``comment-*.md`` never posts a stale one. The paths written."""
    import re

    from reconciler.redact import Redactor
    from reconciler.render.markdown import render_markdown_comments

    folder = Path(out_dir)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"{out_dir}: cannot make the folder ({exc.strerror or exc})") from exc
    comments = render_markdown_comments(
        plan, max_comments=max_comments, saved_plan=saved_plan, redact=Redactor.from_env().redact
    )
    written = []
    for number, text in enumerate(comments, start=1):
        path = str(folder / f"comment-{number}.md")
        write_text_file(path, text)
        written.append(path)
    for old in folder.glob("comment-*.md"):
        found = re.fullmatch(r"comment-([0-9]+)\.md", old.name)
        if found and int(found.group(1)) > len(comments):
            with contextlib.suppress(FileNotFoundError):
                old.unlink()
    return written
