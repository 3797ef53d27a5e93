"""The YAML reader: text → located documents, refusing hostile input within a fixed budget.

The YAML event stream is turned into plain values here rather than by PyYAML's constructor,
so that every key and value keeps its position, duplicate keys are errors instead of silently
overwriting, and hostile input (alias bombs beyond ``MAX_ALIAS_NODES``, nesting deeper than
``MAX_DEPTH``, unprintable characters) is refused. Scalars follow the YAML 1.2 core schema, as
modern tools do: ``yes``, ``no``, ``on`` and ``off`` are strings, and timestamps stay text
(``resolve_plain_scalar``, which ``export`` uses to know which strings need quotes).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from reconciler.manifest.documents import DocPath, Document, Problem
from reconciler.manifest.documents import format_path as _label
from reconciler.model import JSON, SourceLocation

__all__ = [
    "MAX_ALIAS_NODES",
    "MAX_DEPTH",
    "location_of_offset",
    "parse_documents",
    "resolve_plain_scalar",
]

#: Nodes an alias may bring in, summed over a document: far above any real manifest, far below
#: what a "billion laughs" document expands to.
MAX_ALIAS_NODES = 100_000
#: Nesting deeper than this is refused (a function's JSON Schema rarely needs ten levels).
MAX_DEPTH = 100

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

#: Characters YAML refuses (its printable set, inverted): control characters, NUL, surrogates.
_UNPRINTABLE = re.compile(
    "[^\x09\x0a\x0d\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]"
)
_TAG = "tag:yaml.org,2002:"
#: First characters of every plain scalar the core schema reads as other than text ("" too).
_MAYBE_NOT_TEXT = frozenset({"", *"~nNtTfF+-.0123456789"})
_NULL = re.compile(r"(?:~|null|Null|NULL)?\Z")
_TRUE = frozenset({"true", "True", "TRUE"})
_FALSE = frozenset({"false", "False", "FALSE"})
_INT = re.compile(r"[-+]?[0-9]+\Z")
_INT_OCT = re.compile(r"0o[0-7]+\Z")
_INT_HEX = re.compile(r"0x[0-9a-fA-F]+\Z")
_FLOAT = re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?\Z")
#: Integers longer than this stay text (Python refuses to parse very long digit strings).
_MAX_INT_DIGITS = 1000


def location_of_offset(file: str, text: str, offset: int) -> SourceLocation:
    """Line and column (1-based) of a character offset in ``text``."""
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return SourceLocation(file, line, column)


def parse_documents(file: str, text: str) -> tuple[list[Document], list[Problem]]:
    """Every non-empty YAML document of one file, with its positions, and what went wrong.

    A syntax error ends the file (PyYAML cannot resume); the documents before it are kept.
    Bombs, excessive nesting and unknown aliases end their document only.
    """
    bad = _UNPRINTABLE.search(text)
    if bad is not None:
        where = location_of_offset(file, text, bad.start())
        return [], [
            Problem(
                where,
                f"unacceptable character U+{ord(bad.group()):04X}: this does not look like a "
                "YAML text file",
            )
        ]
    documents: list[Document] = []
    problems: list[Problem] = []
    builder: _DocumentBuilder | None = None
    loader = _Loader(text)
    try:
        while True:  # the parser's own loop: yaml.parse adds two Python calls per event
            event = loader.get_event()
            kind = type(event)
            if kind is yaml.DocumentStartEvent:
                builder = _DocumentBuilder(file, _mark(file, event.start_mark))
            elif kind is yaml.DocumentEndEvent:
                if builder is not None:
                    problems.extend(builder.problems)
                    document = builder.finish()
                    if document is not None:
                        documents.append(document)
                builder = None
            elif kind is yaml.StreamEndEvent or event is None:
                break
            elif builder is not None and not builder.aborted:
                builder.feed(event)
    except yaml.MarkedYAMLError as exc:
        if builder is not None:
            problems.extend(builder.problems)
        problems.append(_syntax_problem(file, exc))
    except yaml.YAMLError as exc:  # a reader error the pre-scan missed: still located
        position = getattr(exc, "position", 0)
        where = location_of_offset(file, text, min(int(position), len(text)))
        problems.append(Problem(where, f"cannot read YAML: {exc}"))
    finally:
        loader.dispose()
    return documents, problems


def _mark(file: str, mark: Any) -> SourceLocation:
    return SourceLocation(file, mark.line + 1, mark.column + 1)


def _syntax_problem(file: str, exc: yaml.MarkedYAMLError) -> Problem:
    mark = exc.problem_mark or exc.context_mark
    where = _mark(file, mark) if mark is not None else SourceLocation(file, 1, 1)
    message = f"YAML syntax error: {exc.problem or exc.context or 'invalid YAML'}"
    if exc.problem and exc.context and exc.context_mark is not None:
        started = _mark(file, exc.context_mark)
        message += f" ({exc.context} started at line {started.line}, column {started.column})"
    return Problem(where, message)


class _Abort(Exception):
    """Stops building one document; the problem says why."""


@dataclass
class _Frame:
    """A collection being built: its path, value and expanded size so far."""

    path: DocPath
    value: Any
    anchor: str | None
    mapping: bool  # the value is a dict (asked for every event: a field, not isinstance)
    size: int = 1
    # Mappings only: the key waiting for its value, where keys were written, merges (<<).
    key: str | None = None
    key_is_merge: bool = False
    key_discarded: bool = False
    key_at: SourceLocation | None = None
    seen_keys: dict[str, SourceLocation] = field(default_factory=dict)
    merges: list[tuple[JSON, SourceLocation]] = field(default_factory=list)


class _DocumentBuilder:
    """Builds one document's values from YAML events, recording where each was written."""

    def __init__(self, file: str, start: SourceLocation) -> None:
        self.file = file
        self.start = start
        self.problems: list[Problem] = []
        self.values: dict[DocPath, SourceLocation] = {}
        self.keys: dict[DocPath, SourceLocation] = {}
        self.anchors: dict[str, tuple[JSON, int]] = {}
        self.stack: list[_Frame] = []
        self.expanded = 0
        self.root: JSON = None
        self.done = False
        self.aborted = False
        self.duplicates = 0

    def finish(self) -> Document | None:
        """The document, or None when it was empty or abandoned."""
        if self.aborted or not self.done or self.root is None:
            return None
        start = self.values.get((), self.start)
        return Document(self.file, self.root, start, self.values, self.keys)

    def feed(self, event: Any) -> None:
        if self.aborted:
            return
        try:
            self._feed(event)
        except _Abort as abort:
            self.aborted = True
            self.problems.append(abort.args[0])

    def _feed(self, event: Any) -> None:
        kind = type(event)
        if kind is yaml.MappingEndEvent or kind is yaml.SequenceEndEvent:
            self._close()
            return
        mark = event.start_mark
        where = SourceLocation(self.file, mark.line + 1, mark.column + 1)
        top = self.stack[-1] if self.stack else None
        if top is not None and top.mapping and top.key is None:
            self._take_key(top, event, where)
            return
        if kind is yaml.ScalarEvent:
            path = self._child_path()
            self.values[path] = where
            self._attach(self._scalar(event, path, where), 1, event.anchor)
        elif isinstance(event, yaml.AliasEvent):
            path = self._child_path()
            self.values[path] = where
            if event.anchor not in self.anchors:
                raise _Abort(Problem(where, f"alias *{event.anchor} names no anchor before it"))
            value, size = self.anchors[event.anchor]
            self.expanded += size
            if self.expanded > MAX_ALIAS_NODES:
                raise _Abort(
                    Problem(
                        where,
                        f"aliases expand this document beyond {MAX_ALIAS_NODES:,} nodes; "
                        "refusing it (a YAML bomb?)",
                    )
                )
            self._attach(value, size, None)
        elif isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            if len(self.stack) >= MAX_DEPTH:
                raise _Abort(Problem(where, f"nesting deeper than {MAX_DEPTH} levels; refusing"))
            is_mapping = isinstance(event, yaml.MappingStartEvent)
            expected = _TAG + ("map" if is_mapping else "seq")
            path = self._child_path()
            self._check_tag(event.tag, (expected,), path, where)
            self.values[path] = where
            self.stack.append(_Frame(path, {} if is_mapping else [], event.anchor, is_mapping))

    def _take_key(self, frame: _Frame, event: Any, where: SourceLocation) -> None:
        if not isinstance(event, yaml.ScalarEvent):
            raise _Abort(
                Problem(where, f"{_label(frame.path)}: mapping keys must be plain strings")
            )
        key = event.value
        frame.key = key
        frame.key_is_merge = key == "<<" and event.implicit[0]
        frame.key_discarded = False
        frame.key_at = where
        if frame.key_is_merge:
            return
        first = frame.seen_keys.get(key)
        if first is not None:
            self.duplicates += 1
            frame.key_discarded = True
            self.problems.append(
                Problem(
                    where,
                    f"{_label((*frame.path, key))}: duplicate key {key!r} (first at line "
                    f"{first.line}, column {first.column})",
                )
            )
            return
        frame.seen_keys[key] = where
        self.keys[(*frame.path, key)] = where

    def _child_path(self) -> DocPath:
        if not self.stack:
            return ()
        top = self.stack[-1]
        if not top.mapping:
            return (*top.path, len(top.value))
        assert top.key is not None
        if top.key_discarded or top.key_is_merge:
            # Positions of a discarded duplicate or a merge source must not overwrite real
            # ones: NUL cannot occur in the text, so these paths are never asked for.
            return (*top.path, f"\0{self.duplicates}\0{top.key}")
        return (*top.path, top.key)

    def _close(self) -> None:
        frame = self.stack.pop()
        if frame.mapping:
            self._apply_merges(frame)
        self._attach(frame.value, frame.size, frame.anchor)

    def _apply_merges(self, frame: _Frame) -> None:
        """YAML merge keys (``<<: *base``): explicit keys win, earlier sources win."""
        for source, where in frame.merges:
            parts = source if isinstance(source, list) else [source]
            if not all(isinstance(part, dict) for part in parts):
                self.problems.append(
                    Problem(where, f"{_label(frame.path)}: '<<' must merge a mapping or a list "
                            "of mappings")
                )
                continue
            for part in parts:
                for key, item in part.items():
                    if key not in frame.value:
                        frame.value[key] = item
                        self.keys[(*frame.path, key)] = where
                        self.values.setdefault((*frame.path, key), where)

    def _attach(self, value: JSON, size: int, anchor: str | None) -> None:
        if anchor is not None:
            self.anchors[anchor] = (value, size)
        if not self.stack:
            self.root = value
            self.done = True
            return
        top = self.stack[-1]
        top.size += size
        if not top.mapping:
            top.value.append(value)
            return
        key = top.key
        assert key is not None
        if top.key_is_merge:
            top.merges.append((value, top.key_at or self.start))
        elif not top.key_discarded:
            top.value[key] = value
        top.key = None

    def _check_tag(
        self, tag: str | None, allowed: tuple[str, ...], path: DocPath, where: SourceLocation
    ) -> bool:
        if tag is None or tag == "!" or tag in allowed:
            return True
        shown = "!!" + tag[len(_TAG):] if tag.startswith(_TAG) else tag
        self.problems.append(Problem(where, f"{_label(path)}: unsupported YAML tag {shown}"))
        return False

    def _scalar(self, event: Any, path: DocPath, where: SourceLocation) -> JSON:
        """A scalar's value by the YAML 1.2 core schema; explicit tags are honoured."""
        text: str = event.value
        tag: str | None = event.tag
        if tag is None or tag == "!":
            return resolve_plain_scalar(text) if event.implicit[0] else text
        core = tuple(_TAG + name for name in ("str", "int", "float", "bool", "null"))
        if not self._check_tag(tag, core, path, where) or tag == _TAG + "str":
            return text
        value = resolve_plain_scalar(text)
        wanted = tag[len(_TAG):]
        kinds = {"int": (int,), "float": (float, int), "bool": (bool,), "null": (type(None),)}
        mismatched = isinstance(value, bool) and wanted != "bool"
        if mismatched or not isinstance(value, kinds[wanted]):
            self.problems.append(Problem(where, f"{_label(path)}: {text!r} is not a !!{wanted}"))
            return text
        if wanted == "float" and isinstance(value, int):
            return float(value)
        return value


def resolve_plain_scalar(text: str) -> JSON:
    """Plain scalars: null, booleans, integers and finite floats; everything else is text.

    Public because ``export`` quotes exactly the strings this would read as something else."""
    if text[:1] not in _MAYBE_NOT_TEXT:  # most values: names, ids, prose
        return text
    if _NULL.match(text):
        return None
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    if len(text) <= _MAX_INT_DIGITS:
        if _INT.match(text):
            return int(text)
        if _INT_OCT.match(text):
            return int(text[2:], 8)
        if _INT_HEX.match(text):
            return int(text[2:], 16)
        if _FLOAT.match(text):
            number = float(text)
            return number if math.isfinite(number) else text
    return text


