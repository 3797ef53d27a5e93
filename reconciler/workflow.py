"""The commands end to end (plan, apply, export, query, the lock, the emulator) on a Terminal.

Each function runs one command's session from the values the command line parsed to its
result: the project's config and manifests, the backend (opened after the user has been told
what they must know), the lock held while writing, the plan rendered and confirmed. The CLI
supplies the terminal (click's echo and prompt, apply's progress view) and turns what comes
back, or the exception raised, into output and an exit code.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from reconciler import timestamps
from reconciler.apply import Applier, ApplyHooks, ApplyOptions, ApplyReport, Outcome
from reconciler.backend import (
    Backend,
    BackendFlags,
    bound_backend,
    open_client,
    resolve_backend,
    resolve_project,
    transport_warning,
)
from reconciler.client import AssistantsClient
from reconciler.errors import ApplyError, ConfigError, LimitError
from reconciler.files import write_text_file
from reconciler.live import ThreadsRead, list_thread_runs, read_live_state
from reconciler.loading import load_desired, load_project_config
from reconciler.manifest import ManifestSet
from reconciler.planning import Plan, PlanOptions
from reconciler.project import (
    ApplyFlags,
    PlanFlags,
    apply_options,
    check_empty,
    compute_plan,
)
from reconciler.render import render_text
from reconciler.saved import check_not_stale, recognise_plan_file, write_plan_file
from reconciler.session import (
    STATE_FOLDER,
    LockFlags,
    WriteGuard,
    lock_url,
    project_root,
    write_guard,
)
from reconciler.spend import max_creates_refusal

if TYPE_CHECKING:  # query and the lock's look are imported by the functions that need them
    from reconciler.config import ProjectConfig
    from reconciler.lock import LockHolder, LockStatus
    from reconciler.query import QueryResult
    from reconciler.status import ProjectStatus


T = TypeVar("T")


def run_session(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)``, with the result kept out of the main task.

    On the way out, ``asyncio.Runner`` asks ``signal.getsignal`` whether its SIGINT handler
    is still installed, and Python formats ``repr(handler)`` there: the main task and its
    result, whole. For a plan of 20,000 runs that repr cost 0.1 s of every command.
    """
    box: list[T] = []

    async def session() -> None:
        box.append(await main)

    asyncio.run(session())
    return box[0]


def _count_nothing(read: int, total: int) -> None:
    return None


def not_counting() -> contextlib.AbstractContextManager[ThreadsRead]:
    """No counter of the threads a plan reads (logs, pipes, library use)."""
    return contextlib.nullcontext(_count_nothing)


@dataclass(frozen=True)
class Terminal:
    """How a session talks to the user: lines out, warnings, a yes/no, apply's progress."""

    echo: Callable[[str], None]
    warn: Callable[[str], None]
    confirm: Callable[[], bool]
    progress: Callable[[], contextlib.AbstractContextManager[ApplyHooks]]
    color: bool = False
    reading: Callable[[], contextlib.AbstractContextManager[ThreadsRead]] = not_counting
    show_plan: bool = True  # False: --quiet and nobody to ask, so apply prints no plan


def connect(
    backend: Backend, warn: Callable[[str], None]
) -> contextlib.AbstractAsyncContextManager[AssistantsClient]:
    """The client, after telling the user what they must know before the first request."""
    warning = transport_warning(backend)
    if warning:
        warn(warning)
    return open_client(backend)


def make_plan(
    paths: Sequence[str], flags: BackendFlags, plan_flags: PlanFlags, out: str | None,
    warn: Callable[[str], None],
    reading: Callable[[], contextlib.AbstractContextManager[ThreadsRead]] = not_counting,
) -> Plan:
    """``plan``: the plan of the manifests at ``paths``, saved to ``out`` when given;
    ``reading`` counts the threads read (a live counter at a terminal)."""
    config = load_project_config(paths)
    manifests = load_desired(paths)
    check_empty(manifests, plan_flags)
    options = plan_flags.options(resolve_project(flags, config))
    backend = resolve_backend(flags, config)

    async def go() -> Plan:
        async with connect(backend, warn) as client:
            with reading() as on_read:
                return await compute_plan(client, manifests, options, backend, on_read=on_read)

    result = run_session(go())
    if out:
        write_plan_file(out, result)
    return result


