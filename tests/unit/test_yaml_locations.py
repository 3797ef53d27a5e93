"""The YAML reader against a reference built here from ``yaml.compose`` nodes: same values, and
the same location for every value and key path, on the examples and on generated documents
with anchors, aliases, merges (``<<``), duplicate keys, tags, flow style and deep nesting.

The reference is written independently of the reader: PyYAML's pure-Python composer (a
resolver with the YAML 1.2 core schema's implicit types), a walk of its nodes, and alias
positions taken from the scanner's tokens in document order.
"""

from __future__ import annotations

import json
import math
import random
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from reconciler.manifest import parse_documents
from reconciler.manifest.documents import DocPath
from reconciler.model import SourceLocation

REPO = Path(__file__).resolve().parents[2]
MERGE = "tag:yaml.org,2002:merge"
_CORE = {
    "tag:yaml.org,2002:null": (r"~|null|Null|NULL|", [*"~nN", ""]),
    "tag:yaml.org,2002:bool": (r"true|True|TRUE|false|False|FALSE", list("tTfF")),
    "tag:yaml.org,2002:int": (r"[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+", list("-+0123456789")),
    "tag:yaml.org,2002:float": (
        r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?", list("-+.0123456789")
    ),
}


_BOOLEANS = {"true": True, "True": True, "TRUE": True, "false": False, "False": False,
             "FALSE": False}


class CoreLoader(yaml.SafeLoader):
    """Composes with the YAML 1.2 core schema's implicit types (and ``<<``), nothing else."""


CoreLoader.yaml_implicit_resolvers = {}
for _tag, (_pattern, _first) in _CORE.items():
    CoreLoader.add_implicit_resolver(_tag, re.compile(f"^(?:{_pattern})$"), _first)
CoreLoader.add_implicit_resolver(MERGE, re.compile("^(?:<<)$"), ["<"])


def _scalar(node: yaml.ScalarNode) -> Any:
    text, tag = node.value, node.tag.removeprefix("tag:yaml.org,2002:")
    if tag == "null" and re.fullmatch(_CORE["tag:yaml.org,2002:null"][0], text):
        return None
    if tag == "bool" and text in _BOOLEANS:
        return _BOOLEANS[text]
    if tag in ("int", "float") and re.fullmatch(_CORE["tag:yaml.org,2002:int"][0], text):
        base = {"o": 8, "x": 16}.get(text[1:2], 10)
        number = int(text[2:] if base != 10 else text, base)
        return float(number) if tag == "float" else number
    if tag == "float" and re.fullmatch(_CORE["tag:yaml.org,2002:float"][0], text):
        real = float(text)
        return real if math.isfinite(real) else text
    return text


def _mappings(source: Any) -> list[dict[str, Any]]:
    """What a merge key merges: a mapping or a list of mappings; anything else, nothing."""
    parts = source if isinstance(source, list) else [source]
    return parts if all(isinstance(part, dict) for part in parts) else []


