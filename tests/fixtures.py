"""Builders shared by the test folders: plain values for the core, a client on MockTransport.

Tests import them from here, never from each other's test files.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import httpx

from reconciler import identity
from reconciler.changes import Change, Modify
from reconciler.client import AssistantsClient, ClientSettings
from reconciler.model import (
    JSON,
    DesiredRun,
    DesiredState,
    LiveRun,
    LiveState,
    SourceLocation,
    ThreadState,
    ToolCall,
)
from reconciler.planning import Plan, PlanOptions, plan

# --- the pure core: desired and live runs, plans ---


PROJECT = "analytics"


SPEC: dict[str, JSON] = {"assistant_id": "asst_1", "instructions": "Summarise the KPIs."}


def desired(
    name: str = "report", thread: str = "thread_a", spec: Mapping[str, JSON] | None = None,
    **kwargs: object,
) -> DesiredRun:
    return DesiredRun(thread, name, dict(SPEC if spec is None else spec), **kwargs)  # type: ignore[arg-type]


def managed(
    run: DesiredRun, run_id: str, status: str = "completed", *, created_at: int = 100,
    spec: Mapping[str, JSON] | None = None, revision: int | None = None,
    user: Mapping[str, str] | None = None, recorded_user: Mapping[str, str] | None = None,
    fields: Mapping[str, JSON] | None = None, calls: Sequence[ToolCall] = (),
    project: str = PROJECT,
) -> LiveRun:
    """A live run as reconciler would have created it from ``spec``/``revision``/metadata.

    ``user`` is the metadata on the run now; ``recorded_user`` what the last apply recorded
    (differing from ``user`` simulates an edit outside reconciler).
    """
    spec = run.spec if spec is None else spec
    revision = run.revision if revision is None else revision
    recorded = dict(run.metadata if recorded_user is None else recorded_user)
    now = recorded if user is None else dict(user)
    reserved = identity.reserved_metadata(
        project=project, name=run.name, spec=spec, revision=revision, user_metadata=recorded
    )
    return LiveRun(
        run_id, run.thread_id, status, created_at, {**now, **reserved}, dict(fields or {}),
        tuple(calls),
    )


def unmanaged(run_id: str, status: str, thread: str = "thread_a") -> LiveRun:
    return LiveRun(run_id, thread, status, 50, {"owner": "someone"})


def state(*runs: LiveRun, threads: Sequence[str] = ()) -> LiveState:
    by_thread: dict[str, list[LiveRun]] = {t: [] for t in threads}
    for run in runs:
        by_thread.setdefault(run.thread_id, []).append(run)
    return LiveState({t: ThreadState(t, tuple(r)) for t, r in by_thread.items()})


def make(
    runs: Sequence[DesiredRun], live: LiveState, *, prune: bool = False,
    targets: frozenset[str] = frozenset(),
) -> Plan:
    return plan(runs, live, PlanOptions(PROJECT, prune=prune, targets=targets))


def only(result: Plan) -> Change:
    assert len(result.changes) == 1, result.changes
    return result.changes[0]


def full_metadata(run: DesiredRun, generation: int = 1) -> dict[str, str]:
    return {
        **run.metadata,
        **identity.reserved_metadata(
            project=PROJECT, name=run.name, spec=run.spec, revision=run.revision,
            user_metadata=run.metadata, generation=generation,
        ),
    }



# --- a plan with one of each action (renderers, plan files) ---


OLD_INSTRUCTIONS = "\n".join(
    ["You are a careful analyst.", "Summarise last week's KPIs.", "Use a table.",
     "Mention the trend.", "Be brief.", "Cite the sources.", "Sign off as the KPI bot."]
)


NEW_INSTRUCTIONS = OLD_INSTRUCTIONS.replace("Use a table.", "Use a table with totals.")


TOOLS_OLD = [{"type": "function", "function": {
    "name": "lookup_ticket",
    "parameters": {"type": "object", "properties": {"id": {"type": "string"}}},
}}]


TOOLS_NEW = [{"type": "function", "function": {
    "name": "lookup_ticket", "description": "Find a ticket by id",
    "parameters": {"type": "object", "properties": {"id": {"type": "integer"}}},
}}]


def busy_plan(*, prune: bool = False) -> Plan:
    """One of each action, a warning, drift and an unchanged run, on two threads."""
    create = desired("fresh", location=SourceLocation("runs.yaml", 12, 5))
    modify = desired("meta", metadata={"team": "b"})
    replace = desired("report", spec={**SPEC, "instructions": NEW_INSTRUCTIONS})
    tools = desired("triage", spec={**SPEC, "tools": TOOLS_NEW}, thread="thread_b")
    cancel = desired("stop", state=DesiredState.CANCELLED, thread="thread_b")
    answer = desired("answer", tool_outputs={"lookup": '{"status": "open", "id": 7}'},
                     thread="thread_c")
    unchanged = desired("same", thread="thread_c")
    live = state(
        managed(modify, "run_meta", user={"team": "z"}, recorded_user={"team": "a"}),
        managed(replace, "run_abc", "in_progress", spec=SPEC,
                fields={**SPEC, "instructions": OLD_INSTRUCTIONS}),
        managed(tools, "run_tools", spec={**SPEC, "tools": TOOLS_OLD},
                fields={**SPEC, "tools": TOOLS_OLD}),
        managed(cancel, "run_stop", "queued"),
        managed(desired("gone", thread="thread_b"), "run_gone", "in_progress"),
        managed(answer, "run_answer", "requires_action",
                calls=[ToolCall("call_1", "lookup", '{"id": 7}')]),
        managed(unchanged, "run_same"),
    )
    return make([create, modify, replace, tools, cancel, answer, unchanged], live, prune=prune)



# --- the HTTP client on httpx.MockTransport ---


KEY = "sk-test-secret-0123456789abcdef"


async def _no_sleep(_: float) -> None:
    return None


def make_client(
    handler: Callable[[httpx.Request], httpx.Response], **settings: object
) -> AssistantsClient:
    base = {"base_url": "https://api.example.test/v1", "api_key": KEY, "max_retries": 3}
    base.update(settings)
    return AssistantsClient(
        ClientSettings(**base),  # type: ignore[arg-type]
        transport=httpx.MockTransport(handler),
        sleep=_no_sleep,
    )


def error(status: int, message: str, **headers: str) -> httpx.Response:
    body = {"error": {"message": message, "type": "invalid_request_error", "param": None,
                      "code": None}}
    return httpx.Response(status, json=body, headers={"x-request-id": "req_123", **headers})



def sent_metadata(change: Change) -> Mapping[str, str]:
    """The metadata a modify change (such as an adoption) sends."""
    assert isinstance(change.payload, Modify), change
    return change.payload.metadata


# --- Markdown comments, checked by a real parser ---


def markdown_structure_problems(text: str) -> list[str]:
    """Why a comment could not be posted on its own, parsed by markdown-it (CommonMark): a
    fence left open, ``<details>`` unbalanced or not parsed as an HTML block (so GitHub would
    not fold it), or Markdown swallowed into an HTML block. Empty when the comment is sound."""
    import re

    from markdown_it import MarkdownIt

    problems: list[str] = []
    lines = text.splitlines()
    depth = 0
    for token in MarkdownIt("commonmark").parse(text):
        if token.type == "fence" and token.map is not None:
            last = lines[token.map[1] - 1].strip() if token.map[1] - token.map[0] >= 2 else ""
            closed = len(last) >= len(token.markup) and set(last) == {token.markup[0]}
            if not closed:
                problems.append(f"the fence opened on line {token.map[0] + 1} is never closed")
        elif token.type == "html_block":
            if "```" in token.content or "\n\n" in token.content.strip():
                problems.append(f"Markdown inside an HTML block: {token.content[:60]!r}")
            for tag in re.findall(r"</?details\b", token.content):
                depth += 1 if tag == "<details" else -1
                if depth < 0:
                    problems.append("a </details> closes nothing")
                    depth = 0
        elif token.type == "inline" and "<details" in token.content:
            problems.append(f"<details> inside a paragraph: {token.content[:60]!r}")
    if depth:
        problems.append(f"{depth} <details> left open")
    return problems


# --- StackQL's page of openai.assistants.runs, the authority on query's catalog ---

#: A copy of the StackQL provider page the resource is documented by (the project's seed
#: ``shared/seeds/000_57de1dabfe741c67.txt``, byte for byte); the query tests read their
#: expected DESCRIBE and SHOW METHODS answers from its tables, not from reconciler's code.
STACKQL_PAGE = Path(__file__).parent / "data" / "stackql-openai-assistants-runs.md"


def stackql_page_tables() -> tuple[list[tuple[str, str, str]], list[tuple[str, str, str]]]:
    """The page's Fields rows (name, datatype, description) and Methods rows (name, SQL verb,
    required params), descriptions with ``<br />`` as newlines and HTML entities decoded."""
    text = STACKQL_PAGE.read_text("utf-8")
    fields_part, methods_part = text.split("## Methods")
    cell = r'<CopyableCode code="([^"]+)" />'
    fields = [(name, kind, html.unescape(words.replace("<br />", "\n")).strip())
              for name, kind, words in re.findall(
                  rf"^\| {cell} \| `([^`]*)` \| (.*) \|$", fields_part, re.MULTILINE)]
    methods = re.findall(rf"^\| {cell} \| `([A-Z]+)` \| {cell} \|$", methods_part,
                         re.MULTILINE)
    return fields, [(m[0], m[1], m[2]) for m in methods]
