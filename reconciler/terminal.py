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
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import click

from reconciler import session
from reconciler.client import REQUEST_LOG
from reconciler.errors import ConfigError
from reconciler.flags import Settings
from reconciler.live import ThreadsRead
from reconciler.outputs import PLAN_FORMATS
from reconciler.planning import Plan
from reconciler.progress import LiveProgress, PlainProgress, QuietProgress, ThreadCounter
from reconciler.redact import Redactor
from reconciler.render import render_json, render_markdown, render_text
from reconciler.workflow import Terminal, not_counting

if TYPE_CHECKING:
    from reconciler.lock import LockStatus

FORMATS = PLAN_FORMATS


def settings() -> Settings:
    obj = click.get_current_context().find_object(Settings)
    return obj if obj is not None else Settings()


def command_line() -> str:
    """The command as typed, for the lock's holder record."""
    return session.command_line(settings().argv)


def use_color() -> bool:
    """``--color``/``--no-color`` when given (no-color.org: a flag beats ``NO_COLOR``), else
    colour at a terminal unless ``NO_COLOR`` is set to anything but the empty string.

    The group sets click's ``ctx.color`` to the flag too: click strips ANSI codes from
    whatever it echoes into a pipe unless told otherwise, which is why ``--color`` used to
    have no effect there.
    """
    wanted = settings().color
    if wanted is not None:
        return wanted
    return sys.stdout.isatty() and not os.environ.get("NO_COLOR")


def err(message: str) -> None:
    click.echo(message, err=True)


def note(message: str) -> None:
    """A hint on stderr (where a plan was saved, what to run next); not under ``--quiet``."""
    if not settings().quiet:
        err(message)


def _at_terminal() -> bool:
    """Both output streams are a terminal that can redraw a line in place."""
    return sys.stdout.isatty() and sys.stderr.isatty() and os.environ.get("TERM") != "dumb"


def reading() -> contextlib.AbstractContextManager[ThreadsRead]:
    """The live ``read N of M threads`` counter on stderr while a plan reads the live runs:
    only at a terminal (standard output and standard error both), never with ``--quiet`` or
    ``--verbose`` (whose request lines it would garble), never in a log or a pipe."""
    shown = settings()
    if shown.quiet or shown.verbose or not _at_terminal():
        return not_counting()
    return ThreadCounter(sys.stderr)


class _EchoHandler(logging.Handler):
    """``--verbose``: each request record as one line on stderr (through the redactor)."""

    def emit(self, record: logging.LogRecord) -> None:
        err(record.getMessage())


@contextlib.contextmanager
def requests_shown() -> Iterator[None]:
    """``--verbose`` for the whole command: the client's request hook printed on stderr."""
    handler = _EchoHandler(logging.DEBUG)
    level, propagate = REQUEST_LOG.level, REQUEST_LOG.propagate
    REQUEST_LOG.addHandler(handler)
    REQUEST_LOG.setLevel(logging.DEBUG)
    REQUEST_LOG.propagate = False
    try:
        yield
    finally:
        REQUEST_LOG.removeHandler(handler)
        REQUEST_LOG.setLevel(level)
        REQUEST_LOG.propagate = propagate


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
    if fmt == "markdown":  # redacted before long values are cut, not only when printed
        return render_markdown(plan_value, redact=Redactor.from_env().redact)
    if fmt == "github":
        from reconciler.render.github import render_github

        return render_github(plan_value, render_text(plan_value, color=False)).rstrip("\n")
    return render_text(plan_value, color=use_color())


def progress_view(color: bool) -> PlainProgress | LiveProgress:
    """A live table at a terminal; plain lines in logs and pipes; with ``--quiet`` only the
    actions and runs that failed."""
    if settings().quiet:
        return QuietProgress(click.echo, color=color)
    if sys.stdout.isatty() and os.environ.get("TERM") != "dumb":
        from rich.console import Console

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
        progress=lambda: progress_view(color), color=color, reading=reading,
        show_plan=not (settings().quiet and auto_approve),
    )


def describe_lock(folder: Path, status: LockStatus) -> str:
    """``lock show``'s sentence: who holds the lock in ``folder``, if anyone does."""
    if status.holder is None:
        return f"Not locked ({folder})."
    if status.held:
        return f"Locked by {status.holder.describe()}."
    return f"Not locked: the last holder, {status.holder.describe()}, is gone."
