"""The terminal the commands talk through: settings, colour, stderr, the prompt, the views.

The CLI's side of :class:`reconciler.workflow.Terminal`: the options every command shares on
the click context, whether to colour, one-line messages on stderr, the confirmation prompt,
a plan in the chosen format, apply's progress (a live table at a terminal, plain lines in
logs and pipes), the lock's holder in a sentence, and the redactor every byte of output
passes through.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.console import Console

from reconciler import session
from reconciler.errors import ConfigError
from reconciler.plan import Plan
from reconciler.progress import LiveProgress, PlainProgress
from reconciler.redact import RedactingStream, Redactor
from reconciler.render import render_json, render_markdown, render_text
from reconciler.workflow import Terminal

if TYPE_CHECKING:
    from reconciler.lock import LockStatus

FORMATS = ("text", "json", "markdown")


@dataclass
class Settings:
    """Options shared by every command, collected on the click context."""

    debug: bool = False
    color: bool | None = None  # None: colour when stdout is a terminal
    emulator: bool = False  # `reconciler --emulator plan …` as well as `plan … --emulator`
    argv: list[str] | None = None  # the command line, for the lock's holder record


def settings() -> Settings:
    obj = click.get_current_context().find_object(Settings)
    return obj if obj is not None else Settings()


def command_line() -> str:
    """The command as typed, for the lock's holder record."""
    return session.command_line(settings().argv)


def use_color() -> bool:
    wanted = settings().color
    if wanted is not None:
        return wanted
    return sys.stdout.isatty() and "NO_COLOR" not in os.environ


def err(message: str) -> None:
    click.echo(message, err=True)


def confirm(command: str = "apply", verb: str = "apply") -> bool:
    """Terraform's "Only 'yes' will be accepted"; refused when nobody can answer."""
    if not sys.stdin.isatty():
        raise ConfigError(
            f"{command} needs confirmation and standard input is not a terminal; "
            f"pass --auto-approve to {verb} without asking"
        )
    answer = click.prompt(
        "Do you want to perform these actions? Only 'yes' will be accepted", default="",
        show_default=False,
    )
    return str(answer).strip() == "yes"


def render(plan_value: Plan, fmt: str) -> str:
    """The plan in one of :data:`FORMATS` (text in colour when the terminal takes it)."""
    if fmt == "json":
        return render_json(plan_value)
    if fmt == "markdown":
        return render_markdown(plan_value)
    return render_text(plan_value, color=use_color())


def progress_view(color: bool) -> PlainProgress | LiveProgress:
    """A live table at a terminal; plain lines in logs and pipes."""
    if sys.stdout.isatty() and os.environ.get("TERM") != "dumb":
        return LiveProgress(Console(no_color=not color))
    return PlainProgress(click.echo, color=color)


def current(
    auto_approve: bool = False, asking: tuple[str, str] = ("apply", "apply")
) -> Terminal:
    """This terminal, for a session (``auto_approve``: every confirmation is a yes).

    ``asking`` is the command and verb a refused confirmation names.
    """
    color = use_color()
    return Terminal(
        echo=click.echo, warn=err,
        confirm=(lambda: True) if auto_approve else functools.partial(confirm, *asking),
        progress=lambda: progress_view(color), color=color,
    )


@contextlib.contextmanager
def redacted_output(redactor: Redactor | None = None) -> Iterator[None]:
    """Standard output and standard error through one redactor (from the environment) for the
    whole command, so no secret reaches the terminal or a log, whoever prints it."""
    redactor = Redactor.from_env() if redactor is None else redactor
    out, error = sys.stdout, sys.stderr
    sys.stdout = RedactingStream(out, redactor)
    sys.stderr = RedactingStream(error, redactor)
    try:
        yield
    finally:
        sys.stdout, sys.stderr = out, error


def describe_lock(folder: Path, status: LockStatus) -> str:
    """``lock show``'s sentence: who holds the lock in ``folder``, if anyone does."""
    if status.holder is None:
        return f"Not locked ({folder})."
    if status.held:
        return f"Locked by {status.holder.describe()}."
    return f"Not locked: the last holder, {status.holder.describe()}, is gone."
