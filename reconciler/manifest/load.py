"""Loading: manifests given as text → every desired run, and every problem, in file order.

The pipeline of the package, in one place: each file is read into located documents
(``yaml_reader``), each document is checked whole (``checks.check_document``), each run has its
defaults merged (``merge``) and is checked merged (``checks.check_run``), names are checked
unique across every file, and the runs that passed become ``DesiredRun`` values. Problems are
sorted by file (in the order given), line and column.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from reconciler.manifest.checks import check_document, check_run, check_unique_names
from reconciler.manifest.documents import MergedRun, Problem
from reconciler.manifest.merge import default_threads, desired_run, merge_run, run_indexes
from reconciler.manifest.yaml_reader import parse_documents
from reconciler.model import DesiredRun, SourceLocation

__all__ = ["ManifestSet", "load_manifests"]


@dataclass(frozen=True)
class ManifestSet:
    """Every run the manifests declare, and every problem found in them.

    Nothing may be planned or applied while ``problems`` is not empty; ``runs`` then holds only
    the runs that were valid on their own, for tools that want to show them anyway.
    """

    runs: tuple[DesiredRun, ...]
    problems: tuple[Problem, ...]
    #: Every thread the manifests name, in ``defaults`` too, in the order the files first name
    #: them: a thread whose runs were all removed (``runs: []``) is still read, so that
    #: ``--prune`` sees its managed runs.
    threads: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problems


def load_manifests(sources: Sequence[tuple[str, str]]) -> ManifestSet:
    """Parse, merge and validate manifests given as ``(display name, text)`` pairs."""
    with _collector_paused():
        return _load(sources)


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while loading, as it was before afterwards.

    Loading builds millions of long-lived, acyclic objects (values, locations, runs) for
    100,000 runs, and the collector would walk them again and again (a quarter of the CPU)
    to find no garbage: reference counting frees everything loading throws away."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _load(sources: Sequence[tuple[str, str]]) -> ManifestSet:
    problems: list[Problem] = []
    merged: list[MergedRun] = []
    valid: list[MergedRun] = []
    threads: dict[str, None] = {}
    for file, text in sources:
        documents, found = parse_documents(file, text)
        problems.extend(found)
        if not found and all(d.value is None for d in documents):
            problems.append(Problem(
                SourceLocation(file, 1, 1),
                "holds no manifest (an empty file, or only comments): nothing would be "
                "declared by it",
            ))
        for document in documents:
            document_problems = check_document(document)
            problems.extend(document_problems)
            if not document_problems:
                threads.update(dict.fromkeys(default_threads(document)))
            for index in run_indexes(document):
                run = merge_run(document, index)
                run_problems = check_run(run)
                problems.extend(run_problems)
                merged.append(run)
                if not document_problems and not run_problems:
                    valid.append(run)
                    # threads in the order the files first name them, defaults or runs
                    threads[str(run.fields["thread_id"])] = None
    problems.extend(check_unique_names(merged))

    runs: list[DesiredRun] = []
    seen: set[tuple[str, str]] = set()
    for run in valid:
        desired = desired_run(run)
        if desired.key not in seen:
            seen.add(desired.key)
            runs.append(desired)
    order = {file: position for position, (file, _) in enumerate(sources)}
    problems.sort(key=lambda p: (order.get(p.location.file, len(order)), *p.sort_key[1:]))
    return ManifestSet(tuple(runs), tuple(problems), tuple(threads))
