"""Manifests → desired runs: merging, normalising, YAML details, hostile input, the examples."""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

import jsonschema
import pytest
import yaml

from reconciler.identity import canonical_json
from reconciler.manifest import (
    MAX_ALIAS_NODES,
    MAX_DEPTH,
    Problem,
    load_manifests,
    parse_documents,
    read_sources,
)
from reconciler.model import RUN_FIELDS, DesiredRun, DesiredState, SourceLocation
from reconciler.schemas import load_schema

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "manifests"


def load(text: str, file: str = "m.yaml") -> tuple[list[DesiredRun], list[Problem]]:
    result = load_manifests([(file, textwrap.dedent(text))])
    return list(result.runs), list(result.problems)


def test_defaults_merge_into_every_run_and_a_run_value_wins() -> None:
    runs, problems = load(
        """\
        apiVersion: reconciler/v1
        kind: Runs
        defaults:
          thread_id: thread_a
          assistant_id: asst_a
          model: gpt-4o
          metadata: {team: analytics, owner: ana}
          tool_outputs: {lookup: default-answer}
        runs:
          - name: first
            model: gpt-4.1
            metadata: {owner: bob, cadence: weekly}
          - name: second
            thread_id: thread_b
            metadata: {owner: null}
            tool_outputs: {lookup: [1, 2], other: {b: 1, a: 2}}
          - name: third
            model: null
            metadata: null
            tool_outputs: null
        """
    )
    assert problems == []
    first, second, third = runs
    assert (first.thread_id, first.name) == ("thread_a", "first")
    assert first.spec == {"assistant_id": "asst_a", "model": "gpt-4.1"}
    assert first.metadata == {"team": "analytics", "owner": "bob", "cadence": "weekly"}
    assert first.tool_outputs == {"lookup": "default-answer"}
    assert second.thread_id == "thread_b"
    assert second.metadata == {"team": "analytics"}
    assert second.tool_outputs == {
        "lookup": canonical_json([1, 2]),
        "other": canonical_json({"a": 2, "b": 1}),
    }
    assert third.spec == {"assistant_id": "asst_a"}
    assert third.metadata == {}
    assert third.tool_outputs == {}


def test_spec_holds_every_run_field_but_metadata_and_nothing_else() -> None:
    values = {
        "assistant_id": "asst_a",
        "model": "gpt-4o",
        "reasoning_effort": "low",
        "instructions": "Be brief.",
        "additional_instructions": "Really.",
        "additional_messages": [{"role": "user", "content": "hi"}],
        "tools": [{"type": "code_interpreter"}],
        "metadata": {"k": "v"},
        "temperature": 0.5,
        "top_p": 0.5,
        "max_prompt_tokens": 1000,
        "max_completion_tokens": 500,
        "truncation_strategy": {"type": "last_messages", "last_messages": 3},
        "tool_choice": {"type": "code_interpreter"},
        "parallel_tool_calls": False,
        "response_format": {"type": "json_object"},
    }
    assert set(values) == set(RUN_FIELDS)
    document = {
        "apiVersion": "reconciler/v1",
        "kind": "Runs",
        "runs": [{"name": "all", "thread_id": "t", "state": "cancelled", "revision": 3, **values}],
    }
    runs, problems = load(json.dumps(document))  # JSON is YAML
    assert problems == []
    (run,) = runs
    assert dict(run.spec) == {k: v for k, v in values.items() if k != "metadata"}
    assert run.metadata == {"k": "v"}
    assert run.state is DesiredState.CANCELLED
    assert run.revision == 3


def test_state_and_revision_default_and_location_is_the_run_mapping() -> None:
    runs, _ = load(
        """\
        apiVersion: reconciler/v1
        kind: Runs
        runs:
          - name: r
            thread_id: t
            assistant_id: a
        """,
        file="dir/m.yaml",
    )
    (run,) = runs
    assert run.state is DesiredState.ACTIVE
    assert run.revision == 0
    assert run.location == SourceLocation("dir/m.yaml", 4, 5)


