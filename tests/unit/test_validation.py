"""Every kind of manifest error is reported at its file, line and column.

Expected positions are computed from the input text itself (``at``), never copied from output.
"""

from __future__ import annotations

import textwrap

import pytest

from reconciler.identity import USER_METADATA_MAX_PAIRS
from reconciler.manifest import Problem, format_path, load_manifests
from reconciler.model import SourceLocation

FILE = "runs.yaml"

HEADER = """\
apiVersion: reconciler/v1
kind: Runs
"""


def doc(body: str) -> str:
    return HEADER + textwrap.dedent(body)


def problems_of(text: str, file: str = FILE) -> list[Problem]:
    return list(load_manifests([(file, text)]).problems)


def at(text: str, needle: str, nth: int = 1, file: str = FILE) -> SourceLocation:
    """Where the nth occurrence of ``needle`` starts in ``text``, 1-based."""
    offset = -1
    for _ in range(nth):
        offset = text.index(needle, offset + 1)
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return SourceLocation(file, line, column)


def only(problems: list[Problem]) -> Problem:
    assert len(problems) == 1, "\n".join(map(str, problems))
    return problems[0]


def test_problem_prints_as_file_line_column_message() -> None:
    problem = Problem(SourceLocation("a.yaml", 3, 7), "runs[0].x: bad")
    assert str(problem) == "a.yaml:3:7: runs[0].x: bad"
    assert str(Problem(SourceLocation("gone.yaml", 0, 0), "no such file")) == (
        "gone.yaml: no such file"
    )


def test_format_path_quotes_keys_that_are_not_identifiers() -> None:
    assert format_path(("runs", 1, "temperature")) == "runs[1].temperature"
    assert format_path(("runs", 0, "metadata", "a b")) == 'runs[0].metadata["a b"]'
    assert format_path(()) == "document"


GOOD_RUN = """\
runs:
  - name: r1
    thread_id: thread_a
    assistant_id: asst_a
"""


def test_a_valid_document_has_no_problems() -> None:
    assert problems_of(doc(GOOD_RUN)) == []


def test_unknown_key_points_at_the_key_and_suggests_the_nearest() -> None:
    text = doc(GOOD_RUN + "    instructons: hello\n")
    problem = only(problems_of(text))
    assert problem.location == at(text, "instructons")
    assert "runs[0].instructons" in problem.message
    assert "did you mean 'instructions'?" in problem.message


def test_unknown_top_level_key_and_stream_are_refused() -> None:
    text = doc(GOOD_RUN + "    stream: true\ndefualts: {}\n")
    found = problems_of(text)
    assert [p.location for p in found] == [at(text, "stream"), at(text, "defualts")]
    assert "did you mean 'defaults'?" in found[1].message


def test_wrong_type_points_at_the_value() -> None:
    text = doc(GOOD_RUN + "    top_p: high\n")
    problem = only(problems_of(text))
    assert problem.location == at(text, "high")
    assert "runs[0].top_p" in problem.message
    assert "number" in problem.message


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("temperature", "2.5"),
        ("temperature", "-0.1"),
        ("top_p", "1.01"),
        ("max_prompt_tokens", "255"),
        ("max_completion_tokens", "100"),
    ],
)
def test_numbers_out_of_range_are_located(field: str, value: str) -> None:
    text = doc(GOOD_RUN + f"    {field}: {value}\n")
    problem = only(problems_of(text))
    key = at(text, f"{field}: {value}")
    assert problem.location == SourceLocation(FILE, key.line, key.column + len(field) + 2)
    assert f"runs[0].{field}" in problem.message


def test_numbers_at_the_limits_are_accepted() -> None:
    text = doc(
        GOOD_RUN
        + "    temperature: 2\n    top_p: 0\n    max_prompt_tokens: 256\n"
        + "    max_completion_tokens: 256\n"
    )
    assert problems_of(text) == []


def test_more_than_twenty_tools() -> None:
    tools = "".join("      - type: code_interpreter\n" for _ in range(21))
    text = doc(GOOD_RUN + "    tools:\n" + tools)
    problem = only(problems_of(text))
    assert problem.location == at(text, "- type: code_interpreter")
    assert "runs[0].tools" in problem.message
    assert "20" in problem.message


def test_function_name_pattern() -> None:
    text = doc(
        GOOD_RUN
        + "    tools:\n"
        + "      - type: function\n"
        + "        function: {name: look up ticket}\n"
    )
    problem = only(problems_of(text))
    assert problem.location == at(text, "look up ticket")
    assert "runs[0].tools[0].function.name" in problem.message


def test_function_name_longer_than_64() -> None:
    name = "f" * 65
    text = doc(GOOD_RUN + f"    tools: [{{type: function, function: {{name: {name}}}}}]\n")
    assert only(problems_of(text)).location == at(text, name)


def test_truncation_last_messages_at_least_one() -> None:
    text = doc(GOOD_RUN + "    truncation_strategy: {type: last_messages, last_messages: 0}\n")
    problem = only(problems_of(text))
    assert problem.location == at(text, "0}")
    assert "runs[0].truncation_strategy.last_messages" in problem.message


