"""``export --adopt`` applies its adoptions as modify changes and says which ones failed."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from reconciler.adoption import adopt_runs, adoption_advice, announced
from reconciler.changes import Change, Modify, Reason
from reconciler.errors import ApplyError
from tests.fixtures import error, make_client

ADOPTIONS = [
    Change("thread_a", "report", (Reason.ADOPT,),
           Modify({"team": "a", "reconciler.project": "p"}), run_id="run_ok"),
    Change("thread_a", "triage", (Reason.RERECORD,),
           Modify({"reconciler.project": "p"}), run_id="run_gone"),
    Change("thread_b", "later", (Reason.ADOPT,),
           Modify({"reconciler.project": "p"}), run_id="run_b"),
]


def test_every_adoption_is_sent_and_a_failure_names_its_run() -> None:
    sent: dict[str, object] = {}
    said: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        run_id = request.url.path.rsplit("/", 1)[-1]
        sent[run_id] = json.loads(request.content)
        if run_id == "run_gone":
            return error(404, "No run found with id 'run_gone'.")
        return httpx.Response(200, json={"id": run_id, "object": "thread.run"})

    async def go() -> None:
        async with make_client(handler) as client:
            await adopt_runs(client, ADOPTIONS, "p", said.append)

    with pytest.raises(ApplyError, match="adopted 2 of 3 run"):
        asyncio.run(go())

    assert sent == {"run_ok": {"metadata": {"team": "a", "reconciler.project": "p"}},
                    "run_gone": {"metadata": {"reconciler.project": "p"}},
                    "run_b": {"metadata": {"reconciler.project": "p"}}}
    (line,) = said
    assert line.startswith("thread_a/triage (run_gone): not adopted:")
    assert "No run found with id 'run_gone'." in line


def test_success_is_one_sentence_and_announcements_name_the_kind() -> None:
    said: list[str] = []

    async def go() -> None:
        async with make_client(lambda r: httpx.Response(200, json={"id": "x"})) as client:
            await adopt_runs(client, ADOPTIONS[:1], "p", said.append)

    asyncio.run(go())
    assert said == ["Adopted 1 run(s) into project 'p'."]
    assert announced(ADOPTIONS[:2]) == [
        "will adopt thread_a/report (run_ok)", "will re-record thread_a/triage (run_gone)",
    ]
    assert adoption_advice(ADOPTIONS, "p") == (
        "2 exported runs are not managed by project 'p' yet (`apply` would create new runs "
        "for them); 1 managed run recorded a spec the export cannot reproduce (`apply` would "
        "replace it): rerun with --adopt to tag them"
    )
