"""The command line: flags in, one call to the application layer, output and an exit code out.

Commands parse flags (:mod:`reconciler.flags`), call :mod:`reconciler.workflow` and print
through :mod:`reconciler.terminal`. Errors are exceptions from :mod:`reconciler.errors` turned
into one sentence on stderr by :func:`run` (click's ``standalone_mode=False``), so no library
code calls ``sys.exit``. Usage errors exit 1: 2 means "changes present" (--detailed-exitcode).
"""

from __future__ import annotations

import gc
import sys
import traceback
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import click

from reconciler import __version__, flags
from reconciler.defaults import PLAN_FORMATS as FORMATS
from reconciler.defaults import VALIDATE_FORMATS
from reconciler.errors import ManifestError, ReconcilerError
from reconciler.flags import Settings, backend_options, lock_options
from reconciler.lazy import lazy
from reconciler.redact import redacted_output

if TYPE_CHECKING:
    from reconciler import outputs, saved, terminal, workflow
    from reconciler.backend import BackendFlags
else:
    outputs, saved = lazy("reconciler.outputs"), lazy("reconciler.saved")
    terminal, workflow = lazy("reconciler.terminal"), lazy("reconciler.workflow")

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_CHANGES = 2

#: Garbage-collector thresholds for the process (mypy sets the same): a plan holds hundreds of
#: thousands of long-lived objects (manifests, live runs, changes) and makes next to no cyclic
#: garbage, so the default thresholds spend a quarter of a 100,000-run plan on collections
#: that free nothing (``bench/diff_bench.py`` prints both figures).
GC_THRESHOLDS = (200_000, 30, 30)

def _err(message: str) -> None:
    click.echo(message, err=True)


class ChangesPresent(Exception):
    """``--detailed-exitcode`` with a non-empty plan: exit 2."""


def _flags(kwargs: dict[str, Any]) -> BackendFlags:
    return flags.backend_flags(kwargs, emulator=terminal.settings().emulator)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="reconciler")
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
@click.option("--color/--no-color", default=None,
              help="Force colour on (even into a pipe) or off; default: at a terminal, unless "
                   "NO_COLOR is set.")
@click.option("--quiet", "-q", is_flag=True,
              help="Only the result, warnings and errors: no progress, no hints.")
@click.option("--verbose", "-v", is_flag=True,
              help="Every request's method, path, status and time on stderr.")
@click.option("--emulator", is_flag=True, help="Use the embedded emulator (for every command).")
@click.pass_context
def cli(ctx: click.Context, debug: bool, color: bool | None, quiet: bool, verbose: bool,
        emulator: bool) -> None:
    """GitOps for OpenAI Assistants v2 runs: declare runs in YAML, plan, apply."""
    if quiet and verbose:
        raise click.UsageError("--quiet and --verbose contradict each other; pass one")
    argv = ctx.obj.argv if isinstance(ctx.obj, Settings) else None
    ctx.obj = Settings(debug=debug, color=color, emulator=emulator, argv=argv, quiet=quiet,
                       verbose=verbose)
    ctx.color = color  # click strips ANSI codes into a pipe unless told (see use_color)
    if verbose:
        ctx.with_resource(terminal.requests_shown())


@cli.command()
@click.argument("paths", nargs=-1, required=True)
@click.option("--format", "fmt", type=click.Choice(VALIDATE_FORMATS), default="text",
              show_default=True,
              help="github: ::error annotations; json: the array of "
                   "schemas/validate-result.schema.json.")
def validate(paths: tuple[str, ...], fmt: str) -> int:
    """Check manifests against the schema and the API's limits; no API calls."""
    from reconciler.render.validation import render_problems  # not the terminal's modules

    valid = outputs.validate_manifests(paths, fmt, echo=click.echo, warn=_err,
                                       problems=render_problems)
    return EXIT_OK if valid else EXIT_ERROR