def apply_changes(
    paths: Sequence[str], flags: BackendFlags, plan_flags: PlanFlags, apply_flags: ApplyFlags,
    *, lock: LockFlags, command: str, terminal: Terminal,
) -> bool:
    """``apply``: plan the manifests (or take a saved plan), confirm, carry it out.

    False when the user declined (nothing was changed); an incomplete apply raises.
    """
    saved = recognise_plan_file(paths)
    if saved is not None and plan_flags.given:
        raise ConfigError(
            "--prune, --target, --recreate-unmarked and --allow-empty belong to `plan`; a "
            "saved plan is applied as is"
        )
    config = load_project_config(paths)
    target: Plan | tuple[ManifestSet, PlanOptions]
    if saved is None:
        manifests = load_desired(paths)
        check_empty(manifests, plan_flags)
        project = resolve_project(flags, config)
        backend = resolve_backend(flags, config)
        target = (manifests, plan_flags.options(project))
    else:
        backend = bound_backend(saved, flags, config)
        project = saved.options.project
        target = saved
    guard = write_guard(config, project_root(config, paths), project, lock, command)
    options = apply_options(apply_flags, config, backend)
    limit = max_creates(apply_flags, config)
    if isinstance(target, Plan):  # a saved plan over the limit is refused before any request
        check_max_creates(target, limit)
    report = run_session(_apply(target, backend, guard, options, terminal, limit))
    if isinstance(report, bool):
        if report:  # nothing to do: still the one-line report every apply ends with
            terminal.echo(ApplyReport(results=()).summary())
        return report
    _check_report(report, terminal.echo)
    return True


async def _apply(
    target: Plan | tuple[ManifestSet, PlanOptions], backend: Backend, guard: WriteGuard,
    options: ApplyOptions, terminal: Terminal, limit: tuple[int, str] | None = None,
) -> ApplyReport | bool:
    """The report of the apply; True when there was nothing to change, False when declined."""
    async with connect(backend, terminal.warn) as client:
        with guard.hold() as journal:
            if isinstance(target, Plan):
                with terminal.reading() as on_read:
                    await check_not_stale(client, target, on_read=on_read)
                to_apply = target
            else:
                with terminal.reading() as on_read:
                    to_apply = await compute_plan(client, *target, backend, on_read=on_read)
            if terminal.show_plan:
                terminal.echo(render_text(to_apply, color=terminal.color))
            if not isinstance(target, Plan):
                if not to_apply.has_changes:
                    return True
                check_max_creates(to_apply, limit)
                if not terminal.confirm():
                    return False
            if not to_apply.has_changes:
                return True
            with terminal.progress() as view:
                applier = Applier(
                    client, options=options, hooks=view, journal=journal,
                    backend=backend.journal_key,
                )
                return await applier.apply(to_apply)


def max_creates(flags: ApplyFlags, config: ProjectConfig) -> tuple[int, str] | None:
    """The limit on runs one apply creates, and who set it (the flag wins over the file)."""
    if flags.max_creates is not None:
        return flags.max_creates, "--max-creates"
    if config.max_creates is not None:
        return config.max_creates, f"max_creates in {config.path or 'reconciler.toml'}"
    return None


def check_max_creates(plan: Plan, limit: tuple[int, str] | None) -> None:
    """The spend guard: refuse, before anything is sent, a plan starting more runs than allowed."""
    refusal = max_creates_refusal(plan, *limit) if limit is not None else None
    if refusal is not None:
        raise LimitError(refusal)


def _check_report(report: ApplyReport, echo: Callable[[str], None]) -> None:
    """Say what was not attempted and the summary; raise unless everything was done."""
    for result in report.results:
        if result.outcome is Outcome.NOT_ATTEMPTED:
            echo(f"{result.change.address}: {result.change.action.value} not attempted")
    echo(report.summary())
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


def export_runs(
    threads: Sequence[str], out: str | None, flags: BackendFlags, *, all_runs: bool,
    adopt: bool, lock: LockFlags, command: str, terminal: Terminal,
) -> bool:
    """``export``: manifests for the threads' runs, then (``adopt``) their adoptions applied.

    False when the user declined to adopt (the manifest is written, no run was changed).
    """
    from reconciler.adoption import adopt_runs, adoption_advice, announced
    from reconciler.export import export_runs as exported_manifest

    where = [str(Path(out).parent) if out else "."]
    config = load_project_config(where)
    project = resolve_project(flags, config)
    guard = write_guard(config, project_root(config, where), project, lock, command)
    backend = resolve_backend(flags, config)
    stamp = timestamps.now()

    async def go() -> bool:
        async with connect(backend, terminal.warn) as client:
            ordered = list(dict.fromkeys(threads))
            listed = await asyncio.gather(*(list_thread_runs(client, t) for t in ordered))
            exported = exported_manifest(
                dict(zip(ordered, listed, strict=True)), project=project,
                latest_only=not all_runs, exported_at=stamp,
            )
            if out:
                write_text_file(out, exported.text)
                count = exported.runs
                terminal.warn(f"Wrote {count} run{'s' if count != 1 else ''} to {out}.")
            else:
                terminal.echo(exported.text.removesuffix("\n"))
            for skipped in exported.skipped:
                terminal.warn(f"skipped {skipped.thread_id}/{skipped.run_id}: {skipped.reason}")
            if exported.adoptions and not adopt:
                terminal.warn(adoption_advice(exported.adoptions, project))
            if not exported.adoptions or not adopt:
                return True
            for line in announced(exported.adoptions):
                terminal.warn(line)
            if not terminal.confirm():
                return False
            with guard.hold():
                await adopt_runs(client, exported.adoptions, project, terminal.warn)
        return True

    return run_session(go())


