"""``reconciler schema``: the shipped JSON Schemas, their ``$id``, and editors that use them.

Editors reach the manifest schema through the YAML language server's modeline. It reads the
modeline per document (a comment before that document's content; the file's first lines
belong to the first document only) and resolves a relative path against the folder of the
YAML file. These tests hold the examples and the documented setup to those two rules, and
the schema to draft-07 semantics, which the language server has implemented longest.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from reconciler.cli import run
from reconciler.schemas import load_schema, schema_names

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "manifests"
SCHEMA_FOLDER = REPO / "reconciler" / "schemas"
ID_PREFIX = "https://github.com/reconciler/reconciler/schemas/"
MODELINE = re.compile(r"^#\s+yaml-language-server\s*:.*\$schema=(\S+)")
DOCUMENT_START = re.compile(r"^---(\s|$)")

#: Every keyword draft-07 defines; ``$defs`` is only a place ``$ref`` pointers lead to.
DRAFT_07_KEYWORDS = frozenset({
    "$schema", "$id", "$ref", "$comment", "$defs", "title", "description", "default",
    "examples", "readOnly", "writeOnly", "type", "enum", "const", "multipleOf", "maximum",
    "exclusiveMaximum", "minimum", "exclusiveMinimum", "maxLength", "minLength", "pattern",
    "items", "additionalItems", "maxItems", "minItems", "uniqueItems", "contains",
    "maxProperties", "minProperties", "required", "properties", "patternProperties",
    "additionalProperties", "dependencies", "propertyNames", "if", "then", "else", "allOf",
    "anyOf", "oneOf", "not", "format", "contentMediaType", "contentEncoding", "definitions",
})
#: Keywords whose value maps names to schemas (their keys are names, not keywords).
NAMED_SCHEMAS = frozenset({"properties", "patternProperties", "$defs", "definitions"})
ANNOTATIONS = frozenset({"$ref", "$comment", "title", "description", "examples", "default"})


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = run(["--no-color", *args])
    out, err = capsys.readouterr()
    return code, out, err


def documents_with_modelines(text: str) -> list[str | None]:
    """For each YAML document of ``text``, the schema its own modeline names (None: none).

    A modeline counts for a document when it stands among the comments before that
    document's first content line, as the YAML language server attaches comments.
    """
    found: list[str | None] = [None]
    in_header = True
    for line in text.splitlines():
        if DOCUMENT_START.match(line):
            found.append(None)
            in_header = True
            continue
        match = MODELINE.match(line)
        if in_header and match and found[-1] is None:
            found[-1] = match.group(1)
        elif line.strip() and not line.lstrip().startswith("#"):
            in_header = False
    return found


def validate_as_an_editor_would(path: Path) -> list[str]:
    """Every schema error of every document of ``path``, each document against the schema its
    own modeline names, the path resolved against the file's folder."""
    errors: list[str] = []
    text = path.read_text("utf-8")
    documents = list(yaml.safe_load_all(text))
    modelines = documents_with_modelines(text)
    assert len(modelines) == len(documents), "one modeline slot per document"
    for index, (document, ref) in enumerate(zip(documents, modelines, strict=True)):
        if ref is None:
            errors.append(f"document {index + 1}: no modeline, so no schema")
            continue
        schema = json.loads((path.parent / ref).read_text("utf-8"))
        validator = jsonschema.Draft202012Validator(schema)
        errors += [f"document {index + 1}: {e.message}" for e in validator.iter_errors(document)]
    return errors


def test_schema_manifest_prints_the_shipped_file_exactly(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = cli(capsys, "schema", "manifest")
    assert (code, err) == (0, "")
    assert out == (SCHEMA_FOLDER / "manifest.schema.json").read_text("utf-8")
    assert json.loads(out)["$id"] == ID_PREFIX + "manifest.schema.json"


def test_schema_plan_prints_the_saved_plan_schema(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(capsys, "schema", "plan")
    assert (code, err) == (0, "")
    assert json.loads(out) == json.loads((SCHEMA_FOLDER / "plan.schema.json").read_text())
    assert json.loads(out)["$id"] == ID_PREFIX + "plan.schema.json"


def test_the_ids_are_stable_literals_for_manifest_and_plan() -> None:
    # Pinned by hand: an $id is a contract with editors' caches and schema catalogues.
    assert load_schema("manifest")["$id"] == (
        "https://github.com/reconciler/reconciler/schemas/manifest.schema.json"
    )
    assert load_schema("plan")["$id"] == (
        "https://github.com/reconciler/reconciler/schemas/plan.schema.json"
    )


def test_every_shipped_schema_has_an_id_of_one_scheme_and_is_listed(
    capsys: pytest.CaptureFixture[str],
) -> None:
    files = sorted(p.name for p in SCHEMA_FOLDER.glob("*.schema.json"))
    assert [f"{name}.schema.json" for name in schema_names()] == files
    assert {"manifest", "plan"} <= set(schema_names())
    code, out, err = cli(capsys, "schema", "--list")
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert len(lines) == len(files)
    for name, line in zip(schema_names(), lines, strict=True):
        schema = load_schema(name)
        assert schema["$id"] == f"{ID_PREFIX}{name}.schema.json"
        assert line.split()[:2] == [name, schema["$id"]]
        assert line.endswith(schema["title"])


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("schema",), "give one schema name"),
        (("schema", "manifest", "--list"), "give one schema name"),
        (("schema", "manifests"), "no schema named 'manifests': the tool ships"),
    ],
)
def test_a_wrong_request_is_one_sentence_and_exit_1(
    capsys: pytest.CaptureFixture[str], args: tuple[str, ...], says: str
) -> None:
    code, out, err = cli(capsys, *args)
    assert (code, out) == (1, "")
    assert err.splitlines()[0].startswith(f"Error: {says}")
    assert "Traceback" not in err