@cli.command("plan")
@click.argument("paths", nargs=-1, required=True)
@flags.plan_output_options
@flags.plan_options("Limit the plan to this run")
@backend_options
def plan_command(paths: tuple[str, ...], **kwargs: Any) -> int:
    """Show what apply would change to make the live runs match the manifests."""
    output = flags.plan_output(kwargs)
    result = workflow.make_plan(paths, _flags(kwargs), flags.plan_flags(kwargs), output.out,
                                _err, reading=terminal.reading)
    if output.drift_only:
        outputs.show_drift(result, output.fmt, color=terminal.use_color(), echo=click.echo)
    else:
        outputs.show_plan(result, output, terminal.render, echo=click.echo, warn=_err,
                          note=terminal.note)
    found = result.drifted if output.drift_only else result.has_changes
    if output.detailed_exitcode and found:
        raise ChangesPresent()
    return EXIT_OK


@cli.command()
@click.argument("paths", nargs=-1, required=True)
@click.option("--auto-approve", is_flag=True, help="Apply without asking for confirmation.")
@flags.plan_options("Limit to this run")
@flags.apply_options
@lock_options
@backend_options
def apply(paths: tuple[str, ...], auto_approve: bool, **kwargs: Any) -> int:
    """Make the live runs match the manifests (or execute a saved plan file)."""
    applied = workflow.apply_changes(
        paths, _flags(kwargs), flags.plan_flags(kwargs), flags.apply_flags(kwargs),
        lock=flags.lock_flags(kwargs), command=terminal.command_line(),
        terminal=terminal.current(auto_approve),
    )
    if not applied:
        _err("Apply cancelled; nothing was changed.")
    return EXIT_OK if applied else EXIT_ERROR


@cli.command()
@click.argument("planfile")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="text", show_default=True)
def show(planfile: str, fmt: str) -> int:
    """Render a saved plan file."""
    click.echo(terminal.render(saved.read_plan_file(planfile), fmt))
    return EXIT_OK


@cli.command("schema")
@click.argument("name", required=False)
@click.option("--list", "list_all", is_flag=True, help="List the schemas: name, $id, title.")
def schema_command(name: str | None, list_all: bool) -> int:
    """Print a JSON Schema the tool ships (manifest, plan, …), for editors and other tools.

    \b
    Example: point your editor at a copy of the manifest schema
      mkdir -p .reconciler && reconciler schema manifest > .reconciler/manifest.schema.json
    """
    from reconciler.schemas import describe_schemas, schema_names, schema_text

    if list_all == (name is not None):
        raise click.UsageError("give one schema name (see `reconciler schema --list`) or --list")
    if name is not None and name not in schema_names():
        raise click.UsageError(
            f"no schema named {name!r}: the tool ships {', '.join(schema_names())}"
        )
    click.echo(describe_schemas() if name is None else schema_text(name), nl=False)
    return EXIT_OK


@cli.command("status")
@click.argument("paths", nargs=-1)
@click.option("--thread", "threads", multiple=True, metavar="ID",
              help="A thread to read as well as the manifests' (or instead of them); repeatable.")
@click.option("--format", "fmt", type=click.Choice(("text", "json")), default="text",
              show_default=True)
@backend_options
def status_command(
    paths: tuple[str, ...], threads: tuple[str, ...], fmt: str, **kwargs: Any
) -> int:
    """List the project's managed runs per thread: status, generation, current or not, declared.

    Like `terraform state list`: from the manifests at PATHS (their threads, and whether they
    still declare each run), or from the threads given with --thread.
    """
    from reconciler.render.status import render_status

    status = workflow.project_status(paths, threads, _flags(kwargs), _err)
    click.echo(render_status(status, fmt))
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
    adopted = workflow.export_runs(
        threads, out, _flags(kwargs), all_runs=all_runs, adopt=adopt,
        lock=flags.lock_flags(kwargs), command=terminal.command_line(),
        terminal=terminal.current(auto_approve, asking=("export --adopt", "adopt")),
    )
    if not adopted:
        _err("Adoption cancelled; nothing was changed.")
    return EXIT_OK if adopted else EXIT_ERROR


@cli.command()
@click.argument("sql", required=False)
@click.option("--file", "file", type=click.Path(dir_okay=False), default=None,
              help="Run the ;-separated statements of FILE, in order.")
@click.option("--output", "fmt", type=click.Choice(("table", "json", "csv")), default="table",
              show_default=True, help="How to print the rows.")
