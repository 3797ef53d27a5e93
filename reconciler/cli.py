"""The command line: the one module that owns exit codes, the terminal and the event loop.

Every command returns an exit code; errors are exceptions from :mod:`reconciler.errors`
turned into one sentence on stderr by :func:`run` (click's ``standalone_mode=False``), so no
library code calls ``sys.exit``. Usage errors exit 1: 2 means "changes present" with
``--detailed-exitcode``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import os
import sys
import traceback
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click
from rich.console import Console

from reconciler import __version__
from reconciler.apply import Applier, ApplyOptions, ApplyReport, Outcome
from reconciler.backend import (
    DEFAULT_EMULATOR_STATE,
    Backend,
    BackendFlags,
    bound_backend,
    open_client,
    resolve_backend,
    resolve_project,
    transport_warning,
)
from reconciler.client import AssistantsClient
from reconciler.config import MAX_WAIT_SECONDS, ProjectConfig, find_config, read_config
from reconciler.errors import (
    ApplyError,
    ConfigError,
    ManifestError,
    ReconcilerError,
)
from reconciler.files import write_text_file
from reconciler.live import list_thread_runs, plan_from_api
from reconciler.manifest import ManifestSet, load_manifests, read_sources
from reconciler.model import DesiredRun
from reconciler.plan import Plan, PlanOptions
from reconciler.progress import LiveProgress, PlainProgress
from reconciler.redact import RedactingStream, Redactor
from reconciler.render import render_json, render_markdown, render_text
from reconciler.saved import check_not_stale, read_plan_file, recognise_plan_file, write_plan_file
from reconciler.session import STATE_FOLDER, WriteGuard, lock_url, project_root

if TYPE_CHECKING:  # export and query are imported by their commands: plan and apply never pay
    from reconciler.export import Adoption
    from reconciler.query import QueryResult

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_CHANGES = 2

#: Garbage-collector thresholds for the process (mypy sets the same): a plan holds hundreds of
#: thousands of long-lived objects (manifests, live runs, changes) and makes next to no cyclic
#: garbage, so the default thresholds spend a quarter of a 100,000-run plan on collections
#: that free nothing (``bench/diff_bench.py`` prints both figures).
GC_THRESHOLDS = (200_000, 30, 30)
FORMATS = ("text", "json", "markdown")

T = TypeVar("T")


class ChangesPresent(Exception):
    """``--detailed-exitcode`` with a non-empty plan: exit 2."""


@dataclass
class Settings:
    """Options shared by every command, collected on the click context."""

    debug: bool = False
    color: bool | None = None  # None: colour when stdout is a terminal
    emulator: bool = False  # `reconciler --emulator plan …` as well as `plan … --emulator`
    argv: list[str] | None = None  # the command line, for the lock's holder record


def _settings() -> Settings:
    ctx = click.get_current_context()
    obj = ctx.find_object(Settings)
    return obj if obj is not None else Settings()


def _color() -> bool:
    wanted = _settings().color
    if wanted is not None:
        return wanted
    return sys.stdout.isatty() and "NO_COLOR" not in os.environ


def _err(message: str) -> None:
    click.echo(message, err=True)


# -- backends ----------------------------------------------------------------------------------


def backend_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """The options of every command that talks to the API."""
    options = [
        click.option(
            "--emulator", is_flag=True,
            help="Run against an embedded emulator whose state persists in a local file.",
        ),
        click.option(
            "--emulator-state", default=DEFAULT_EMULATOR_STATE, show_default=True,
            metavar="FILE", help="SQLite file of the embedded emulator.",
        ),
        click.option(
            "--base-url", metavar="URL",
            help="API base URL (default: OPENAI_BASE_URL, reconciler.toml, or OpenAI's).",
        ),
        click.option(
            "--concurrency", type=click.IntRange(1, 256), metavar="N",
            help="Requests in flight at once (default 16).",
        ),
        click.option(
            "--project", "project_flag", metavar="NAME",
            help="Owning project name (default: `project` in reconciler.toml).",
        ),
        click.option(
            "--ca-bundle", metavar="FILE", type=click.Path(exists=True, dir_okay=False),
            help="CA certificates to verify the host with (default: SSL_CERT_FILE, or the "
                 "system's).",
        ),
        click.option(
            "--allow-insecure-http", is_flag=True,
            help="Send the key over plain http to a host that is not this machine.",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def lock_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """The options of every command that writes: the project lock (Terraform's names)."""
    options = [
        click.option(
            "--lock", "lock_enabled", type=click.BOOL, default=True, show_default=True,
            metavar="BOOL", help="Hold the project lock while writing (--lock=false: don't).",
        ),
        click.option(
            "--lock-timeout", type=click.FloatRange(0, MAX_WAIT_SECONDS), metavar="SECONDS",
            help="How long to wait for the project lock (default 0: fail at once).",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _flags(kwargs: dict[str, Any]) -> BackendFlags:
    return BackendFlags(
        emulator=kwargs.pop("emulator") or _settings().emulator,
        emulator_state=kwargs.pop("emulator_state"),
        base_url=kwargs.pop("base_url"),
        concurrency=kwargs.pop("concurrency"),
        project=kwargs.pop("project_flag"),
        ca_bundle=kwargs.pop("ca_bundle"),
        allow_insecure_http=kwargs.pop("allow_insecure_http"),
    )


def _guard(kwargs: dict[str, Any], config: ProjectConfig, root: Path, project: str) -> WriteGuard:
    lock_timeout = kwargs.pop("lock_timeout")
    return WriteGuard(
        project=project,
        root=root,
        url=lock_url(config),
        enabled=kwargs.pop("lock_enabled"),
        timeout=lock_timeout if lock_timeout is not None else (config.lock_timeout or 0.0),
        command=_command_line(),
    )


def _command_line() -> str:
    """The command as typed, for the lock's holder record (flags never carry the key)."""
    args = sys.argv[1:] if _settings().argv is None else _settings().argv
    return " ".join(["reconciler", *(args or [])])[:200]


def _open(backend: Backend) -> contextlib.AbstractAsyncContextManager[AssistantsClient]:
    """The client, after telling the user what they must know before the first request."""
    warning = transport_warning(backend)
    if warning:
        _err(warning)
    return open_client(backend)


def load_project_config(paths: Sequence[str]) -> ProjectConfig:
    """``reconciler.toml`` beside the manifests (or above them), if there is one."""
    found = find_config(paths)
    if found is None:
        return ProjectConfig()
    config, problems = read_config(found)
    if problems:
        raise ManifestError([str(p) for p in problems])
    return config


def _run_async(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


# -- manifests and plans -----------------------------------------------------------------------


def load_desired(paths: Sequence[str]) -> ManifestSet:
    """Read and validate the manifests; any problem stops here, before the API is called."""
    sources, read_problems = read_sources(paths)
    loaded = load_manifests(sources)
    problems = [str(p) for p in (*read_problems, *loaded.problems)]
    if problems:
        raise ManifestError(problems)
    return loaded


async def compute_plan(
    client: AssistantsClient, manifests: ManifestSet, options: PlanOptions, backend: Backend
) -> Plan:
    desired = manifests.runs
    result = await plan_from_api(client, desired, options, threads=manifests.threads)
    _check_targets(options, desired, result)
    return dataclasses.replace(result, backend=backend.binding)


def _check_targets(options: PlanOptions, desired: Sequence[DesiredRun], result: Plan) -> None:
    known = {r.name for r in desired} | {f"{r.thread_id}/{r.name}" for r in desired}
    known |= {c.name for c in result.changes} | {c.address for c in result.changes}
    unknown = sorted(options.targets - known)
    if unknown:
        raise ConfigError(f"--target {unknown[0]} matches no run in the manifests")


def _check_empty(manifests: ManifestSet, prune: bool, allow_empty: bool) -> None:
    """kubectl's "no objects passed to apply": pruning with nothing declared cancels all."""
    if prune and not manifests.runs and not allow_empty:
        raise ConfigError(
            "the manifests declare no run at all, so --prune would cancel every active "
            "managed run on their threads; pass --allow-empty if that is what you want"
        )


def render(plan_value: Plan, fmt: str) -> str:
    if fmt == "json":
        return render_json(plan_value)
    if fmt == "markdown":
        return render_markdown(plan_value)
    return render_text(plan_value, color=_color())


# -- apply progress ----------------------------------------------------------------------------


def progress_view(color: bool) -> PlainProgress | LiveProgress:
    """A live table at a terminal; plain lines in logs and pipes."""
    if sys.stdout.isatty() and os.environ.get("TERM") != "dumb":
        return LiveProgress(Console(no_color=not color))
    return PlainProgress(click.echo, color=color)


def report_apply(report: ApplyReport) -> int:
    for result in report.results:
        if result.outcome is Outcome.NOT_ATTEMPTED:
            click.echo(f"{result.change.address}: {result.change.action.value} not attempted")
    click.echo(report.summary())
    if report.count(Outcome.UNKNOWN):
        unknown = [r.change.address for r in report.results if r.outcome is Outcome.UNKNOWN]
        raise ApplyError(
            f"the outcome of {len(unknown)} create{'s' if len(unknown) != 1 else ''} is "
            f"unknown ({', '.join(unknown[:3])}{', …' if len(unknown) > 3 else ''}): a run may "
            "or may not exist; the next apply looks for it before creating anything"
        )
    if not report.ok:
        raise ApplyError(
            "apply did not finish everything; run `reconciler plan` to see what is left"
        )
    return EXIT_OK


# -- commands ----------------------------------------------------------------------------------


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="reconciler")
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
@click.option("--color/--no-color", default=None, help="Force colour on or off.")
@click.option("--emulator", is_flag=True, help="Use the embedded emulator (for every command).")
@click.pass_context
def cli(ctx: click.Context, debug: bool, color: bool | None, emulator: bool) -> None:
    """GitOps for OpenAI Assistants v2 runs: declare runs in YAML, plan, apply."""
    argv = ctx.obj.argv if isinstance(ctx.obj, Settings) else None
    ctx.obj = Settings(debug=debug, color=color, emulator=emulator, argv=argv)


@cli.command()
@click.argument("paths", nargs=-1, required=True)
def validate(paths: tuple[str, ...]) -> int:
    """Check manifests against the schema and the API's limits; no API calls."""
    load_project_config(paths)  # a broken reconciler.toml is a validation error too
    desired = load_desired(paths).runs
    threads = len({r.thread_id for r in desired})
    click.echo(
        f"The manifests are valid: {len(desired)} run{'s' if len(desired) != 1 else ''} "
        f"on {threads} thread{'s' if threads != 1 else ''}."
    )
    return EXIT_OK


@cli.command("plan")
@click.argument("paths", nargs=-1, required=True)
@click.option("--out", metavar="FILE", help="Save the plan (JSON) for `apply FILE`.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="text", show_default=True)
@click.option("--detailed-exitcode", is_flag=True, help="Exit 2 when the plan has changes.")
@click.option("--prune", is_flag=True, help="Cancel managed runs no manifest declares any more.")
@click.option("--allow-empty", is_flag=True,
              help="Let --prune act when the manifests declare no run at all.")
@click.option("--target", "targets", multiple=True, metavar="NAME",
              help="Limit the plan to this run (name or thread_id/name); repeatable.")
@click.option("--recreate-unmarked", is_flag=True,
              help="Create new runs where a run lost its reserved metadata outside reconciler.")
@backend_options
def plan_command(
    paths: tuple[str, ...], out: str | None, fmt: str, detailed_exitcode: bool, prune: bool,
    allow_empty: bool, targets: tuple[str, ...], recreate_unmarked: bool, **kwargs: Any,
) -> int:
    """Show what apply would change to make the live runs match the manifests."""
    flags = _flags(kwargs)
    config = load_project_config(paths)
    manifests = load_desired(paths)
    _check_empty(manifests, prune, allow_empty)
    options = PlanOptions(
        project=resolve_project(flags, config), prune=prune, targets=frozenset(targets),
        recreate_unmarked=recreate_unmarked,
    )
    backend = resolve_backend(flags, config)

    async def go() -> Plan:
        async with _open(backend) as client:
            return await compute_plan(client, manifests, options, backend)

    result = _run_async(go())
    if out:
        write_plan_file(out, result)
    click.echo(render(result, fmt))
    if out:
        _err(f"Saved the plan to {out}: apply it with `reconciler apply {out}`.")
    if detailed_exitcode and result.has_changes:
        raise ChangesPresent()
    return EXIT_OK


@cli.command()
@click.argument("paths", nargs=-1, required=True)
@click.option("--auto-approve", is_flag=True, help="Apply without asking for confirmation.")
@click.option("--prune", is_flag=True, help="Cancel managed runs no manifest declares any more.")
@click.option("--allow-empty", is_flag=True,
              help="Let --prune act when the manifests declare no run at all.")
@click.option("--target", "targets", multiple=True, metavar="NAME",
              help="Limit to this run (name or thread_id/name); repeatable.")
@click.option("--recreate-unmarked", is_flag=True,
              help="Create new runs where a run lost its reserved metadata outside reconciler.")
@click.option("--wait", is_flag=True,
              help="Follow created runs to the end, answering tool calls from tool_outputs.")
@click.option("--timeout", type=click.FloatRange(min=0), default=600.0, show_default=True,
              metavar="SECONDS", help="How long to wait for busy threads and for --wait.")
@click.option("--settle-window", type=click.FloatRange(0, MAX_WAIT_SECONDS), metavar="SECONDS",
              help="How long an ambiguous create may take to show up before it is sent again "
                   "(default 60, or settle_window in reconciler.toml).")
@click.option("--poll-interval", type=click.FloatRange(min=0.01), default=0.5, hidden=True)
@click.option("--settle-poll", type=click.FloatRange(min=0.01), default=1.0, hidden=True)
@lock_options
@backend_options
def apply(
    paths: tuple[str, ...], auto_approve: bool, prune: bool, allow_empty: bool,
    targets: tuple[str, ...], recreate_unmarked: bool, wait: bool, timeout: float,
    settle_window: float | None, poll_interval: float, settle_poll: float, **kwargs: Any,
) -> int:
    """Make the live runs match the manifests (or execute a saved plan file)."""
    flags = _flags(kwargs)
    saved = recognise_plan_file(paths)
    if saved is not None and (prune or targets or recreate_unmarked or allow_empty):
        raise ConfigError(
            "--prune, --target, --recreate-unmarked and --allow-empty belong to `plan`; a "
            "saved plan is applied as is"
        )
    config = load_project_config(paths)
    if saved is None:
        manifests = load_desired(paths)
        _check_empty(manifests, prune, allow_empty)
        project = resolve_project(flags, config)
        backend = resolve_backend(flags, config)
    else:
        backend = bound_backend(saved, flags, config)
        project = saved.options.project
    guard = _guard(kwargs, config, project_root(config, paths), project)
    color = _color()
    window = settle_window if settle_window is not None else config.settle_window
    apply_options = ApplyOptions(
        wait=wait, timeout=timeout, poll_interval=poll_interval, settle_poll=settle_poll,
        settle_window=window if window is not None else ApplyOptions.settle_window,
        request_timeout=backend.request_timeout,
    )

    async def go() -> int:
        async with _open(backend) as client:
            with guard.hold() as journal:
                if saved is not None:
                    await check_not_stale(client, saved)
                    to_apply = saved
                    click.echo(render_text(to_apply, color=color))
                else:
                    options = PlanOptions(
                        project=project, prune=prune, targets=frozenset(targets),
                        recreate_unmarked=recreate_unmarked,
                    )
                    to_apply = await compute_plan(client, manifests, options, backend)
                    click.echo(render_text(to_apply, color=color))
                    if not to_apply.has_changes:
                        return EXIT_OK
                    if not auto_approve and not _confirm():
                        _err("Apply cancelled; nothing was changed.")
                        return EXIT_ERROR
                if not to_apply.has_changes:
                    return EXIT_OK
                with progress_view(color) as view:
                    applier = Applier(
                        client, options=apply_options, hooks=view, journal=journal,
                        backend=backend.journal_key,
                    )
                    report = await applier.apply(to_apply)
        return report_apply(report)

    return _run_async(go())


def _confirm(command: str = "apply", verb: str = "apply") -> bool:
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


@cli.command()
@click.argument("planfile")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="text", show_default=True)
def show(planfile: str, fmt: str) -> int:
    """Render a saved plan file."""
    click.echo(render(read_plan_file(planfile), fmt))
    return EXIT_OK


@cli.command("export")
@click.option("--thread", "threads", multiple=True, required=True, metavar="ID",
              help="A thread whose runs to export; repeatable.")
@click.option("--out", metavar="FILE", help="Write the manifest here (default: stdout).")
@click.option("--all-runs", is_flag=True, help="Every run, not only the newest of each name.")
@click.option("--adopt", is_flag=True,
              help="Tag the exported runs as managed by this project (updates their metadata).")
@click.option("--auto-approve", is_flag=True, help="Adopt without asking for confirmation.")
@lock_options
@backend_options
def export_command(
    threads: tuple[str, ...], out: str | None, all_runs: bool, adopt: bool, auto_approve: bool,
    **kwargs: Any,
) -> int:
    """Write manifests for existing runs, and optionally adopt them (like terraform import)."""
    from reconciler.export import export_runs

    flags = _flags(kwargs)
    where = [str(Path(out).parent) if out else "."]
    config = load_project_config(where)
    project = resolve_project(flags, config)
    guard = _guard(kwargs, config, project_root(config, where), project)
    backend = resolve_backend(flags, config)
    stamp = datetime.now(UTC).isoformat(timespec="seconds")

    async def go() -> int:
        async with _open(backend) as client:
            ordered = list(dict.fromkeys(threads))
            listed = await asyncio.gather(*(list_thread_runs(client, t) for t in ordered))
            exported = export_runs(
                dict(zip(ordered, listed, strict=True)), project=project,
                latest_only=not all_runs, exported_at=stamp,
            )
            if out:
                write_text_file(out, exported.text)
                _err(f"Wrote {exported.runs} run{'s' if exported.runs != 1 else ''} to {out}.")
            else:
                click.echo(exported.text, nl=False)
            for skipped in exported.skipped:
                _err(f"skipped {skipped.thread_id}/{skipped.run_id}: {skipped.reason}")
            if not exported.adoptions:
                return EXIT_OK
            if not adopt:
                _err(adoption_advice(exported.adoptions, project))
                return EXIT_OK
            for adoption in exported.adoptions:
                verb = "will re-record" if adoption.managed else "will adopt"
                _err(f"{verb} {adoption.thread_id}/{adoption.name} ({adoption.run_id})")
            if not auto_approve and not _confirm("export --adopt", "adopt"):
                _err("Adoption cancelled; nothing was changed.")
                return EXIT_ERROR
            with guard.hold():
                return await adopt_runs(client, exported.adoptions, project)
        return EXIT_OK

    return _run_async(go())


async def adopt_runs(client: AssistantsClient, adoptions: Sequence[Adoption],
                     project: str) -> int:
    """Send every adoption (a metadata update, safe to repeat) and say which failed."""
    results = await asyncio.gather(
        *(client.modify_run(a.thread_id, a.run_id, a.metadata) for a in adoptions),
        return_exceptions=True,
    )
    failed = 0
    for adoption, result in zip(adoptions, results, strict=True):
        if isinstance(result, ReconcilerError):
            failed += 1
            _err(f"{adoption.thread_id}/{adoption.name} ({adoption.run_id}): not adopted: {result}")
        elif isinstance(result, BaseException):
            raise result
    if failed:
        raise ApplyError(f"adopted {len(adoptions) - failed} of {len(adoptions)} run(s); "
                         "run the same export --adopt again to adopt the rest")
    _err(f"Adopted {len(adoptions)} run(s) into project {project!r}.")
    return EXIT_OK


def adoption_advice(adoptions: Sequence[Adoption], project: str) -> str:
    """Why the exported file does not yet plan as "No changes", and what --adopt would do."""
    new = sum(1 for a in adoptions if not a.managed)
    parts = []
    if new:
        parts.append(f"{new} exported run{'s are' if new != 1 else ' is'} not managed by "
                     f"project {project!r} yet (`apply` would create "
                     f"{'new runs for them' if new != 1 else 'a new run for it'})")
    if len(adoptions) - new:
        count = len(adoptions) - new
        parts.append(f"{count} managed run{'s' if count != 1 else ''} recorded a spec the "
                     f"export cannot reproduce (`apply` would replace "
                     f"{'them' if count != 1 else 'it'})")
    return "; ".join(parts) + ": rerun with --adopt to tag them"


@cli.command()
@click.argument("sql")
@click.option("--output", "fmt", type=click.Choice(("table", "json", "csv")), default="table",
              show_default=True, help="How to print the rows.")
@lock_options
@backend_options
def query(sql: str, fmt: str, **kwargs: Any) -> int:
    """StackQL SQL over openai.assistants.runs: SELECT, INSERT, UPDATE, EXEC, DESCRIBE, SHOW.

    \b
    Examples:
      reconciler query "SELECT id, status FROM openai.assistants.runs
                        WHERE thread_id = 'thread_abc' ORDER BY created_at DESC LIMIT 5"
      reconciler query "EXEC openai.assistants.runs.cancel_run
                        @thread_id = 'thread_abc', @run_id = 'run_123'"
      reconciler query "SHOW METHODS IN openai.assistants.runs"

    The whole grammar is in docs/query.md.
    """
    from reconciler.query import catalog_result, is_write, render_result
    from reconciler.query import execute as execute_query
    from reconciler.query import parse as parse_query

    flags = _flags(kwargs)
    statement = parse_query(sql)  # bad SQL stops here, before any API call
    config = load_project_config(["."])
    project = flags.project or config.project
    # A write holds the project's lock when there is a project to lock: a statement that
    # cancels or re-tags a managed run must not interleave with an apply.
    guard = (
        _guard(kwargs, config, project_root(config, ["."]), project)
        if project and is_write(statement) else None
    )

    async def go() -> QueryResult:
        async with _open(resolve_backend(flags, config)) as client:
            with guard.hold() if guard is not None else contextlib.nullcontext():
                return await execute_query(client, statement)

    result = catalog_result(statement) or _run_async(go())
    click.echo(render_result(result, fmt), nl=False)
    if result.message:
        _err(result.message)
    return EXIT_OK


@cli.group("lock")
def lock_group() -> None:
    """Show or break the project's local lock (Terraform's force-unlock)."""


@lock_group.command("show")
@click.argument("path", default=".")
def lock_show(path: str) -> int:
    """Who holds the lock of the project at PATH (a manifest folder or file)."""
    from reconciler.lock import local_lock_status

    config = load_project_config([path])
    url = lock_url(config)
    if url is not None:
        raise ConfigError(
            "this project uses the shared PostgreSQL lock, which dies with its holder's "
            "connection: there is nothing to show or break here"
        )
    folder = project_root(config, [path]) / STATE_FOLDER
    status = local_lock_status(folder)
    if status.holder is None:
        click.echo(f"Not locked ({folder}).")
    elif status.held:
        click.echo(f"Locked by {status.holder.describe()}.")
    else:
        click.echo(f"Not locked: the last holder, {status.holder.describe()}, is gone.")
    return EXIT_OK


@lock_group.command("force-unlock")
@click.argument("lock_id")
@click.argument("path", default=".")
def lock_force_unlock(lock_id: str, path: str) -> int:
    """Break the local lock LOCK_ID of a holder that hangs or is gone for good."""
    from reconciler.lock import force_unlock_local

    config = load_project_config([path])
    folder = project_root(config, [path]) / STATE_FOLDER
    holder = force_unlock_local(folder, lock_id)
    click.echo(f"Broke the lock held by {holder.describe()}.")
    return EXIT_OK


@cli.group()
def emulator() -> None:
    """The local Assistants v2 server (the reference backend for trying and testing)."""


@emulator.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True)
@click.option("--state", metavar="FILE", help="SQLite file to keep state in (default: memory).")
@click.option("--latency", metavar="SPEC", help="Added latency: 50ms, normal:50ms,10ms, …")
@click.option("--rate-limit", metavar="SPEC", help="Requests per second, e.g. 20/s.")
@click.option("--faults", metavar="SPEC", help="Injected faults, e.g. 500=0.1,drop=0.05.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of every random knob.")
@click.option("--timing", type=click.Choice(("instant", "fast", "realistic")),
              default="realistic", show_default=True, help="How fast runs move through states.")
@click.option("--fixtures", metavar="FILE", help="Assistants and threads to create at start.")
@click.option("--demo", is_flag=True, help="Load the demo fixtures that manifests/ uses.")
@click.option("--api-key-env", metavar="NAME",
              help="Require the key held in this environment variable.")
def emulator_serve(
    host: str, port: int, state: str | None, latency: str | None, rate_limit: str | None,
    faults: str | None, seed: int, timing: str, fixtures: str | None, demo: bool,
    api_key_env: str | None,
) -> int:
    """Serve the emulator over HTTP until interrupted."""
    from reconciler import emulator as emu

    api_key = None
    if api_key_env:
        api_key = os.environ.get(api_key_env)
        if not api_key:
            raise ConfigError(f"--api-key-env {api_key_env}: that environment variable is empty")
    fixture_path = fixtures or (str(emu.DEMO_FIXTURES_PATH) if demo else None)
    try:
        config = emu.EmulatorConfig(
            state_path=state,
            api_key=api_key,
            seed=seed,
            timing=emu.parse_timing(timing),
            latency=emu.parse_latency(latency) if latency else None,
            rate_limit=emu.parse_rate_limit(rate_limit) if rate_limit else None,
            faults=emu.parse_faults(faults or ""),
            fixtures=emu.load_fixtures(fixture_path) if fixture_path else None,
        )
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    _err(f"Emulator listening on http://{host}:{port}/v1 (Ctrl-C to stop)")
    emu.run_server(config, host=host, port=port)
    return EXIT_OK


# -- entry point -------------------------------------------------------------------------------


def run(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return its exit code (tests call this; ``main`` exits with it).

    Standard output and standard error pass through one redactor for the whole command, so no
    secret reaches the terminal or a log, whoever prints it.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    redactor = Redactor.from_env()
    out, err = sys.stdout, sys.stderr
    sys.stdout = RedactingStream(out, redactor)
    sys.stderr = RedactingStream(err, redactor)
    try:
        return _run(args)
    finally:
        sys.stdout, sys.stderr = out, err


def _run(args: list[str]) -> int:
    debug = "--debug" in args
    try:
        result = cli.main(args=args, prog_name="reconciler", standalone_mode=False,
                          obj=Settings(argv=args))
        return result if isinstance(result, int) else EXIT_OK
    except ChangesPresent:
        return EXIT_CHANGES
    except click.exceptions.Exit as exc:
        return EXIT_OK if exc.exit_code == 0 else EXIT_ERROR
    except click.Abort:
        _err("Aborted.")
        return EXIT_ERROR
    except click.ClickException as exc:  # usage errors: exit 1, never 2
        _err(f"Error: {exc.format_message()}")
        if isinstance(exc, click.UsageError) and exc.ctx is not None:
            _err(f"Try '{exc.ctx.command_path} --help' for help.")
        return EXIT_ERROR
    except ManifestError as exc:
        for problem in exc.problems:
            _err(problem)
        _err(f"Error: {exc}; nothing was sent to the API.")
        return EXIT_ERROR
    except ReconcilerError as exc:
        if debug:
            _err(traceback.format_exc())
        _err(f"Error: {exc}")
        return EXIT_ERROR
    except KeyboardInterrupt:
        _err("Interrupted. Run `reconciler plan` to see what is left.")
        return EXIT_ERROR
    except Exception as exc:  # a bug: say so plainly, with the traceback only on request
        if debug:
            _err(traceback.format_exc())
        _err(f"Error: internal error ({type(exc).__name__}: {exc}); "
             "rerun with --debug for details")
        return EXIT_ERROR


def main() -> None:
    gc.set_threshold(*GC_THRESHOLDS)
    sys.exit(run())