def test_the_manifest_schema_means_the_same_under_draft_07() -> None:
    """No keyword draft-07 lacks, and no ``$ref`` beside a constraint (draft-07 ignores
    a ``$ref``'s siblings): an editor on draft-07 semantics checks what the tool checks."""
    unknown: set[str] = set()
    ref_siblings: list[str] = []

    def walk(node: Any, path: str) -> None:
        if isinstance(node, list):
            for i, item in enumerate(node):
                walk(item, f"{path}/{i}")
        if not isinstance(node, dict):
            return
        unknown.update(set(node) - DRAFT_07_KEYWORDS)
        if "$ref" in node and set(node) - ANNOTATIONS:
            ref_siblings.append(path)
        for key, value in node.items():
            if key in NAMED_SCHEMAS:
                for name, schema in value.items():
                    walk(schema, f"{path}/{key}/{name}")
            elif key not in ("enum", "const", "examples", "default", "required"):
                walk(value, f"{path}/{key}")

    walk(load_schema("manifest"), "#")
    assert unknown == set()
    assert ref_siblings == []


BAD_DOCUMENTS = [
    {"apiVersion": "reconciler/v1", "kind": "Runz", "runs": []},
    {"apiVersion": "reconciler/v1", "kind": "Runs", "runs": [{"name": "Bad_Name"}]},
    {"apiVersion": "reconciler/v1", "kind": "Runs", "runs": [{"name": "a", "temprature": 1}]},
    {"apiVersion": "reconciler/v1", "kind": "Runs",
     "runs": [{"name": "a", "temperature": 3, "max_prompt_tokens": 10}]},
    {"apiVersion": "reconciler/v1", "kind": "Runs", "defaults": {"metadata": {"k": "v" * 513}},
     "runs": [{"name": "a", "tools": [{"type": "function"}] * 21}]},
    {"kind": "Runs"},
]


@pytest.mark.parametrize("document", BAD_DOCUMENTS, ids=range(len(BAD_DOCUMENTS)))
def test_draft_07_and_2020_12_find_the_same_errors(document: dict[str, Any]) -> None:
    schema = load_schema("manifest")

    def errors(validator: type[Any]) -> list[tuple[tuple[Any, ...], str]]:
        found = validator(schema).iter_errors(document)
        return sorted((tuple(e.absolute_path), str(e.validator)) for e in found)

    latest = errors(jsonschema.Draft202012Validator)
    assert latest, "each of these documents breaks the schema"
    assert errors(jsonschema.Draft7Validator) == latest


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.y*ml")), ids=lambda p: p.name)
def test_every_document_of_every_example_validates_through_its_own_modeline(
    path: Path,
) -> None:
    text = path.read_text("utf-8")
    modelines = documents_with_modelines(text)
    assert len(modelines) == len(list(yaml.safe_load_all(text)))
    assert all(ref == "../schemas/manifest.schema.json" for ref in modelines), modelines
    assert (path.parent / "../schemas/manifest.schema.json").resolve() == (
        SCHEMA_FOLDER / "manifest.schema.json"
    ).resolve()
    assert validate_as_an_editor_would(path) == []
    for document in yaml.safe_load_all(text):
        jsonschema.Draft7Validator(load_schema("manifest")).validate(document)


def test_the_documented_setup_works_outside_this_repository(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """README: ``reconciler schema manifest > .reconciler/manifest.schema.json`` and the
    modeline in each document; a second document without one is not checked by an editor."""
    code, out, _ = cli(capsys, "schema", "manifest")
    assert code == 0
    (tmp_path / ".reconciler").mkdir()
    (tmp_path / ".reconciler" / "manifest.schema.json").write_text(out)
    line = "# yaml-language-server: $schema=.reconciler/manifest.schema.json"
    good = (f"{line}\napiVersion: reconciler/v1\nkind: Runs\nruns: [{{name: a}}]\n---\n"
            f"{line}\napiVersion: reconciler/v1\nkind: Runs\nruns: [{{name: b}}]\n")
    (tmp_path / "runs.yaml").write_text(good)
    assert validate_as_an_editor_would(tmp_path / "runs.yaml") == []

    (tmp_path / "runs.yaml").write_text(good.replace("name: b", "name: b, temprature: 1"))
    (problem,) = validate_as_an_editor_would(tmp_path / "runs.yaml")
    assert problem.startswith("document 2: Additional properties are not allowed")

    first_only = good.replace(f"---\n{line}\n", "---\n")
    (tmp_path / "runs.yaml").write_text(first_only)
    assert validate_as_an_editor_would(tmp_path / "runs.yaml") == [
        "document 2: no modeline, so no schema"
    ]

    (tmp_path / "nested").mkdir()
    (tmp_path / "nested" / "runs.yaml").write_text(good)
    with pytest.raises(FileNotFoundError):  # relative to the file: ../.reconciler/… there
        validate_as_an_editor_would(tmp_path / "nested" / "runs.yaml")
