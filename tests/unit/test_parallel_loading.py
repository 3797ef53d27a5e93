"""Loading big manifests over several processes gives what one process gives, always.

Each case compares :func:`load_manifests_parallel` with :func:`load_manifests` on the same
files: the sequential loader is the specification, the parallel one an implementation of it.
"""

from __future__ import annotations

import pytest

from reconciler import loading as parallel
from reconciler.loading import join_parts, load_manifests_parallel, split_sources
from reconciler.manifest import ManifestSet, load_manifests


def manifest(thread: str, runs: int, *, prefix: str = "run", defaults_thread: str = "") -> str:
    """One file: ``runs`` runs on ``thread``, each with enough text to make files big."""
    lines = ["apiVersion: reconciler/v1", "kind: Runs"]
    if defaults_thread:
        lines += ["defaults:", f"  thread_id: {defaults_thread}"]
    lines.append("runs:")
    for index in range(runs):
        lines += [f"  - name: {prefix}-{index}", f"    thread_id: {thread}",
                  "    assistant_id: asst_1",
                  f"    instructions: {'Summarise the weekly figures. ' * 8}{index}",
                  "    metadata: {team: data}"]
    return "\n".join(lines) + "\n"


def big_project(files: int = 4, runs: int = 1_000) -> list[tuple[str, str]]:
    return [(f"m{f}.yaml", manifest(f"thread_{f}", runs)) for f in range(files)]


def test_the_project_is_big_enough_to_use_processes() -> None:
    assert sum(len(text) for _, text in big_project()) > parallel.PARALLEL_MIN_CHARS


@pytest.mark.parametrize("processes", [2, 3, 4])
def test_a_clean_project_loads_as_one_process_loads_it(processes: int) -> None:
    sources = big_project()
    assert load_manifests_parallel(sources, processes=processes) == load_manifests(sources)


def test_threads_keep_the_order_of_first_mention_across_groups() -> None:
    sources = [("a.yaml", manifest("thread_b", 2_000, defaults_thread="thread_a")),
               ("b.yaml", manifest("thread_d", 2_000, defaults_thread="thread_c"))]
    assert sum(len(text) for _, text in sources) > parallel.PARALLEL_MIN_CHARS
    loaded = load_manifests_parallel(sources, processes=2)
    assert loaded == load_manifests(sources)
    assert loaded.threads == ("thread_a", "thread_b", "thread_c", "thread_d")


def test_a_problem_in_a_later_group_is_reported_as_one_process_reports_it() -> None:
    sources = big_project()
    broken = sources[2][1].replace("assistant_id: asst_1", "assistant_id: 42", 1)
    sources[2] = (sources[2][0], broken)
    loaded = load_manifests_parallel(sources, processes=4)
    assert loaded == load_manifests(sources)
    assert [str(p.location) for p in loaded.problems] == ["m2.yaml:6:19"]


def test_a_name_used_in_two_groups_is_the_duplicate_one_process_finds() -> None:
    sources = [("a.yaml", manifest("thread_x", 1_000)), ("b.yaml", manifest("thread_x", 1_000))]
    loaded = load_manifests_parallel(sources, processes=2)
    assert loaded == load_manifests(sources)
    assert len(loaded.problems) == 1_000
    assert "run name 'run-0' is already used on thread 'thread_x' at a.yaml:4:11" in str(
        loaded.problems[0])


def test_small_projects_never_start_a_process(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(groups: object) -> list[ManifestSet]:
        raise AssertionError("a process was started for a small project")

    monkeypatch.setattr(parallel, "_load_groups", refuse)
    sources = [("a.yaml", manifest("thread_a", 5)), ("b.yaml", manifest("thread_b", 5))]
    assert load_manifests_parallel(sources, processes=2) == load_manifests(sources)


def test_without_fork_one_process_loads_everything(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_fork(groups: object) -> list[ManifestSet]:
        raise OSError("fork refused")

    monkeypatch.setattr(parallel, "_load_groups", no_fork)
    sources = big_project()
    assert load_manifests_parallel(sources, processes=4) == load_manifests(sources)


def test_groups_are_contiguous_balanced_and_never_empty() -> None:
    sources = [(name, "x" * size) for name, size in
               [("a", 10), ("b", 10), ("c", 10), ("d", 10), ("e", 40)]]
    assert [[name for name, _ in group] for group in split_sources(sources, 2)] == [
        ["a", "b", "c", "d"], ["e"]]
    assert [[name for name, _ in group] for group in split_sources(sources, 3)] == [
        ["a", "b", "c"], ["d", "e"]]
    assert [[name for name, _ in group] for group in split_sources(sources[:2], 5)] == [
        ["a"], ["b"]]


def test_a_part_with_problems_is_never_joined() -> None:
    clean = load_manifests([("a.yaml", manifest("thread_a", 2))])
    broken = load_manifests([("b.yaml", "kind: Nothing\n")])
    assert broken.problems
    assert join_parts([clean, broken]) is None
    assert join_parts([clean]) == clean
