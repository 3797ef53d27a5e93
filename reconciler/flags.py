"""The command line's flags: the option sets its commands share, and the values they give.

Click declarations and nothing else: :mod:`reconciler.cli` stacks these sets on its commands,
and the functions below turn what click parsed into the application layer's values
(:class:`~reconciler.backend.BackendFlags`, :class:`~reconciler.session.LockFlags`,
:class:`~reconciler.project.PlanFlags`, :class:`~reconciler.project.ApplyFlags`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import click

from reconciler.defaults import (
    DEFAULT_EMULATOR_STATE,
    MAX_CONCURRENCY,
    MAX_WAIT_SECONDS,
    PLAN_FORMATS,
)

if TYPE_CHECKING:  # the values' modules are imported when a command runs, not at --help
    from reconciler.backend import BackendFlags
    from reconciler.outputs import PlanOutput
    from reconciler.project import ApplyFlags, PlanFlags
    from reconciler.session import LockFlags

Decorator = Callable[[Callable[..., Any]], Any]


@dataclass
class Settings:
    """Options shared by every command, collected on the click context."""

    debug: bool = False
    color: bool | None = None  # None: colour when stdout is a terminal
    emulator: bool = False  # `reconciler --emulator plan …` as well as `plan … --emulator`
    argv: list[str] | None = None  # the command line, for the lock's holder record
    quiet: bool = False  # --quiet: only the result, warnings and errors
    verbose: bool = False  # --verbose: every request on stderr


def stack(*options: Decorator) -> Decorator:
    """One decorator applying ``options`` in the order written (the first shows first)."""
    def decorate(func: Callable[..., Any]) -> Any:
        for option in reversed(options):
            func = option(func)
        return func
    return decorate


#: The options of every command that talks to the API.
backend_options = stack(
    click.option("--emulator", is_flag=True,
                 help="Run against an embedded emulator whose state persists in a local file."),
    click.option("--emulator-state", default=DEFAULT_EMULATOR_STATE, show_default=True,
                 metavar="FILE", help="SQLite file of the embedded emulator."),
    click.option("--base-url", metavar="URL",
                 help="API base URL (default: OPENAI_BASE_URL, AZURE_OPENAI_ENDPOINT/openai, "
                      "reconciler.toml, or OpenAI's)."),
    click.option("--auth", type=click.Choice(("bearer", "azure")),
                 help="Send the key as Authorization: Bearer, or as api-key with ?api-version= "
                      "(default: azure when AZURE_OPENAI_ENDPOINT or AZURE_OPENAI_API_KEY is "
                      "set, else auth in reconciler.toml, else bearer)."),
    click.option("--api-version", metavar="VERSION",
                 help="Azure's api-version (default: OPENAI_API_VERSION, or api_version in "
                      "reconciler.toml)."),
    click.option("--concurrency", type=click.IntRange(1, MAX_CONCURRENCY), metavar="N",
                 help=f"Requests in flight at once, 1 to {MAX_CONCURRENCY} (default 16)."),
    click.option("--project", "project_flag", metavar="NAME",
                 help="Owning project name (default: `project` in reconciler.toml)."),
    click.option("--ca-bundle", metavar="FILE", type=click.Path(exists=True, dir_okay=False),
                 help="CA certificates to verify the host with (default: SSL_CERT_FILE, or the "
                      "system's)."),
    click.option("--allow-insecure-http", is_flag=True,
                 help="Send the key over plain http to a host that is not this machine."),
)

#: The options of every command that writes: the project lock (Terraform's names).
lock_options = stack(
    click.option("--lock", "lock_enabled", type=click.BOOL, default=True, show_default=True,
                 metavar="BOOL", help="Hold the project lock while writing (--lock=false: don't)."),
    click.option("--lock-timeout", type=click.FloatRange(0, MAX_WAIT_SECONDS), metavar="SECONDS",
                 help="How long to wait for the project lock (default 0: fail at once)."),
)


#: How ``plan`` shows its result: the format, the saved plan, the Markdown comments, drift.
plan_output_options = stack(
    click.option("--out", metavar="FILE", help="Save the plan (JSON) for `apply FILE`."),
    click.option("--format", "fmt", type=click.Choice(PLAN_FORMATS), default="text",
                 show_default=True),
    click.option("--detailed-exitcode", is_flag=True, help="Exit 2 when the plan has changes."),
    click.option("--out-dir", metavar="DIR",
                 help="With --format markdown: write comment-1.md, comment-2.md, … (each at "
                      "most 65,536 characters) to DIR instead of printing."),
    click.option("--max-comments", type=click.IntRange(min=1), metavar="N",
                 help="With --out-dir: at most N comments; the last says what is not shown."),
    click.option("--drift-only", is_flag=True,
                 help="Show only what changed outside reconciler (with --detailed-exitcode: "
                      "exit 2 when something did)."),
)


def plan_output(kwargs: dict[str, Any]) -> PlanOutput:
    """Take :data:`plan_output_options`' values out of ``kwargs``; refuse what cannot go
    together before anything is read."""
    from reconciler.outputs import PlanOutput

    output = PlanOutput(
        fmt=kwargs.pop("fmt"), out=kwargs.pop("out"), out_dir=kwargs.pop("out_dir"),
        max_comments=kwargs.pop("max_comments"), drift_only=kwargs.pop("drift_only"),
        detailed_exitcode=kwargs.pop("detailed_exitcode"),
    )
    if output.max_comments is not None and output.out_dir is None:
        raise click.UsageError("--max-comments limits the comments --out-dir writes; "
                               "give --out-dir DIR too")
    if output.out_dir is not None and (output.fmt != "markdown" or output.drift_only):
        raise click.UsageError("--out-dir writes the plan as Markdown comments: use it with "
                               "--format markdown (and without --drift-only)")
    if output.drift_only and output.out:
        raise click.UsageError(
            "--drift-only reports what changed outside reconciler, which is not a plan apply "
            "can execute, so it cannot be saved with --out; drop one of them"
        )
    if output.drift_only and output.fmt not in ("text", "json", "markdown"):
        raise click.UsageError(
            f"--drift-only shows text, json or markdown, not --format {output.fmt}"
        )
    return output


def plan_options(target_help: str) -> Decorator:
    """The options of the plan that ``plan`` and ``apply`` share (``--target``'s help differs)."""
    return stack(
        click.option("--prune", is_flag=True,
                     help="Cancel managed runs no manifest declares any more."),
        click.option("--allow-empty", is_flag=True,
                     help="Let --prune act when the manifests declare no run at all."),
        click.option("--target", "targets", multiple=True, metavar="NAME",
                     help=f"{target_help} (name or thread_id/name); repeatable."),
        click.option("--recreate-unmarked", is_flag=True,
                     help="Create new runs where a run lost its reserved metadata outside "
                          "reconciler."),
    )


#: How ``apply`` carries a plan out.
apply_options = stack(
    click.option("--wait", is_flag=True,
                 help="Follow created runs to the end, answering tool calls from tool_outputs."),
    click.option("--timeout", type=click.FloatRange(min=0), default=600.0, show_default=True,
                 metavar="SECONDS", help="How long to wait for busy threads and for --wait."),
    click.option("--settle-window", type=click.FloatRange(0, MAX_WAIT_SECONDS),
                 metavar="SECONDS",
                 help="How long an ambiguous create may take to show up before it is sent "
                      "again (default 60, or settle_window in reconciler.toml)."),
    click.option("--max-creates", type=click.IntRange(min=0), metavar="N",
                 help="Refuse a plan that creates more than N runs (creates and replaces; "
                      "default: max_creates in reconciler.toml, else no limit)."),
    click.option("--poll-interval", type=click.FloatRange(min=0.01), default=0.5, hidden=True),
    click.option("--settle-poll", type=click.FloatRange(min=0.01), default=1.0, hidden=True),
)

#: ``emulator serve``'s server and knobs (:func:`reconciler.emulator.options.serve_config`).
serve_options = stack(
    click.option("--host", default="127.0.0.1", show_default=True),
    click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True),
    click.option("--state", metavar="FILE",
                 help="SQLite file to keep state in (default: memory)."),
    click.option("--latency", metavar="SPEC", help="Added latency: 50ms, normal:50ms,10ms, …"),
    click.option("--rate-limit", metavar="SPEC", help="Requests per second, e.g. 20/s."),
    click.option("--faults", metavar="SPEC", help="Injected faults, e.g. 500=0.1,drop=0.05."),
    click.option("--seed", type=int, default=0, show_default=True,
                 help="Seed of every random knob."),
    click.option("--timing", type=click.Choice(("instant", "fast", "realistic")),
                 default="realistic", show_default=True,
                 help="How fast runs move through states."),
    click.option("--fixtures", metavar="FILE", help="Assistants and threads to create at start."),
    click.option("--demo", is_flag=True, help="Load the demo fixtures that manifests/ uses."),
    click.option("--api-key-env", metavar="NAME",
                 help="Require the key held in this environment variable."),
    click.option("--auth", type=click.Choice(("bearer", "azure")), default="bearer",
                 show_default=True,
                 help="How clients authenticate: OpenAI's bearer key, or Azure's api-key "
                      "header with an api-version query parameter."),
    click.option("--path-prefix", metavar="PATH",
                 help="Serve the API under this path (default /v1), e.g. /openai."),
)