def test_metadata_pairs_in_one_mapping() -> None:
    pairs = "".join(f"      k{i}: v\n" for i in range(USER_METADATA_MAX_PAIRS + 1))
    text = doc(GOOD_RUN + "    metadata:\n" + pairs)
    problem = only(problems_of(text))
    assert problem.location == at(text, "k0")
    assert "runs[0].metadata" in problem.message
    assert str(USER_METADATA_MAX_PAIRS) in problem.message


def test_metadata_pairs_counted_after_merging_defaults() -> None:
    half = USER_METADATA_MAX_PAIRS // 2 + 1
    defaults = "".join(f"    d{i}: v\n" for i in range(half))
    own = "".join(f"      r{i}: v\n" for i in range(half))
    text = doc("defaults:\n  metadata:\n" + defaults + GOOD_RUN + "    metadata:\n" + own)
    problem = only(problems_of(text))
    assert problem.location == at(text, "metadata:", nth=2)
    assert str(2 * half) in problem.message
    assert "defaults" in problem.message


def test_metadata_key_longer_than_64_points_at_the_key() -> None:
    key = "k" * 65
    text = doc(GOOD_RUN + f"    metadata: {{{key}: v}}\n")
    problem = only(problems_of(text))
    assert problem.location == at(text, key)
    assert "64" in problem.message


def test_metadata_value_longer_than_512_points_at_the_value() -> None:
    value = "v" * 513
    text = doc(GOOD_RUN + f"    metadata: {{k: {value}}}\n")
    problem = only(problems_of(text))
    assert problem.location == at(text, value)
    assert "runs[0].metadata.k" in problem.message
    assert "512" in problem.message


def test_metadata_value_must_be_a_string() -> None:
    text = doc(GOOD_RUN + "    metadata: {k: [1]}\n")
    assert only(problems_of(text)).location == at(text, "[1]")


def test_reserved_metadata_prefix_in_a_run_and_in_defaults() -> None:
    text = doc(
        "defaults:\n  metadata: {reconciler.team: a}\n"
        + GOOD_RUN
        + "    metadata: {reconciler.name: x}\n"
    )
    found = problems_of(text)
    assert [p.location for p in found] == [at(text, "reconciler.team"), at(text, "reconciler.name")]
    assert all("reserved" in p.message for p in found)


def test_duplicate_run_names_on_one_thread_point_at_the_second() -> None:
    text = doc(GOOD_RUN + "  - name: r1\n    thread_id: thread_a\n    assistant_id: asst_a\n")
    problem = only(problems_of(text))
    assert problem.location == at(text, "r1", nth=2)
    assert str(at(text, "r1")) in problem.message


def test_same_name_on_another_thread_is_fine() -> None:
    text = doc(GOOD_RUN + "  - name: r1\n    thread_id: thread_b\n    assistant_id: asst_a\n")
    assert problems_of(text) == []


def test_duplicate_names_across_files_name_the_first_file() -> None:
    text = doc(GOOD_RUN)
    found = list(load_manifests([("a.yaml", text), ("b.yaml", text)]).problems)
    problem = only(found)
    assert problem.location == at(text, "r1", file="b.yaml")
    assert str(at(text, "r1", file="a.yaml")) in problem.message


def test_duplicate_names_through_the_thread_of_defaults() -> None:
    text = doc(
        "defaults: {thread_id: thread_a, assistant_id: asst_a}\n"
        "runs:\n  - name: same\n  - name: other\n  - name: same\n"
    )
    assert only(problems_of(text)).location == at(text, "same", nth=2)


def test_tool_outputs_for_an_undeclared_function() -> None:
    text = doc(
        GOOD_RUN
        + "    tools: [{type: function, function: {name: lookup_ticket}}]\n"
        + "    tool_outputs:\n      lookup_tiket: '{}'\n"
    )
    problem = only(problems_of(text))
    assert problem.location == at(text, "lookup_tiket")
    assert "runs[0].tool_outputs.lookup_tiket" in problem.message
    assert "did you mean 'lookup_ticket'?" in problem.message


def test_tool_outputs_from_defaults_point_at_the_defaults() -> None:
    text = doc(
        "defaults:\n  tool_outputs: {lookup: ok}\n"
        + GOOD_RUN
        + "    tools: [{type: code_interpreter}]\n"
    )
    problem = only(problems_of(text))
    assert problem.location == at(text, "lookup")
    assert "defaults.tool_outputs.lookup" in problem.message
    assert "'r1'" in problem.message


def test_tool_outputs_are_not_checked_when_the_run_uses_the_assistants_tools() -> None:
    assert problems_of(doc(GOOD_RUN + "    tool_outputs: {lookup: ok}\n")) == []


def test_tool_choice_naming_a_function_not_in_tools() -> None:
    text = doc(
        GOOD_RUN
        + "    tools: [{type: function, function: {name: lookup}}]\n"
        + "    tool_choice: {type: function, function: {name: lokup}}\n"
    )
    problem = only(problems_of(text))
    assert problem.location == at(text, "lokup")
    assert "runs[0].tool_choice.function.name" in problem.message


