"""``reconciler status`` with plain values: the status value, its text and its JSON."""

from __future__ import annotations

import json

from jsonschema import Draft202012Validator

from reconciler import identity
from reconciler.model import DesiredRun, LiveRun, LiveState
from reconciler.render.status import render_status, status_to_dict, timestamp
from reconciler.schemas import load_schema
from reconciler.status import ProjectStatus, Role, RunEntry, ThreadStatus, project_status
from tests.fixtures import PROJECT, desired, managed, state, unmanaged

#: 2026-01-02T03:04:05Z, and one hour later.
T0 = 1767323045
T1 = T0 + 3600


def generation(run: DesiredRun, run_id: str, gen: int, status: str, created_at: int) -> LiveRun:
    """A managed run of ``run`` at generation ``gen`` (a replacement is one more)."""
    reserved = identity.reserved_metadata(
        project=PROJECT, name=run.name, spec=run.spec, revision=run.revision,
        user_metadata={}, generation=gen,
    )
    return LiveRun(run_id, run.thread_id, status, created_at, reserved)


def history() -> LiveState:
    """thread_a: report replaced once (gen 1 → 2) with a twin of gen 2; an old undeclared
    run; a foreign run. thread_b: nothing managed."""
    report = desired("report")
    old = desired("old-job")
    return state(
        generation(report, "run_new", 2, "in_progress", T1),
        generation(report, "run_twin", 2, "queued", T1 - 1),  # same generation, older clock
        generation(report, "run_first", 1, "cancelled", T1 + 5),  # a later clock, gen 1
        managed(old, "run_oldjob", "completed", created_at=T0),
        unmanaged("run_foreign", "completed"),
        managed(desired("theirs"), "run_theirs", project="someone-else"),
        threads=["thread_a", "thread_b"],
    )


def test_roles_generations_and_declarations() -> None:
    status = project_status(history(), PROJECT, {"thread_a": ["report", "daily"]})
    assert status == ProjectStatus(
        project=PROJECT,
        declarations_known=True,
        threads=(
            ThreadStatus("thread_a", (
                RunEntry("old-job", "run_oldjob", "completed", 1, T0, Role.CURRENT, False),
                # The highest generation is current whatever the clock says; the server's
                # clock only breaks the tie between twins of one generation.
                RunEntry("report", "run_new", "in_progress", 2, T1, Role.CURRENT, True),
                RunEntry("report", "run_twin", "queued", 2, T1 - 1, Role.TWIN, True),
                RunEntry("report", "run_first", "cancelled", 1, T1 + 5, Role.OLDER, True),
            ), missing=("daily",)),
            ThreadStatus("thread_b", (), missing=()),
        ),
    )
    assert (status.count(Role.CURRENT), status.count(Role.OLDER), status.count(Role.TWIN)) == (
        2, 1, 1
    )
    assert (status.undeclared, status.missing) == (1, 1)


def test_without_manifests_nothing_is_said_about_declarations() -> None:
    status = project_status(history(), PROJECT)
    assert not status.declarations_known
    assert {run.declared for run in status.runs} == {None}
    assert all(thread.missing == () for thread in status.threads)
    assert (status.undeclared, status.missing) == (0, 0)


def test_another_projects_runs_are_not_listed() -> None:
    status = project_status(history(), "someone-else")
    assert [(r.name, r.run_id) for r in status.runs] == [("theirs", "run_theirs")]


def test_times_are_utc_in_one_format() -> None:
    assert timestamp(T0) == "2026-01-02T03:04:05Z"


def test_text_view_is_a_table_per_thread_with_a_summary() -> None:
    text = render_status(project_status(history(), PROJECT, {"thread_a": ["report", "daily"]}),
                         "text")
    # Reviewed line by line: columns are as wide as their widest cell, across threads.
    assert text == (
        'Managed runs of project "analytics":\n'
        "\n"
        "thread_a\n"
        "  NAME     RUN         STATUS       GEN  CREATED               ROLE     DECLARED\n"
        "  old-job  run_oldjob  completed      1  2026-01-02T03:04:05Z  current  no\n"
        "  report   run_new     in_progress    2  2026-01-02T04:04:05Z  current  yes\n"
        "  report   run_twin    queued         2  2026-01-02T04:04:04Z  twin     yes\n"
        "  report   run_first   cancelled      1  2026-01-02T04:04:10Z  older    yes\n"
        "  declared, with no managed run yet: daily\n"
        "\n"
        "thread_b\n"
        "  no managed runs\n"
        "\n"
        "4 managed runs on 2 threads: 2 current, 1 older, 1 twin; 1 no longer declared, "
        "1 declared with no managed run yet.\n"
    )


def test_text_view_without_manifests_has_no_declared_column() -> None:
    text = render_status(project_status(history(), PROJECT), "text")
    assert "DECLARED" not in text and "declared" not in text
    assert text.rstrip().endswith("2 current, 1 older, 1 twin.")


def test_control_characters_in_names_are_escaped() -> None:
    run = LiveRun("run_x", "thread_a", "completed", T0,
                  {identity.KEY_PROJECT: PROJECT, identity.KEY_NAME: "evil\x1b[2Jname"})
    text = render_status(project_status(state(run), PROJECT), "text")
    assert "\x1b" not in text and "evil\\x1b[2Jname" in text


def test_json_view_matches_its_schema_and_says_everything() -> None:
    status = project_status(history(), PROJECT, {"thread_a": ["report", "daily"]})
    data = json.loads(render_status(status, "json"))
    assert data == status_to_dict(status)
    Draft202012Validator(load_schema("status")).validate(data)
    assert data["summary"] == {"threads": 2, "runs": 4, "current": 2, "older": 1, "twin": 1,
                               "undeclared": 1, "missing": 1}
    first = data["threads"][0]
    assert first["missing"] == ["daily"]
    assert first["runs"][2] == {
        "name": "report", "run_id": "run_twin", "status": "queued", "generation": 2,
        "created_at": "2026-01-02T04:04:04Z", "role": "twin", "declared": True,
    }
    unknown = json.loads(render_status(project_status(history(), PROJECT), "json"))
    Draft202012Validator(load_schema("status")).validate(unknown)
    assert unknown["threads"][0]["runs"][0]["declared"] is None