class Reference:
    """Values, value locations and key locations of one composed document."""

    def __init__(self, file: str, aliases: list[yaml.Mark]) -> None:
        self.file = file
        self.aliases = aliases
        self.seen: set[int] = set()
        self.built: dict[int, Any] = {}
        self.values: dict[DocPath, SourceLocation] = {}
        self.keys: dict[DocPath, SourceLocation] = {}

    def at(self, mark: yaml.Mark) -> SourceLocation:
        return SourceLocation(self.file, mark.line + 1, mark.column + 1)

    def build(self, node: yaml.Node) -> Any:
        """The value, by the rules the reader documents: first key wins, merges fill in."""
        if id(node) in self.built:
            return self.built[id(node)]
        if isinstance(node, yaml.ScalarNode):
            value: Any = _scalar(node)
        elif isinstance(node, yaml.SequenceNode):
            value = [self.build(item) for item in node.value]
        else:
            value = {}
            sources = []
            for key_node, value_node in node.value:
                if key_node.tag == MERGE:
                    sources.append(self.build(value_node))
                elif key_node.value not in value:
                    value[key_node.value] = self.build(value_node)
            for source in sources:
                for part in _mappings(source):
                    for key, item in part.items():
                        value.setdefault(key, item)
        self.built[id(node)] = value
        return value

    def walk(self, node: yaml.Node, path: DocPath | None) -> None:
        """Record where each path is written, in document order (``None``: not recorded)."""
        if id(node) in self.seen:  # an alias: located where the alias is written
            mark = self.aliases.pop(0)
            if path is not None:
                self.values[path] = self.at(mark)
            return
        self.seen.add(id(node))
        if path is not None:
            self.values[path] = self.at(node.start_mark)
        if isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                self.walk(item, None if path is None else (*path, index))
        elif isinstance(node, yaml.MappingNode):
            self.walk_mapping(node, path)

    def walk_mapping(self, node: yaml.MappingNode, path: DocPath | None) -> None:
        explicit: set[str] = set()
        merges = []
        for key_node, value_node in node.value:
            key = key_node.value
            if key_node.tag == MERGE or key in explicit:
                self.walk(value_node, None)
                if key_node.tag == MERGE:
                    merges.append((key_node.start_mark, value_node))
                continue
            explicit.add(key)
            if path is not None:
                self.keys[(*path, key)] = self.at(key_node.start_mark)
            self.walk(value_node, None if path is None else (*path, key))
        for mark, value_node in merges:
            for part in _mappings(self.build(value_node)):
                for key in part:
                    if path is not None and key not in explicit and (*path, key) not in self.keys:
                        self.keys[(*path, key)] = self.values[(*path, key)] = self.at(mark)


def reference(file: str, text: str) -> list[Reference]:
    aliases = [t.start_mark for t in yaml.scan(text) if isinstance(t, yaml.AliasToken)]
    found = []
    for root in yaml.compose_all(text, Loader=CoreLoader):
        ref = Reference(file, aliases)
        ref.walk(root, ())
        ref.root = ref.build(root)  # type: ignore[attr-defined]
        if ref.root is not None:  # type: ignore[attr-defined]
            found.append(ref)
    return found


def canonical(value: Any) -> str:
    """Strict equality: ``True`` is not ``1``, nor ``1.0`` ``1``."""
    return json.dumps(value, sort_keys=True)


def assert_same_as_reference(file: str, text: str) -> None:
    documents, _ = parse_documents(file, text)
    expected = reference(file, text)
    assert len(documents) == len(expected)
    for document, ref in zip(documents, expected, strict=True):
        assert canonical(document.value) == canonical(ref.root)  # type: ignore[attr-defined]
        assert dict(document.values) == ref.values
        assert dict(document.keys) == ref.keys
        assert document.start == ref.values[()]
        for path, where in ref.values.items():
            assert path in document.values and document.values[path] == where
            assert document.locate(path) == where
        for path, where in ref.keys.items():
            assert document.locate(path, key=True) == where


EXAMPLES = sorted([*(REPO / "manifests").glob("*.y*ml"), *(REPO / "tests").rglob("*.y*ml")])


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_examples_match_the_reference(path: Path) -> None:
    assert_same_as_reference(path.name, path.read_text("utf-8"))


CASES = {
    "anchors and merges": """\
base: &base {a: 1, b: [x, y], c: {d: null}}
other: &other
  b: 2
  e: "quoted"
use:
  <<: [*base, *other]
  a: override
again:
  <<: *other
  "<<": literal key
list: [*base, &s scalar, *s]
""",
    "duplicates, also inside merged and duplicate values": """\
a: 1
b: {x: 1, x: 2}
a: {deep: [1, 2, {a: 3}], deep: 4}
c:
  <<: {m: 1, m: 2}
  m: 3
""",
    "tags and block scalars": """\
s: !!str 12
i: !!int "0x1F"
f: !!float 3
n: !!null ~
b: !!bool True
m: !!map {k: v}
q: !!seq [1]
t: ! plain
lit: |
  line one
  line two
fold: >-
  folded
  text
""",
    "scalars of every kind": """\
[~, null, '', "", true, FALSE, yes, no, on, 0o17, 0x1f, 017, -3, +4, .5, 1e3, 1.5e-3, .inf,
 1e999, 2001-12-14, 1:30, "text", 'it''s', "tab\\tand \\u00e9", thread_a, Null, TRUE, nan]
""",
    "several documents": "a: 1\n---\n[1, 2]\n--- ~\n---\nb: {c: d}\n...\n---\n# only a comment\n",
}


