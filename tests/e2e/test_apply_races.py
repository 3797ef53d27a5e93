"""Apply when the live state moved after planning: a thread that became busy."""

from __future__ import annotations

import asyncio

import pytest

from reconciler.apply import Applier, ApplyOptions, Outcome
from reconciler.client import AssistantsClient, ClientSettings
from reconciler.model import DesiredRun, LiveState, ThreadState
from reconciler.planning import Action, PlanOptions, plan
from tests.e2e.harness import KEY, THREAD_A, Api, BackgroundServer

pytestmark = pytest.mark.e2e


def test_create_on_a_thread_that_became_busy_waits_then_times_out_cleanly(
    server: BackgroundServer, api: Api
) -> None:
    desired = [DesiredRun(THREAD_A, "late", {"assistant_id": "asst_demo"})]
    computed = plan(desired, LiveState({THREAD_A: ThreadState(THREAD_A, ())}),
                    PlanOptions(project="race"))
    assert [c.action for c in computed.changes] == [Action.CREATE]
    assert computed.changes[0].wait_for == ()
    blocker = api.create(THREAD_A, {"assistant_id": "asst_demo",
                                    "tools": [{"type": "function", "function": {"name": "f"}}]})

    async def go() -> Outcome:
        settings = ClientSettings(base_url=server.base_url, api_key=KEY)
        async with AssistantsClient(settings) as client:
            applier = Applier(client, options=ApplyOptions(timeout=0.3, poll_interval=0.05))
            report = await applier.apply(computed)
            return report.results[0].outcome

    assert asyncio.run(go()) is Outcome.FAILED
    assert api.managed(THREAD_A, "late") == []
    api.cancel(THREAD_A, blocker["id"])

    async def again() -> Outcome:
        settings = ClientSettings(base_url=server.base_url, api_key=KEY)
        async with AssistantsClient(settings) as client:
            report = await Applier(client, options=ApplyOptions(timeout=5)).apply(computed)
            return report.results[0].outcome

    assert asyncio.run(again()) is Outcome.APPLIED
    assert len(api.managed(THREAD_A, "late")) == 1
