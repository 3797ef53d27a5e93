"""Reading API run objects into LiveRun values (pure)."""

from __future__ import annotations

import pytest

from reconciler.runs import MalformedRunError, run_from_api, thread_state


def api_run(run_id: str, status: str, created_at: int, **extra: object) -> dict[str, object]:
    return {
        "id": run_id, "object": "thread.run", "thread_id": "thread_a", "status": status,
        "created_at": created_at, "assistant_id": "asst_1", "model": "gpt-4o",
        "instructions": "from the assistant", "tools": [], "metadata": {"k": "v"},
        **extra,
    }


def test_run_from_api_keeps_echoed_fields_and_pending_calls() -> None:
    run = run_from_api(
        api_run(
            "run_1", "requires_action", 10,
            required_action={
                "type": "submit_tool_outputs",
                "submit_tool_outputs": {"tool_calls": [
                    {"id": "call_1", "type": "function",
                     "function": {"name": "lookup", "arguments": "{}"}},
                ]},
            },
        )
    )
    assert run.fields["model"] == "gpt-4o"
    assert "additional_messages" not in run.fields
    assert [(c.id, c.function_name) for c in run.pending_tool_calls] == [("call_1", "lookup")]
    assert run.is_active


def test_pending_calls_only_for_requires_action() -> None:
    run = run_from_api(api_run("run_1", "completed", 10, required_action={"junk": 1}))
    assert run.pending_tool_calls == ()
    assert not run.is_active


def test_thread_state_orders_newest_first() -> None:
    state = thread_state("thread_a", [api_run("run_1", "completed", 1),
                                      api_run("run_3", "queued", 3),
                                      api_run("run_2", "cancelled", 2)])
    assert [r.id for r in state.runs] == ["run_3", "run_2", "run_1"]


def test_malformed_run_is_a_clear_error() -> None:
    with pytest.raises(MalformedRunError, match="without a string 'id'"):
        run_from_api({"status": "queued"}, "thread_a")