@pytest.mark.parametrize("name", CASES)
def test_edge_cases_match_the_reference(name: str) -> None:
    assert_same_as_reference("case.yaml", CASES[name])


def _generate(rng: random.Random, depth: int, anchors: list[str]) -> str:
    """One random value as YAML text (flow style, to nest anywhere)."""
    choice = rng.random()
    if depth <= 0 or choice < 0.35:
        if anchors and rng.random() < 0.15:
            return "*" + rng.choice(anchors)
        return rng.choice(["1", "-2.5", "x", "'q'", '"d"', "~", "true", "0o7", "a b", "!!str 5",
                           "!!float 1", "no", "''"])
    anchor = ""
    if rng.random() < 0.2:
        name = f"a{rng.getrandbits(48)}"  # unique: nested anchors are named first
        anchor = f"&{name} "
    if choice < 0.65:
        items = [_generate(rng, depth - 1, anchors) for _ in range(rng.randint(0, 4))]
        text = anchor + "[" + ", ".join(items) + "]"
    else:
        pairs = []
        for _ in range(rng.randint(0, 4)):
            key = rng.choice(["k", "k", "l", "m", "'<<'", "n o"])
            if anchors and rng.random() < 0.15:
                key = "<<"
                pairs.append(f"{key}: *{rng.choice(anchors)}")
                continue
            pairs.append(f"{key}: {_generate(rng, depth - 1, anchors)}")
        text = anchor + "{" + ", ".join(pairs) + "}"
    if anchor:
        anchors.append(anchor[1:-1])
    return text


@pytest.mark.parametrize("seed", range(60))
def test_generated_documents_match_the_reference(seed: int) -> None:
    rng = random.Random(seed)
    anchors: list[str] = []
    lines = []
    for index in range(rng.randint(1, 6)):
        value = _generate(rng, rng.randint(1, 7), anchors)
        lines.append(f"e{index % 4}: {value}")
        if rng.random() < 0.3:
            first, deep = (_generate(rng, rng.randint(1, 4), anchors) for _ in range(2))
            lines.append(f"block{index}:\n  - {first}\n  - nested:\n      deep: {deep}")
    assert_same_as_reference("gen.yaml", "\n".join(lines) + "\n")


def test_deep_nesting_matches_the_reference() -> None:
    text = "x: &x {y: 1}\na: " + "[" * 60 + "{b: [1, *x]}" + "]" * 60 + "\n"
    assert_same_as_reference("deep.yaml", text)


def test_keys_and_short_values_are_one_string_each_across_documents() -> None:
    """100,000 runs repeat a few keys and values: the reader keeps one string of each (less
    memory, and less to pickle from a worker process), but never a long one."""
    long_text = "x" * 65
    text = "".join(f"---\nthread_id: thread_a\nteam: 'red'\nnote: {long_text}\n" for _ in range(2))
    (first, second), problems = parse_documents("runs.yaml", text)
    assert problems == []
    one, two = first.value, second.value
    assert isinstance(one, dict) and isinstance(two, dict)
    assert one == two == {"thread_id": "thread_a", "team": "red", "note": long_text}
    assert all(a is b for a, b in zip(one, two, strict=True))  # keys
    assert one["thread_id"] is two["thread_id"] and one["team"] is two["team"]
    assert one["note"] is not two["note"]
