"""``export --adopt`` sends one metadata update per run and says which ones failed."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from reconciler.cli import adopt_runs
from reconciler.errors import ApplyError
from reconciler.export import Adoption
from tests.fixtures import error, make_client

ADOPTIONS = [
    Adoption("thread_a", "run_ok", "report", {"team": "a", "reconciler.project": "p"}),
    Adoption("thread_a", "run_gone", "triage", {"reconciler.project": "p"}),
]


def test_every_adoption_is_sent_and_a_failure_names_its_run(
    capsys: pytest.CaptureFixture[str],
) -> None:
    sent: dict[str, object] = {}

    def handler(request: httpx.Request) -> httpx.Response:
        run_id = request.url.path.rsplit("/", 1)[-1]
        sent[run_id] = json.loads(request.content)
        if run_id == "run_gone":
            return error(404, "No run found with id 'run_gone'.")
        return httpx.Response(200, json={"id": run_id, "object": "thread.run"})

    async def go() -> None:
        async with make_client(handler) as client:
            await adopt_runs(client, ADOPTIONS, "p")

    with pytest.raises(ApplyError, match="adopted 1 of 2 run"):
        asyncio.run(go())

    assert sent == {"run_ok": {"metadata": dict(ADOPTIONS[0].metadata)},
                    "run_gone": {"metadata": dict(ADOPTIONS[1].metadata)}}
    err = capsys.readouterr().err
    assert "thread_a/triage (run_gone): not adopted" in err
    assert "No run found with id 'run_gone'." in err
    assert "run_ok" not in err