def test_numbers_are_normalised_so_equal_values_hash_equal() -> None:
    runs, problems = load(
        """\
        apiVersion: reconciler/v1
        kind: Runs
        defaults: {thread_id: t, assistant_id: a}
        runs:
          - {name: a, temperature: 1, max_completion_tokens: 512.0}
        """
    )
    assert problems == []
    assert runs[0].spec["temperature"] == 1.0 and isinstance(runs[0].spec["temperature"], float)
    assert isinstance(runs[0].spec["max_completion_tokens"], int)


def test_each_document_has_its_own_defaults() -> None:
    runs, problems = load(
        """\
        apiVersion: reconciler/v1
        kind: Runs
        defaults: {thread_id: t1, assistant_id: a1}
        runs: [{name: one}]
        ---
        # a comment-only document in the middle is fine
        ---
        apiVersion: reconciler/v1
        kind: Runs
        runs: [{name: two}]
        """
    )
    assert [r.name for r in runs] == ["one"]
    assert len(problems) == 2  # the second document has no defaults: no thread, no assistant
    assert all(p.location.line == 10 for p in problems)


def test_yaml_1_2_scalars_keep_yes_no_on_and_dates_as_text() -> None:
    runs, problems = load(
        """\
        apiVersion: reconciler/v1
        kind: Runs
        runs:
          - name: r
            thread_id: t
            assistant_id: a
            metadata: {enabled: yes, on: off, norway: NO, date: 2024-01-01, nan: .nan}
        """
    )
    assert problems == []
    assert runs[0].metadata == {
        "enabled": "yes",
        "on": "off",
        "norway": "NO",
        "date": "2024-01-01",
        "nan": ".nan",
    }


def test_anchors_aliases_and_merge_keys() -> None:
    runs, problems = load(
        """\
        apiVersion: reconciler/v1
        kind: Runs
        defaults: {thread_id: t, assistant_id: a}
        runs:
          - &base
            name: a
            tools: &tools [{type: function, function: {name: f}}]
            tool_outputs: {f: ok}
          - <<: *base
            name: b
          - name: c
            tools: *tools
        """
    )
    assert problems == []
    assert [r.name for r in runs] == ["a", "b", "c"]
    assert runs[0].spec["tools"] == runs[1].spec["tools"] == runs[2].spec["tools"]
    assert runs[1].tool_outputs == {"f": "ok"}


def test_duplicate_keys_are_errors_at_the_second_key() -> None:
    _, problems = load(
        """\
        apiVersion: reconciler/v1
        kind: Runs
        runs:
          - name: r
            thread_id: t
            assistant_id: a
            thread_id: u
        """
    )
    (problem,) = problems
    assert problem.location == SourceLocation("m.yaml", 7, 5)
    assert "duplicate key 'thread_id'" in problem.message
    assert "line 5" in problem.message


def test_syntax_error_reports_the_parser_mark_and_keeps_earlier_documents() -> None:
    good = (
        "apiVersion: reconciler/v1\nkind: Runs\n"
        "runs: [{name: r, thread_id: t, assistant_id: a}]\n"
    )
    runs, problems = load(good + "---\nruns: [1, 2\n")
    (problem,) = problems
    assert problem.location == SourceLocation("m.yaml", 6, 1)
    assert problem.message.startswith("YAML syntax error:")
    assert "line 5" in problem.message
    assert [r.name for r in runs] == ["r"]


def test_unsupported_tags_and_complex_keys() -> None:
    _, problems = load("a: !!binary aGk=\n? [1]\n: x\n")
    assert [p.location for p in problems] == [
        SourceLocation("m.yaml", 1, 4),
        SourceLocation("m.yaml", 2, 3),
    ]
    assert "!!binary" in problems[0].message
    assert "keys" in problems[1].message


def test_an_alias_to_nothing_is_located() -> None:
    _, problems = load("a: *nowhere\n")
    (problem,) = problems
    assert problem.location == SourceLocation("m.yaml", 1, 4)
    assert "*nowhere" in problem.message