def project_status(
    paths: Sequence[str], threads: Sequence[str], flags: BackendFlags,
    warn: Callable[[str], None],
) -> ProjectStatus:
    """``status``: the project's managed runs on the manifests' threads and ``threads``.

    With manifests, each run is also said to be declared or not; with only ``--thread``
    nothing is said about declarations.
    """
    from reconciler.status import project_status as status_of

    if not paths and not threads:
        raise ConfigError(
            "status needs manifest PATHS or --thread ID: threads cannot be listed, so "
            "say which to read"
        )
    config = load_project_config(paths or ["."])
    project = resolve_project(flags, config)
    declared: dict[str, list[str]] | None = None
    if paths:
        manifests = load_desired(paths)
        declared = {thread_id: [] for thread_id in manifests.threads}
        for run in manifests.runs:
            declared.setdefault(run.thread_id, []).append(run.name)
    backend = resolve_backend(flags, config)

    async def go() -> ProjectStatus:
        async with connect(backend, warn) as client:
            live = await read_live_state(client, [*(declared or {}), *threads])
        return status_of(live, project, declared)

    return run_session(go())


def run_query(
    sql: str | None, flags: BackendFlags, *, lock: LockFlags, command: str,
    warn: Callable[[str], None], show: Callable[[QueryResult], None], file: str | None = None,
) -> int:
    """``query``: the statements of ``sql`` (or of ``file``) in order, each shown as it ends.

    Every statement is checked before the first runs; the project's lock is held while a
    script that writes runs. Returns how many statements ran.
    """
    from reconciler.query import QueryError, catalog_result, is_write, parse_script
    from reconciler.query import execute as execute_query

    text = sql if sql is not None else _query_file(file or "")
    try:
        statements = parse_script(text)  # bad SQL stops here, before any API call
    except QueryError as exc:
        raise exc if file is None else QueryError(f"{file}: {exc}") from None
    answers = [a for a in map(catalog_result, statements) if a is not None]
    if len(answers) == len(statements):  # DESCRIBE and SHOW only: no key, no server
        for answer in answers:
            show(answer)
        return len(statements)
    config = load_project_config(["."])
    project = flags.project or config.project
    # A write holds the project's lock when there is a project to lock: a statement that
    # cancels or re-tags a managed run must not interleave with an apply.
    guard = (
        write_guard(config, project_root(config, ["."]), project, lock, command)
        if project and any(is_write(s) for s in statements) else None
    )

    async def go() -> None:
        async with connect(resolve_backend(flags, config), warn) as client:
            with guard.hold() if guard is not None else contextlib.nullcontext():
                for statement in statements:
                    show(catalog_result(statement) or await execute_query(client, statement))

    run_session(go())
    return len(statements)


def _query_file(path: str) -> str:
    """The SQL of ``query --file``, or one sentence saying why it cannot be read."""
    from reconciler.query import QueryError

    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise QueryError(f"cannot read {path}: {reason}") from None


def lock_status(path: str) -> tuple[Path, LockStatus]:
    """``lock show``: the local lock folder of the project at ``path``, and who holds it."""
    from reconciler.lock import local_lock_status

    config = load_project_config([path])
    if lock_url(config) is not None:
        raise ConfigError(
            "this project uses the shared PostgreSQL lock, which dies with its holder's "
            "connection: there is nothing to show or break here"
        )
    folder = project_root(config, [path]) / STATE_FOLDER
    return folder, local_lock_status(folder)


def force_unlock(lock_id: str, path: str) -> LockHolder:
    """``lock force-unlock``: break the local lock ``lock_id``; whom it named."""
    from reconciler.lock import force_unlock_local

    config = load_project_config([path])
    return force_unlock_local(project_root(config, [path]) / STATE_FOLDER, lock_id)


def serve_emulator(host: str, port: int, announce: Callable[[str], None], **options: Any) -> None:
    """``emulator serve``: the emulator ``options`` describe, over HTTP until interrupted."""
    from reconciler.emulator import address_of, listen, serve
    from reconciler.emulator.options import serve_config

    try:
        config = serve_config(**options)
        sock = listen(host, port)  # bound first: a port in use is one sentence, 0 a real port
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    announce(f"Emulator listening on {address_of(sock, config)} (Ctrl-C to stop)")
    serve(config, sock)