@lock_options
@backend_options
def query(sql: str | None, file: str | None, fmt: str, **kwargs: Any) -> int:
    """StackQL SQL over openai.assistants.runs: SELECT, INSERT, UPDATE, EXEC, DESCRIBE, SHOW.

    \b
    Examples:
      reconciler query "SELECT status, COUNT(*) AS n FROM openai.assistants.runs
                        WHERE thread_id IN ('thread_a', 'thread_b') GROUP BY status"
      reconciler query "EXEC openai.assistants.runs.cancel_run
                        @thread_id = 'thread_abc', @run_id = 'run_123'"
      reconciler query --file checks.sql --output json

    The whole grammar is in docs/query.md.
    """
    from reconciler.query import QueryResult, render_result

    if (sql is None) == (file is None):
        raise click.UsageError("give the SQL as an argument or with --file FILE (one of them)")
    shown: list[QueryResult] = []

    def show(result: QueryResult) -> None:
        if shown:
            click.echo("")  # a blank line between the results of a script's statements
        shown.append(result)
        click.echo(render_result(result, fmt), nl=False)
        if result.message:
            _err(result.message)

    workflow.run_query(sql, _flags(kwargs), file=file, lock=flags.lock_flags(kwargs),
                       command=terminal.command_line(), warn=_err, show=show)
    return EXIT_OK


@cli.group("lock")
def lock_group() -> None:
    """Show or break the project's local lock (Terraform's force-unlock)."""


@lock_group.command("show")
@click.argument("path", default=".")
def lock_show(path: str) -> int:
    """Who holds the lock of the project at PATH (a manifest folder or file)."""
    click.echo(terminal.describe_lock(*workflow.lock_status(path)))
    return EXIT_OK


@lock_group.command("force-unlock")
@click.argument("lock_id")
@click.argument("path", default=".")
def lock_force_unlock(lock_id: str, path: str) -> int:
    """Break the local lock LOCK_ID of a holder that hangs or is gone for good."""
    click.echo(f"Broke the lock held by {workflow.force_unlock(lock_id, path).describe()}.")
    return EXIT_OK


@cli.group()
def emulator() -> None:
    """The local Assistants v2 server (the reference backend for trying and testing)."""


@emulator.command("serve")
@flags.serve_options
def emulator_serve(host: str, port: int, **options: Any) -> int:
    """Serve the emulator over HTTP until interrupted."""
    workflow.serve_emulator(host, port, _err, **options)
    return EXIT_OK


def run(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return its exit code (tests call this; ``main`` exits with it).

    Standard output and standard error pass through one redactor for the whole command, so no
    secret reaches the terminal or a log, whoever prints it.
    """
    with redacted_output():
        return _run(list(sys.argv[1:] if argv is None else argv))


def _run(args: list[str]) -> int:
    try:
        result = cli.main(args=args, prog_name="reconciler", standalone_mode=False,
                          obj=Settings(argv=args))
        return result if isinstance(result, int) else EXIT_OK
    except ChangesPresent:
        return EXIT_CHANGES
    except click.exceptions.Exit as exc:
        return EXIT_OK if exc.exit_code == 0 else EXIT_ERROR
    except click.Abort:
        return _fail("Aborted.")
    except click.ClickException as exc:  # usage errors: exit 1, never 2
        _err(f"Error: {exc.format_message()}")
        if isinstance(exc, click.UsageError) and exc.ctx is not None:
            _err(f"Try '{exc.ctx.command_path} --help' for help.")
        return EXIT_ERROR
    except ManifestError as exc:
        for problem in exc.problems:
            _err(problem)
        return _fail(f"Error: {exc}; nothing was sent to the API.")
    except ReconcilerError as exc:
        return _fail(f"Error: {exc}", "--debug" in args)
    except KeyboardInterrupt:
        return _fail("Interrupted. Run `reconciler plan` to see what is left.")
    except Exception as exc:  # a bug: say so plainly, with the traceback only on request
        return _fail(f"Error: internal error ({type(exc).__name__}: {exc}); "
                     "rerun with --debug for details", "--debug" in args)


def _fail(message: str, debug: bool = False) -> int:
    """Say why the command failed (after the traceback, with --debug): exit 1."""
    if debug:
        _err(traceback.format_exc())
    _err(message)
    return EXIT_ERROR


def main() -> None:
    gc.set_threshold(*GC_THRESHOLDS)
    code = run()
    # What is still alive is freed by the process's exit; without this, the interpreter's
    # last collection walks all of it (0.2 s after a plan of 100,000 runs).
    gc.freeze()
    sys.exit(code)