def test_empty_and_comment_only_files_are_refused_by_name() -> None:
    """kubectl's "no objects passed to apply": an emptied file must not plan as nothing."""
    for text in ("", "\n\n", "# nothing here\n", "---\n", "---\n...\n"):
        runs, problems = load(text)
        assert runs == []
        assert [(p.location, "holds no manifest" in p.message) for p in problems] == [
            (SourceLocation("m.yaml", 1, 1), True)
        ]


def test_yaml_bomb_is_refused_quickly_at_the_alias() -> None:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for level in range(1, 10):
        refs = ", ".join([f"*a{level - 1}"] * 9)
        lines.append(f"a{level}: &a{level} [{refs}]")
    bomb = "\n".join(lines) + "\n"
    documents, problems = parse_documents("bomb.yaml", bomb)
    assert documents == []
    (problem,) = problems
    assert f"{MAX_ALIAS_NODES:,}" in problem.message
    assert problem.location.file == "bomb.yaml"
    assert bomb.splitlines()[problem.location.line - 1][problem.location.column - 1] == "*"


def test_deep_nesting_is_refused() -> None:
    text = "[" * (MAX_DEPTH + 50) + "]" * (MAX_DEPTH + 50)
    documents, problems = parse_documents("deep.yaml", text)
    assert documents == []
    (problem,) = problems
    assert problem.location == SourceLocation("deep.yaml", 1, MAX_DEPTH + 1)
    assert "nesting" in problem.message


def test_control_characters_are_refused_with_their_position() -> None:
    documents, problems = parse_documents("bin.yaml", "a: b\nc: \x00\x01\x02")
    assert documents == []
    (problem,) = problems
    assert problem.location == SourceLocation("bin.yaml", 2, 4)
    assert "U+0000" in problem.message


def test_a_large_document_without_aliases_is_not_mistaken_for_a_bomb() -> None:
    count = MAX_ALIAS_NODES + 20_000
    text = "base: &b [x]\nitems: [" + ", ".join(map(str, range(count))) + "]\nagain: *b\n"
    documents, problems = parse_documents("big.yaml", text)
    assert problems == []
    (document,) = documents
    assert len(document.value["items"]) == count
    assert document.value["again"] == ["x"]


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.y*ml")), ids=lambda p: p.name)
def test_every_example_manifest_loads_without_problems(path: Path) -> None:
    sources, problems = read_sources([str(path)])
    assert problems == []
    result = load_manifests(sources)
    assert result.problems == ()
    assert result.runs
    for document in yaml.safe_load_all(path.read_text("utf-8")):
        jsonschema.validate(document, load_schema("manifest"))


def test_examples_show_off_the_format() -> None:
    sources, problems = read_sources([str(EXAMPLES)])
    assert problems == [] and len(sources) >= 2
    runs = load_manifests(sources).runs
    threads = [r.thread_id for r in runs]
    assert len(threads) == len(set(threads)), "at most one run per thread"
    assert set(threads) <= {"thread_demo_reports", "thread_demo_triage", "thread_demo_research"}
    assert all(r.spec["assistant_id"] == "asst_demo" for r in runs)
    assert any(r.tool_outputs for r in runs)
    assert any("additional_messages" in r.spec for r in runs)
    assert any(str(r.spec.get("instructions", "")).count("\n") >= 3 for r in runs)
    assert all(r.metadata for r in runs)


def test_the_schema_is_a_valid_2020_12_schema() -> None:
    schema = load_schema("manifest")
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    run_keys = set(schema["$defs"]["Run"]["properties"])
    assert set(RUN_FIELDS) <= run_keys
    assert "stream" not in run_keys
    assert run_keys - set(RUN_FIELDS) == {"name", "thread_id", "state", "tool_outputs", "revision"}


def test_the_documented_examples_load_without_problems() -> None:
    text = (REPO / "docs" / "manifests.md").read_text("utf-8")
    blocks = re.findall(r"```yaml\n(.*?)```", text, flags=re.DOTALL)
    complete = [b for b in blocks if b.lstrip("# \n").find("apiVersion:") >= 0]
    assert complete, "the format page shows at least one complete manifest"
    for block in complete:
        result = load_manifests([("docs.yaml", block)])
        assert result.problems == ()
        assert result.runs
