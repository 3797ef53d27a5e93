"""The project's manifests and ``reconciler.toml`` read and checked, big ones on every CPU.

``validate`` needs only this module, so it never imports the HTTP client. This is the
application layer's way to run the pure :mod:`reconciler.manifest` pipeline (worker
processes are the edge's business, so they live here, not in the package).

Parsing YAML and checking runs is CPU-bound Python: a project of 100,000 runs spends seconds in
it before its first request, on one core while the others idle. Above ``PARALLEL_MIN_CHARS`` of
text, with more than one CPU and more than one file, the files are split into contiguous groups
of about equal size; the calling process loads the first group while forked workers load the
others, and the parts are joined in file order.

The join is exact only when every part is clean, so it is used only then: a problem in any
part, or a run name used in two parts, and every file is loaded again here, in one process, so
that problems, their order and their wording are always those of :func:`load_manifests`. Where
processes cannot be forked (not Linux, or the system refuses), it is :func:`load_manifests`.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass

from reconciler.config import ProjectConfig, find_config, read_config
from reconciler.errors import ManifestError
from reconciler.manifest import ManifestSet, Problem, load_manifests, read_sources
from reconciler.model import DesiredRun

__all__ = [
    "PARALLEL_MIN_CHARS", "Checked", "check_manifests", "load_desired",
    "load_manifests_parallel", "load_project_config", "split_sources",
]

#: Below this much text (about 7,000 runs) a second process costs more than it saves.
PARALLEL_MIN_CHARS = 1_000_000
#: Workers beyond this add more joining (unpickling in this process) than they take off.
MAX_PROCESSES = 8

Sources = Sequence[tuple[str, str]]


def load_manifests_parallel(sources: Sources, *, processes: int | None = None) -> ManifestSet:
    """:func:`load_manifests`, on ``processes`` CPUs (default: those this process may use)
    when the manifests are big enough to gain from it."""
    count = min(processes or _usable_cpus(), MAX_PROCESSES, len(sources))
    if count < 2 or sum(len(text) for _, text in sources) < PARALLEL_MIN_CHARS:
        return load_manifests(sources)
    groups = split_sources(sources, count)
    try:
        parts = _load_groups(groups)
    except (BrokenProcessPool, OSError):  # no fork here, or a worker was killed: one process
        return load_manifests(sources)
    joined = join_parts(parts)
    return joined if joined is not None else load_manifests(sources)


def load_project_config(paths: Sequence[str]) -> ProjectConfig:
    """``reconciler.toml`` beside the manifests (or above them), if there is one."""
    found = find_config(paths)
    if found is None:
        return ProjectConfig()
    config, problems = read_config(found)
    if problems:
        raise ManifestError([str(p) for p in problems], subject=found)
    return config


def load_desired(paths: Sequence[str]) -> ManifestSet:
    """Read and validate the manifests; any problem stops here, before the API is called."""
    sources, read_problems = read_sources(paths)
    loaded = load_manifests_parallel(sources)
    problems = [str(p) for p in (*read_problems, *loaded.problems)]
    if problems:
        raise ManifestError(problems)
    return loaded


@dataclass(frozen=True)
class Checked:
    """``validate`` for machines: every located problem of the config and the manifests."""

    problems: tuple[Problem, ...]
    runs: int
    threads: int

    def summary(self) -> str:
        return (
            f"The manifests are valid: {self.runs} run{'s' if self.runs != 1 else ''} "
            f"on {self.threads} thread{'s' if self.threads != 1 else ''}."
        )


def check_manifests(paths: Sequence[str]) -> Checked:
    """Every problem at once, ``reconciler.toml``'s and the manifests', as located values
    (``validate --format github|json``); raises nothing, so a CI sees them all."""
    problems: list[Problem] = []
    found = find_config(paths)
    if found is not None:
        problems.extend(read_config(found)[1])
    sources, read_problems = read_sources(paths)
    loaded = load_manifests_parallel(sources)
    problems.extend((*read_problems, *loaded.problems))
    threads = len({r.thread_id for r in loaded.runs})
    return Checked(tuple(problems), len(loaded.runs), threads)


def split_sources(sources: Sources, count: int) -> list[list[tuple[str, str]]]:
    """``sources`` in at most ``count`` contiguous groups of about equal text, none empty."""
    total = sum(len(text) for _, text in sources)
    groups: list[list[tuple[str, str]]] = [[]]
    done = 0
    for source in sources:
        # a new group starts once this one holds its share of the text
        if groups[-1] and done >= total * len(groups) / count and len(groups) < count:
            groups.append([])
        groups[-1].append(source)
        done += len(source[1])
    return groups


def join_parts(parts: Sequence[ManifestSet]) -> ManifestSet | None:
    """The parts as one set, in their order; ``None`` when only one process can say it
    exactly (a part has problems, or two parts use one run name on one thread)."""
    if any(part.problems for part in parts):
        return None
    runs: list[DesiredRun] = []
    seen: set[tuple[str, str]] = set()
    threads: dict[str, None] = {}
    for part in parts:
        keys = {run.key for run in part.runs}
        if not seen.isdisjoint(keys):
            return None
        seen |= keys
        runs.extend(part.runs)
        threads.update(dict.fromkeys(part.threads))
    return ManifestSet(tuple(runs), (), tuple(threads))


def _load_groups(groups: list[list[tuple[str, str]]]) -> list[ManifestSet]:
    """The first group here, the others in forked workers at the same time."""
    if sys.platform != "linux":  # fork is only safe (and cheap) there
        raise OSError("no fork")
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(len(groups) - 1, mp_context=context) as pool:
        futures: list[Future[ManifestSet]] = [
            pool.submit(load_manifests, group) for group in groups[1:]
        ]
        first = load_manifests(groups[0])
        return [first, *(future.result() for future in futures)]


def _usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1