def test_tool_choice_of_type_function_needs_a_name() -> None:
    text = doc(GOOD_RUN + "    tool_choice: {type: function}\n")
    problem = only(problems_of(text))
    assert problem.location == at(text, "{type: function}")
    assert "function" in problem.message


@pytest.mark.parametrize("missing", ["thread_id", "assistant_id"])
def test_missing_ids_after_merging_defaults_point_at_the_run(missing: str) -> None:
    lines = [line for line in GOOD_RUN.splitlines() if missing not in line]
    text = doc("\n".join(lines) + "\n")
    problem = only(problems_of(text))
    assert problem.location == at(text, "name: r1")
    assert missing in problem.message
    assert "runs[0]" in problem.message


def test_null_in_a_run_clears_a_default() -> None:
    text = doc(
        "defaults: {assistant_id: asst_a}\n"
        "runs:\n  - name: r1\n    thread_id: t\n    assistant_id: null\n"
    )
    problem = only(problems_of(text))
    assert problem.location == at(text, "name: r1")
    assert "assistant_id" in problem.message


def test_unknown_api_version_and_kind() -> None:
    text = "apiVersion: reconciler/v2\nkind: Run\nruns: []\n"
    found = problems_of(text)
    assert [p.location for p in found] == [at(text, "reconciler/v2"), at(text, "Run\n")]
    assert "apiVersion" in found[0].message and "'reconciler/v1'" in found[0].message
    assert "kind" in found[1].message and "'Runs'" in found[1].message


def test_missing_required_keys_point_at_the_mapping() -> None:
    text = "kind: Runs\nruns:\n  - thread_id: t\n    assistant_id: a\n"
    found = problems_of(text)
    assert [(p.location, p.message) for p in found] == [
        (at(text, "kind"), "document: missing required key 'apiVersion'"),
        (at(text, "thread_id"), "runs[0]: missing required key 'name'"),
    ]


@pytest.mark.parametrize("name", ["Weekly", "-lead", "a_b", "x" * 49])
def test_run_name_format(name: str) -> None:
    text = doc(GOOD_RUN.replace("name: r1", f"name: {name}"))
    problem = only(problems_of(text))
    assert problem.location == at(text, name)
    assert "runs[0].name" in problem.message


def test_enum_values_get_a_suggestion() -> None:
    text = doc(GOOD_RUN + "    state: canceled\n")
    problem = only(problems_of(text))
    assert problem.location == at(text, "canceled")
    assert "did you mean 'cancelled'?" in problem.message


def test_tool_type_and_its_fields() -> None:
    text = doc(
        GOOD_RUN
        + "    tools:\n"
        + "      - {type: functon}\n"
        + "      - {type: file_search, file_search: {max_num_results: 51}}\n"
        + "      - {type: function, function: {name: f}, extra: 1}\n"
    )
    found = problems_of(text)
    assert [p.location for p in found] == [at(text, "functon"), at(text, "51"), at(text, "extra")]


def test_additional_messages_shape() -> None:
    text = doc(
        GOOD_RUN
        + "    additional_messages:\n"
        + "      - {role: system, content: hi}\n"
        + "      - {role: user}\n"
        + "      - {role: user, content: []}\n"
    )
    found = problems_of(text)
    assert [p.location for p in found] == [
        at(text, "system"),
        at(text, "{role: user}"),
        at(text, "[]"),
    ]


def test_response_format_shapes() -> None:
    good = doc(GOOD_RUN + "    response_format: auto\n")
    assert problems_of(good) == []
    text = doc(GOOD_RUN + "    response_format: {type: json_schema, json_schema: {}}\n")
    problem = only(problems_of(text))
    assert problem.location == at(text, "{}")
    assert "name" in problem.message


def test_document_that_is_not_a_mapping() -> None:
    text = "- a\n- b\n"
    problem = only(problems_of(text))
    assert problem.location == SourceLocation(FILE, 1, 1)
    assert "list" in problem.message


def test_runs_must_be_a_list_of_mappings() -> None:
    text = HEADER + "runs:\n  - just-a-name\n"
    problem = only(problems_of(text))
    assert problem.location == at(text, "just-a-name")
    assert "runs[0]" in problem.message


def test_every_problem_is_reported_at_once() -> None:
    text = doc(
        "defaults: {metadata: {reconciler.x: y}}\n"
        "runs:\n"
        "  - name: a\n"
        "    temperature: 9\n"
        "    tools: [{type: function, function: {name: f}}]\n"
        "    tool_outputs: {g: x}\n"
        "  - name: a\n"
        "    thread_id: t\n"
        "    assistant_id: s\n"
        "    colour: blue\n"
    )
    found = problems_of(text)
    messages = "\n".join(map(str, found))
    for fragment in (
        "reserved",
        "runs[0].temperature",
        "runs[0].tool_outputs.g",
        "has no thread_id",
        "has no assistant_id",
        "runs[1].colour",
    ):
        assert fragment in messages
    lines = [(p.location.line, p.location.column) for p in found]
    assert lines == sorted(lines)
