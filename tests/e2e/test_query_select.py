"""``query`` SELECT forms end to end: SQL through the real client to the emulator over a
loopback socket, each result checked against the runs the raw HTTP API returns, with the
expected rows computed here in plain Python."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from reconciler.client import AssistantsClient, ClientSettings
from reconciler.emulator import BackgroundServer, parse_latency
from reconciler.query import QueryResult, execute, parse
from tests.e2e.harness import KEY, THREAD_A, THREAD_B, THREAD_C, Api, start_server

pytestmark = pytest.mark.e2e

Run = dict[str, Any]
FUNCTION = [{"type": "function", "function": {"name": "lookup_ticket"}}]


@dataclass
class Calls:
    """The client calls a statement made, in order, and the most in flight at once."""

    made: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)
    in_flight: int = 0
    most: int = 0


def run_sql(server: BackgroundServer, sql: str, calls: Calls | None = None) -> QueryResult:
    async def go() -> QueryResult:
        settings = ClientSettings(base_url=server.base_url, api_key=KEY, max_retries=0)
        async with AssistantsClient(settings) as client:
            if calls is not None:
                for name in ("list_runs", "get_run"):
                    setattr(client, name, _recording(getattr(client, name), name, calls))
            return await execute(client, parse(sql))

    return asyncio.run(go())


def _recording(method: Callable[..., Any], name: str, calls: Calls) -> Callable[..., Any]:
    async def wrapper(*args: str) -> Any:
        calls.made.append((name, args))
        calls.in_flight += 1
        calls.most = max(calls.most, calls.in_flight)
        try:
            return await method(*args)
        finally:
            calls.in_flight -= 1

    return wrapper


def dicts(result: QueryResult) -> list[dict[str, Any]]:
    return [dict(zip(result.columns, row, strict=True)) for row in result.rows]


def seed(api: Api) -> None:
    """Runs of every kind on three threads: completed, failed, incomplete, requires_action,
    cancelled; several models, temperatures and metadata."""
    bodies_a: list[dict[str, Any]] = [
        {"model": "gpt-4o", "temperature": 0.2, "metadata": {"team": "a", "tier": "1"}},
        {"model": "gpt-4o-mini", "temperature": 0.9, "metadata": {"team": "b"}},
        {"model": "gpt-4o", "additional_instructions": "[emulator:fail]",
         "metadata": {"team": "a"}},
        {"model": "o3-mini", "additional_instructions": "[emulator:incomplete]",
         "max_completion_tokens": 300},
        {"model": "GPT-4O", "parallel_tool_calls": False, "top_p": 0.5,
         "metadata": {"team": "c"}},
        {"model": "gpt-4o-mini", "temperature": 0.2, "metadata": {"team": "b"}},
    ]
    for body in bodies_a:
        api.create(THREAD_A, {"assistant_id": "asst_demo", **body})
    api.create(THREAD_B, {"assistant_id": "asst_demo", "metadata": {"team": "a"}})
    api.create(THREAD_B, {"assistant_id": "asst_demo", "model": "o3-mini"})
    api.create(THREAD_B, {"assistant_id": "asst_demo", "tools": FUNCTION})
    waiting = api.create(THREAD_C, {"assistant_id": "asst_demo", "tools": FUNCTION})
    api.cancel(THREAD_C, waiting["id"])
    api.create(THREAD_C, {"assistant_id": "asst_demo", "metadata": {"team": "c"}})


@dataclass
class Seeded:
    server: BackgroundServer
    api: Api

    def raw(self, *threads: str) -> list[Run]:
        return [run for thread in threads for run in self.api.runs(thread)]

    def ids(self, where: str, keep: Callable[[Run], bool], *threads: str) -> None:
        """The ids ``WHERE thread_id IN (threads) AND (where)`` selects are the raw runs
        ``keep`` selects."""
        listed = ", ".join(f"'{t}'" for t in threads or (THREAD_A,))
        result = run_sql(self.server, f"SELECT id FROM openai.assistants.runs WHERE "
                                      f"thread_id IN ({listed}) AND ({where}) ORDER BY id")
        expected = sorted(r["id"] for r in self.raw(*(threads or (THREAD_A,))) if keep(r))
        assert [row[0] for row in result.rows] == expected, where
        assert expected, f"{where}: the seed should select something"


@pytest.fixture(scope="module")
def seeded() -> Iterator[Seeded]:
    with start_server() as server:
        headers = {"Authorization": f"Bearer {KEY}", "OpenAI-Beta": "assistants=v2"}
        with httpx.Client(base_url=server.base_url + "/", headers=headers, timeout=30) as http:
            api = Api(http)
            seed(api)
            yield Seeded(server, api)


def test_select_star_is_the_raw_api_run_for_run(seeded: Seeded) -> None:
    result = run_sql(seeded.server, f"SELECT * FROM openai.assistants.runs "
                                    f"WHERE thread_id = '{THREAD_A}'")
    raw = {run["id"]: run for run in seeded.raw(THREAD_A)}
    got = {row["id"]: row for row in dicts(result)}
    assert len(result.rows) == len(raw) == 6 and set(got) == set(raw)
    assert set(result.columns) <= set(next(iter(raw.values())))
    for run_id, run in raw.items():
        for name in result.columns:
            value = got[run_id][name]
            expected = run[name]
            if isinstance(expected, dict | list):
                assert json.loads(value) == expected, name
            else:
                assert (value == expected and type(value) is type(expected)) or (
                    isinstance(expected, float) and value == expected), name


def test_columns_and_aliases(seeded: Seeded) -> None:
    result = run_sql(seeded.server, f"SELECT id AS run, r.status, model m FROM "
                                    f"openai.assistants.runs AS r WHERE r.thread_id = "
                                    f"'{THREAD_B}' ORDER BY run")
    assert result.columns == ("run", "status", "m")
    assert list(result.rows) == sorted((r["id"], r["status"], r["model"])
                                       for r in seeded.raw(THREAD_B))


def test_where_and_or_not_parentheses_in_like_comparisons_null(seeded: Seeded) -> None:
    def temperature(run: Run) -> float:
        return float(run["temperature"]) if run["temperature"] is not None else float("nan")

    seeded.ids("status = 'failed' OR status = 'incomplete'",
               lambda r: r["status"] in ("failed", "incomplete"))
    seeded.ids("NOT status = 'completed'", lambda r: r["status"] != "completed")
    seeded.ids("status IN ('completed', 'failed') AND NOT (model LIKE 'gpt-4o-mini')",
               lambda r: r["status"] in ("completed", "failed") and r["model"] != "gpt-4o-mini")
    seeded.ids("status NOT IN ('completed')", lambda r: r["status"] != "completed")
    seeded.ids("model LIKE 'GPT-4O%'", lambda r: r["model"].lower().startswith("gpt-4o"))
    seeded.ids("model = 'gpt-4o' AND (temperature < 0.5 OR status <> 'completed')",
               lambda r: r["model"] == "gpt-4o" and (temperature(r) < 0.5
                                                     or r["status"] != "completed"))
    seeded.ids("temperature >= 0.9 AND top_p != 0.5",
               lambda r: temperature(r) >= 0.9 and r["top_p"] != 0.5)
    seeded.ids("last_error IS NOT NULL", lambda r: r["last_error"] is not None)
    seeded.ids("incomplete_details IS NULL AND usage IS NOT NULL",
               lambda r: r["incomplete_details"] is None and r["usage"] is not None)
    seeded.ids("parallel_tool_calls = false", lambda r: r["parallel_tool_calls"] is False)
    seeded.ids("json_extract(metadata, '$.team') = 'b'", lambda r: r["metadata"].get("team")
               == "b")
    seeded.ids("json_extract(usage, '$.total_tokens') > 100",
               lambda r: r["usage"] is not None and r["usage"]["total_tokens"] > 100)
    seeded.ids("required_action IS NOT NULL OR status = 'cancelled'",
               lambda r: r["required_action"] is not None or r["status"] == "cancelled",
               THREAD_B, THREAD_C)


def test_distinct_count_aggregates_group_by_having(seeded: Seeded) -> None:
    raw = seeded.raw(THREAD_A, THREAD_B)
    threads = f"thread_id IN ('{THREAD_A}', '{THREAD_B}')"
    distinct = run_sql(seeded.server, f"SELECT DISTINCT model FROM openai.assistants.runs "
                                      f"WHERE {threads} ORDER BY model")
    assert [row[0] for row in distinct.rows] == sorted({r["model"] for r in raw})
    count = run_sql(seeded.server, f"SELECT COUNT(*) AS n FROM runs WHERE {threads}")
    assert count.rows == ((len(raw),),)
    grouped = run_sql(seeded.server, f"""
        SELECT status, COUNT(*) AS n, SUM(json_extract(usage, '$.total_tokens')) AS tokens,
               MAX(temperature) AS hottest, MIN(created_at) AS first
        FROM openai.assistants.runs WHERE {threads}
        GROUP BY status HAVING COUNT(*) >= 1 ORDER BY n DESC, status""")
    counts = Counter(r["status"] for r in raw)

    def tokens(status: str) -> int | None:
        used = [r["usage"]["total_tokens"] for r in raw if r["status"] == status and r["usage"]]
        return sum(used) if used else None

    expected = sorted(
        ((s, n, tokens(s), max(r["temperature"] for r in raw if r["status"] == s),
          min(r["created_at"] for r in raw if r["status"] == s)) for s, n in counts.items()),
        key=lambda row: (-row[1], row[0]))
    assert list(grouped.rows) == expected
    having = run_sql(seeded.server, f"SELECT status FROM runs WHERE {threads} "
                                    "GROUP BY status HAVING COUNT(*) > 1 ORDER BY status")
    assert [row[0] for row in having.rows] == sorted(s for s, n in counts.items() if n > 1)


def test_order_by_several_keys_limit_offset(seeded: Seeded) -> None:
    result = run_sql(seeded.server, f"SELECT id, model, temperature FROM runs WHERE "
                                    f"thread_id = '{THREAD_A}' ORDER BY model DESC, "
                                    "temperature ASC, id LIMIT 3 OFFSET 1")
    raw = sorted(seeded.raw(THREAD_A), key=lambda r: r["id"])
    raw.sort(key=lambda r: r["temperature"])
    raw.sort(key=lambda r: r["model"], reverse=True)
    assert list(result.rows) == [(r["id"], r["model"], r["temperature"]) for r in raw[1:4]]


def test_json_extract_in_the_select_list(seeded: Seeded) -> None:
    result = run_sql(seeded.server, f"""
        SELECT id, json_extract(metadata, '$.team') AS team,
               json_extract(usage, '$.total_tokens') AS tokens,
               json_extract(required_action, '$.submit_tool_outputs.tool_calls[0].id') AS call,
               json_extract(truncation_strategy, '$.type')
        FROM openai.assistants.runs WHERE thread_id IN ('{THREAD_A}', '{THREAD_B}')
        ORDER BY id""")
    assert result.columns[-1] == "JSON_EXTRACT(truncation_strategy, '$.type')"
    expected = sorted(
        (r["id"], r["metadata"].get("team"), (r["usage"] or {}).get("total_tokens"),
         (r["required_action"] or {}).get("submit_tool_outputs", {}).get("tool_calls",
                                                                         [{}])[0].get("id"),
         r["truncation_strategy"]["type"]) for r in seeded.raw(THREAD_A, THREAD_B))
    assert list(result.rows) == expected
    assert any(row[3] is not None for row in result.rows)  # the run waiting for tool outputs


def test_thread_id_shapes_and_in_fetch_the_threads_concurrently(seeded: Seeded) -> None:
    threads = (THREAD_A, THREAD_B, THREAD_C)
    for where in (f"thread_id IN ('{THREAD_A}', '{THREAD_B}', '{THREAD_C}')",
                  f"thread_id = '{THREAD_A}' OR (thread_id = '{THREAD_B}' OR thread_id = "
                  f"'{THREAD_C}')"):
        calls = Calls()
        result = run_sql(seeded.server, f"SELECT id, thread_id FROM runs WHERE {where} "
                                        "ORDER BY id", calls)
        assert list(result.rows) == sorted((r["id"], r["thread_id"])
                                           for r in seeded.raw(*threads))
        assert sorted(calls.made) == [("list_runs", (t,)) for t in sorted(threads)]


def test_in_lists_threads_at_once_even_when_each_answer_is_slow() -> None:
    with start_server(latency=parse_latency("150ms")) as server:
        headers = {"Authorization": f"Bearer {KEY}", "OpenAI-Beta": "assistants=v2"}
        with httpx.Client(base_url=server.base_url + "/", headers=headers, timeout=30) as http:
            api = Api(http)
            for thread in (THREAD_A, THREAD_B, THREAD_C):
                api.create(thread, {"assistant_id": "asst_demo"})
            calls = Calls()
            result = run_sql(server, f"SELECT COUNT(*) FROM runs WHERE thread_id IN "
                                     f"('{THREAD_A}', '{THREAD_B}', '{THREAD_C}')", calls)
    assert result.rows == ((3,),)
    assert calls.most == 3  # the three list_runs were in flight together


def test_run_id_is_get_run(seeded: Seeded) -> None:
    raw = seeded.raw(THREAD_A)
    first, second = raw[0], raw[1]
    calls = Calls()
    one = run_sql(seeded.server, f"SELECT id, status, metadata FROM runs WHERE thread_id = "
                                 f"'{THREAD_A}' AND run_id = '{first['id']}'", calls)
    assert calls.made == [("get_run", (THREAD_A, first["id"]))]
    direct = seeded.api.http.get(f"threads/{THREAD_A}/runs/{first['id']}").json()
    assert one.rows[0][:2] == (direct["id"], direct["status"])
    assert json.loads(one.rows[0][2]) == direct["metadata"]
    calls = Calls()
    two = run_sql(seeded.server, f"SELECT id FROM runs WHERE run_id IN ('{first['id']}', "
                                 f"'{second['id']}') AND thread_id = '{THREAD_A}' ORDER BY id",
                  calls)
    assert [name for name, _ in calls.made] == ["get_run", "get_run"]
    assert [row[0] for row in two.rows] == sorted([first["id"], second["id"]])
    calls = Calls()
    across = run_sql(seeded.server, f"SELECT id FROM runs WHERE thread_id IN ('{THREAD_A}', "
                                    f"'{THREAD_B}') AND run_id = '{first['id']}'", calls)
    assert across.rows == ((first["id"],),)
    assert sorted(calls.made) == [("list_runs", (THREAD_A,)), ("list_runs", (THREAD_B,))]
