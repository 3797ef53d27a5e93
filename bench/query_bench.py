"""CPU cost of ``reconciler query`` beyond fetching: one thread of 10,000 runs.

Target (issue 11): a SELECT over 10,000 runs well under a second of CPU once the runs are
fetched. Measures, per statement, compiling it (sqlglot parse, checks, SQLite's check on an
empty table) and running it (loading the runs into SQLite, the query, the rows back), on runs
shaped as the API returns them (every field, four reserved metadata keys, tools, usage).
Prints the figures; asserts nothing. Run: ``python bench/query_bench.py [--runs N]``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

from reconciler.query import Select, parse, render_result
from reconciler.query.engine import run_select

THREAD = "thread_bench"
STATUSES = ("completed", "failed", "incomplete", "cancelled", "expired")

QUERIES = (
    f"SELECT * FROM openai.assistants.runs WHERE thread_id = '{THREAD}'",
    f"SELECT id, status, json_extract(metadata, '$.team') AS team FROM openai.assistants.runs "
    f"WHERE thread_id = '{THREAD}' AND (status = 'failed' OR status = 'incomplete') "
    "ORDER BY created_at DESC, id LIMIT 50",
    f"SELECT status, COUNT(*) AS n, SUM(json_extract(usage, '$.total_tokens')) AS tokens "
    f"FROM openai.assistants.runs WHERE thread_id = '{THREAD}' GROUP BY status "
    "HAVING COUNT(*) > 1 ORDER BY n DESC",
    f"SELECT DISTINCT model FROM openai.assistants.runs WHERE thread_id = '{THREAD}' "
    "AND json_extract(metadata, '$.team') LIKE 'team-1%'",
)


def api_run(i: int) -> dict[str, Any]:
    """One run as ``GET /threads/{id}/runs`` lists it (the spec's RunObject, all fields)."""
    return {
        "id": f"run_{i:07d}", "object": "thread.run", "created_at": 1_767_225_600 + i,
        "assistant_id": "asst_bench", "thread_id": THREAD, "status": STATUSES[i % 5],
        "started_at": 1_767_225_601 + i, "expires_at": None, "cancelled_at": None,
        "failed_at": None, "completed_at": 1_767_225_602 + i, "required_action": None,
        "last_error": None, "model": ("gpt-4o", "gpt-4o-mini", "o3")[i % 3],
        "instructions": f"Summarise report number {i}.",
        "tools": [{"type": "function", "function": {"name": "lookup_ticket",
                                                    "parameters": {"type": "object"}}}],
        "metadata": {"team": f"team-{i % 20}", "cadence": "weekly",
                     "reconciler.project": "bench", "reconciler.name": f"run-{i}",
                     "reconciler.spec": f"v2;{i:064x};r=0;g=1;a=att_{i};as=abcd,in=ef01",
                     "reconciler.meta": f"{i:032x}"},
        "incomplete_details": None, "temperature": 1.0, "top_p": 1.0,
        "max_prompt_tokens": None, "max_completion_tokens": 2048,
        "truncation_strategy": {"type": "auto", "last_messages": None},
        "usage": {"prompt_tokens": 100 + i % 7, "completion_tokens": 20,
                  "total_tokens": 120 + i % 7},
        "response_format": "auto", "tool_choice": "auto", "parallel_tool_calls": True,
    }


def measure(sql: str, runs: list[dict[str, Any]], repeat: int) -> tuple[list[float], int]:
    """Median CPU seconds to compile ``sql``, run it over ``runs`` and render the result as
    a table; and the number of rows."""
    times: list[list[float]] = [[], [], []]
    rows = 0
    for _ in range(repeat):
        start = time.process_time()
        statement = parse(sql)
        compiled = time.process_time()
        assert isinstance(statement, Select)
        result = run_select(statement, runs)
        ran = time.process_time()
        render_result(result, "table")
        for figures, value in zip(times, (compiled - start, ran - compiled,
                                          time.process_time() - ran), strict=True):
            figures.append(value)
        rows = len(result.rows)
    return [statistics.median(figures) for figures in times], rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    runs = [api_run(i) for i in range(args.runs)]
    print(f"{args.runs:,} runs on one thread, median of {args.repeat}, CPU seconds")
    for sql in QUERIES:
        (compile_s, run_s, render_s), rows = measure(sql, runs, args.repeat)
        print(f"  compile {compile_s:.3f}  run {run_s:.3f}  render {render_s:.3f}  total "
              f"{compile_s + run_s + render_s:.3f}  ({rows:,} rows)  {sql[:60]}…")


if __name__ == "__main__":
    main()