def backend_flags(kwargs: dict[str, Any], emulator: bool = False) -> BackendFlags:
    """Take :data:`backend_options`' values out of ``kwargs`` (``emulator``: the group's)."""
    from reconciler.backend import BackendFlags

    return BackendFlags(
        emulator=kwargs.pop("emulator") or emulator,
        emulator_state=kwargs.pop("emulator_state"), base_url=kwargs.pop("base_url"),
        concurrency=kwargs.pop("concurrency"), project=kwargs.pop("project_flag"),
        ca_bundle=kwargs.pop("ca_bundle"), allow_insecure_http=kwargs.pop("allow_insecure_http"),
        auth=kwargs.pop("auth"), api_version=kwargs.pop("api_version"),
    )


def lock_flags(kwargs: dict[str, Any]) -> LockFlags:
    """Take :data:`lock_options`' values out of ``kwargs``."""
    from reconciler.session import LockFlags

    return LockFlags(enabled=kwargs.pop("lock_enabled"), timeout=kwargs.pop("lock_timeout"))


def plan_flags(kwargs: dict[str, Any]) -> PlanFlags:
    """Take :func:`plan_options`' values out of ``kwargs``."""
    from reconciler.project import PlanFlags

    return PlanFlags(
        prune=kwargs.pop("prune"), allow_empty=kwargs.pop("allow_empty"),
        targets=frozenset(kwargs.pop("targets")), recreate_unmarked=kwargs.pop("recreate_unmarked"),
    )


def apply_flags(kwargs: dict[str, Any]) -> ApplyFlags:
    """Take :data:`apply_options`' values out of ``kwargs``."""
    from reconciler.project import ApplyFlags

    return ApplyFlags(
        wait=kwargs.pop("wait"), timeout=kwargs.pop("timeout"),
        settle_window=kwargs.pop("settle_window"), poll_interval=kwargs.pop("poll_interval"),
        settle_poll=kwargs.pop("settle_poll"), max_creates=kwargs.pop("max_creates"),
    )
