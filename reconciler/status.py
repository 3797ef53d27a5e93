"""``reconciler status``: the project's managed runs per thread, as they stand.

Terraform's ``state list`` and Argo CD's app status, for a tool whose state lives on the runs
themselves: every run the project manages on the threads read, its status and generation,
whether it is the current run of its name (the one a plan acts on) or an older or twin run
beside it, and, when manifests were given, whether they still declare it. Purely
computational: the shell reads the threads, :func:`project_status` decides nothing but this.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from reconciler import identity
from reconciler.model import LiveRun, LiveState, ThreadState
from reconciler.planning import index_thread

__all__ = ["ProjectStatus", "Role", "RunEntry", "ThreadStatus", "project_status"]


class Role(enum.Enum):
    """Where a managed run stands among the runs of its name."""

    CURRENT = "current"  # the highest generation: the run plans and applies act on
    OLDER = "older"  # an earlier generation: a replaced run, kept as history
    TWIN = "twin"  # the current run's generation beside it: one create landed twice


@dataclass(frozen=True)
class RunEntry:
    """One managed run. ``declared`` is None when no manifests were given to say."""

    name: str
    run_id: str
    status: str
    generation: int  # 0 for runs written by format 1, which record none
    created_at: int  # the server's clock, seconds since the epoch
    role: Role
    declared: bool | None


@dataclass(frozen=True)
class ThreadStatus:
    """One thread's managed runs (by name, the current run first), and the names the
    manifests declare there that no managed run carries yet."""

    thread_id: str
    runs: tuple[RunEntry, ...]
    missing: tuple[str, ...] = ()


@dataclass(frozen=True)
class ProjectStatus:
    """The status of every thread read, in the order asked for."""

    project: str
    threads: tuple[ThreadStatus, ...]
    declarations_known: bool  # manifests were given, so ``declared`` and ``missing`` say

    @property
    def runs(self) -> tuple[RunEntry, ...]:
        return tuple(run for thread in self.threads for run in thread.runs)

    def count(self, role: Role) -> int:
        return sum(1 for run in self.runs if run.role is role)

    @property
    def undeclared(self) -> int:
        """Managed runs the manifests no longer declare (0 when they were not given)."""
        return sum(1 for run in self.runs if run.declared is False)

    @property
    def missing(self) -> int:
        return sum(len(thread.missing) for thread in self.threads)


def project_status(
    live: LiveState, project: str, declared: Mapping[str, Sequence[str]] | None = None
) -> ProjectStatus:
    """The status of ``project``'s runs in ``live``; purely computational.

    ``declared`` maps each thread to the run names the manifests declare on it (None: no
    manifests were given, so nothing is said about declarations).
    """
    threads = tuple(
        thread_status(thread, project, None if declared is None else declared.get(thread_id, ()))
        for thread_id, thread in live.threads.items()
    )
    return ProjectStatus(project, threads, declarations_known=declared is not None)


def thread_status(
    thread: ThreadState, project: str, declared: Sequence[str] | None
) -> ThreadStatus:
    """One thread: its managed runs grouped by name, each name's current run first."""
    current, by_name = index_thread(thread, project)
    names = set(declared) if declared is not None else None
    entries: list[RunEntry] = []
    for name in sorted(by_name):
        head = current[name]
        generation = identity.recorded_generation(head.metadata)
        for run in sorted(by_name[name], key=_recency, reverse=True):
            entries.append(_entry(name, run, head, generation, names))
    missing = () if declared is None else tuple(
        dict.fromkeys(n for n in declared if n not in by_name)
    )
    return ThreadStatus(thread.thread_id, tuple(entries), missing)


def _entry(
    name: str, run: LiveRun, head: LiveRun, head_generation: int, names: set[str] | None
) -> RunEntry:
    generation = identity.recorded_generation(run.metadata)
    if run.id == head.id:
        role = Role.CURRENT
    elif generation == head_generation:
        role = Role.TWIN
    else:
        role = Role.OLDER
    return RunEntry(
        name=name, run_id=run.id, status=run.status, generation=generation,
        created_at=run.created_at, role=role, declared=None if names is None else name in names,
    )


def _recency(run: LiveRun) -> tuple[int, int, str, str]:
    return identity.recency(run.metadata, run.created_at, run.id)
