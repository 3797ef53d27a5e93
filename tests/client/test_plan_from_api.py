"""Planning each thread as its runs arrive gives the same plan as reading everything first."""

from __future__ import annotations

import asyncio

import httpx

from reconciler import identity
from reconciler.client import AssistantsClient, ClientSettings
from reconciler.live import plan_from_api, read_live_state
from reconciler.model import DesiredRun
from reconciler.planning import Action, PlanOptions, plan


def api_run(run_id: str, thread: str, name: str, spec: dict[str, object], created: int,
            status: str = "completed") -> dict[str, object]:
    meta = identity.reserved_metadata(project="p", name=name, spec=spec, revision=0,
                                      user_metadata={})
    return {"id": run_id, "thread_id": thread, "status": status, "created_at": created,
            "metadata": meta, **spec}


LIVE = {
    "thread_a": [api_run("run_2", "thread_a", "kept", {"assistant_id": "a"}, 2),
                 api_run("run_1", "thread_a", "gone", {"assistant_id": "a"}, 1, "queued")],
    "thread_b": [api_run("run_3", "thread_b", "old", {"assistant_id": "a", "model": "x"}, 3)],
}

DESIRED = [
    DesiredRun("thread_b", "old", {"assistant_id": "a", "model": "y"}),
    DesiredRun("thread_a", "kept", {"assistant_id": "a"}),
    DesiredRun("thread_a", "new", {"assistant_id": "a"}),
]


def handler(request: httpx.Request) -> httpx.Response:
    thread = request.url.path.split("/")[-2]
    data = LIVE[thread]
    return httpx.Response(200, json={"object": "list", "data": data, "has_more": False,
                                     "first_id": data[0]["id"], "last_id": data[-1]["id"]})


def test_streamed_plan_equals_the_plan_of_the_whole_state() -> None:
    options = PlanOptions(project="p", prune=True)

    async def go() -> tuple[object, object]:
        settings = ClientSettings(base_url="http://127.0.0.1/v1", api_key="k")
        async with AssistantsClient(settings, transport=httpx.MockTransport(handler)) as client:
            streamed = await plan_from_api(client, DESIRED, options)
            live = await read_live_state(client, ["thread_b", "thread_a"])
            return streamed, plan(DESIRED, live, options)

    streamed, whole = asyncio.run(go())
    assert streamed == whole
    actions = [(c.address, c.action) for c in streamed.changes]  # type: ignore[attr-defined]
    assert actions[0] == ("thread_b/old", Action.REPLACE)  # threads in manifest order
    assert ("thread_a/gone", Action.CANCEL) in actions
    assert ("thread_a/new", Action.CREATE) in actions


def test_the_count_of_threads_read_is_told_as_each_arrives() -> None:
    told: list[tuple[int, int]] = []
    stale: list[tuple[int, int]] = []

    async def go() -> None:
        settings = ClientSettings(base_url="http://127.0.0.1/v1", api_key="k")
        async with AssistantsClient(settings, transport=httpx.MockTransport(handler)) as client:
            await plan_from_api(client, DESIRED, PlanOptions(project="p"),
                                on_read=lambda read, total: told.append((read, total)))
            await read_live_state(client, ["thread_a", "thread_b", "thread_a"],
                                  on_read=lambda read, total: stale.append((read, total)))

    asyncio.run(go())
    assert told == [(0, 2), (1, 2), (2, 2)]
    assert stale == [(0, 2), (1, 2), (2, 2)]  # a thread named twice is read, and counted, once
