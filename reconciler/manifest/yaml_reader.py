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
import sys
from collections.abc import Callable
from typing import Any, NoReturn

import yaml

from reconciler.manifest.documents import DocPath, Document, Problem
from reconciler.manifest.documents import format_path as _label
from reconciler.manifest.locations import KeyLocations, Located, ValueLocations
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
#: Keys, and values in mappings up to this long, are interned: 100,000 runs spell the same few
#: keys and values (a thread id, an assistant, a team) a million times, and one string each
#: is less memory, and less to pickle when a worker process loads half the files.
_SHORT = 64
_intern = sys.intern

#: Characters YAML refuses (its printable set, inverted): control characters, NUL, surrogates.
_UNPRINTABLE = re.compile(
    "[^\x09\x0a\x0d\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]"
)
_TAG = "tag:yaml.org,2002:"
#: First characters of every plain scalar the core schema reads as other than text ("" too).
_MAYBE_NOT_TEXT = frozenset({"", *"~nNtTfF+-.0123456789"})
#: First characters of the numbers among them; the others are exactly these words.
_NUMBER_START = frozenset("+-.0123456789")
_WORDS: dict[str, JSON] = {
    **dict.fromkeys(("", "~", "null", "Null", "NULL"), None),
    **dict.fromkeys(("true", "True", "TRUE"), True),
    **dict.fromkeys(("false", "False", "FALSE"), False),
}
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
    reader: _DocumentReader | None = None
    document: Document | None = None
    loader = _Loader(text)
    next_event = loader.get_event
    try:
        while True:  # the parser's own loop: yaml.parse adds two Python calls per event
            event = next_event()
            kind = type(event)
            if kind is yaml.DocumentStartEvent:
                reader = _DocumentReader(file, next_event)
                document = reader.read()  # an abandoned one leaves its rest to this loop
            elif kind is yaml.DocumentEndEvent:
                if reader is not None:
                    problems.extend(reader.problems)
                    if document is not None:
                        documents.append(document)
                reader = document = None
            elif kind is yaml.StreamEndEvent or event is None:
                break
    except yaml.MarkedYAMLError as exc:
        if reader is not None:
            problems.extend(reader.problems)
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
    """Stops reading one document; the problem says why."""


_SCALAR = yaml.ScalarEvent
_ALIAS = yaml.AliasEvent
_MAPPING_START = yaml.MappingStartEvent
_MAPPING_END = yaml.MappingEndEvent
_SEQUENCE_END = yaml.SequenceEndEvent
_CORE_TAGS = tuple(_TAG + name for name in ("str", "int", "float", "bool", "null"))
_TAG_TYPES: dict[str, tuple[type, ...]] = {
    "int": (int,), "float": (float, int), "bool": (bool,), "null": (type(None),)
}


class _DocumentReader:
    """Reads one document's values from YAML events, recording where each was written.

    Recursive descent: each collection is read by a loop of its own (``_mapping``,
    ``_sequence``) with its state in locals, and a plain scalar is read inline, so that the
    common event costs a few attribute reads. Locations are kept as in ``locations``.
    """

    def __init__(self, file: str, next_event: Callable[[], Any]) -> None:
        self.file = file
        self.next_event = next_event
        self.problems: list[Problem] = []
        self.anchors: dict[str, tuple[JSON, int]] = {}
        self.expanded = 0
        self.duplicates = 0
        self.aborted = False

    def read(self) -> Document | None:
        """The document whose root is the next event; None when it is empty or abandoned."""
        try:
            root, _, located = self._node(self.next_event(), (), 0)
        except _Abort as abort:
            self.aborted = True
            self.problems.append(abort.args[0])
            return None
        if root is None:
            return None
        return Document(
            self.file,
            root,
            self._where(located),
            ValueLocations(self.file, located),
            KeyLocations(self.file, located),
        )

    def _where(self, at: Located) -> SourceLocation:
        return SourceLocation(self.file, at[0] + 1, at[1] + 1)

    def _node(self, event: Any, path: DocPath, depth: int) -> tuple[JSON, int, Located]:
        """Any value at ``path`` (a collection, an alias, a tagged or anchored scalar): its
        value, its size counted as aliases expand, and where it and its contents are."""
        kind = type(event)
        mark = event.start_mark
        at = (mark.line, mark.column)
        if kind is _SCALAR:
            value = self._scalar(event, path, at)
            if event.anchor is not None:
                self.anchors[event.anchor] = (value, 1)
            return value, 1, at
        if kind is _ALIAS:
            value, size = self._alias(event.anchor, at)
            return value, size, at
        if depth >= MAX_DEPTH:
            raise _Abort(
                Problem(self._where(at), f"nesting deeper than {MAX_DEPTH} levels; refusing")
            )
        is_mapping = kind is _MAPPING_START
        self._check_tag(event.tag, (_TAG + ("map" if is_mapping else "seq"),), path, at)
        read = self._mapping if is_mapping else self._sequence
        value, size, inner = read(path, depth + 1)
        if event.anchor is not None:
            self.anchors[event.anchor] = (value, size)
        return value, size, (*at, inner)

    def _alias(self, anchor: str, at: Located) -> tuple[JSON, int]:
        found = self.anchors.get(anchor)
        if found is None:
            raise _Abort(Problem(self._where(at), f"alias *{anchor} names no anchor before it"))
        self.expanded += found[1]
        if self.expanded > MAX_ALIAS_NODES:
            raise _Abort(
                Problem(
                    self._where(at),
                    f"aliases expand this document beyond {MAX_ALIAS_NODES:,} nodes; "
                    "refusing it (a YAML bomb?)",
                )
            )
        return found

    def _mapping(self, path: DocPath, depth: int) -> tuple[JSON, int, dict[str, Located]]:
        """A mapping's entries up to its end; merge keys (``<<``) are applied at the end."""
        value: dict[str, JSON] = {}
        entries: dict[str, Located] = {}  # key → (key line, key column, *located value)
        merges: list[tuple[JSON, Located]] = []
        size = 1
        next_event = self.next_event
        scalar = _SCALAR
        while True:
            event = next_event()
            if type(event) is not scalar:
                if type(event) is _MAPPING_END:
                    break
                self._not_a_key(event, path)
            key: str = _intern(event.value)
            mark: Any = event.start_mark
            key_line = mark.line
            key_column = mark.column
            if key == "<<" and event.implicit[0]:
                item, item_size = self._hidden(key, path, depth)
                merges.append((item, (key_line, key_column)))
                size += item_size
                continue
            if key in entries:
                self._duplicate(path, key, entries[key], (key_line, key_column))
                size += self._hidden(key, path, depth)[1]
                continue
            event = next_event()
            if type(event) is scalar and event.tag is None and event.anchor is None:
                text = event.value
                if len(text) <= _SHORT:
                    text = _intern(text)
                value[key] = resolve_plain_scalar(text) if event.implicit[0] else text
                mark = event.start_mark
                entries[key] = (key_line, key_column, mark.line, mark.column)
                size += 1
                continue
            item, item_size, located = self._node(event, (*path, key), depth)
            value[key] = item
            if len(located) == 2:
                entries[key] = (key_line, key_column, *located)
            else:
                entries[key] = (key_line, key_column, located)
            size += item_size
        for source, at in merges:
            self._merge(value, entries, path, source, at)
        return value, size, entries

    def _not_a_key(self, event: Any, path: DocPath) -> NoReturn:
        at = (event.start_mark.line, event.start_mark.column)
        message = f"{_label(path)}: mapping keys must be plain strings"
        raise _Abort(Problem(self._where(at), message))

    def _hidden(self, key: str, path: DocPath, depth: int) -> tuple[JSON, int]:
        """The value of a merge key or a duplicate key, read at a path no problem asks for (NUL
        cannot occur in the text) but that names it in messages, as it always has."""
        value, size, _ = self._node(
            self.next_event(), (*path, f"\0{self.duplicates}\0{key}"), depth
        )
        return value, size

    def _duplicate(self, path: DocPath, key: str, first: Located, at: Located) -> None:
        """A key written twice: the first wins, the second is reported (and read, not kept)."""
        self.duplicates += 1
        self.problems.append(
            Problem(
                self._where(at),
                f"{_label((*path, key))}: duplicate key {key!r} (first at line "
                f"{first[0] + 1}, column {first[1] + 1})",
            )
        )

    def _merge(
        self, value: dict[str, JSON], entries: dict[str, Located], path: DocPath, source: JSON,
        at: Located,
    ) -> None:
        """YAML merge keys (``<<: *base``): explicit keys win, earlier sources win; a merged
        key and its value are located at the ``<<``."""
        parts = source if isinstance(source, list) else [source]
        if not all(isinstance(part, dict) for part in parts):
            self.problems.append(
                Problem(self._where(at), f"{_label(path)}: '<<' must merge a mapping or a list "
                        "of mappings")
            )
            return
        for part in parts:
            assert isinstance(part, dict)
            for key, item in part.items():
                if key not in value:
                    value[key] = item
                    entries[key] = (*at, *at)

    def _sequence(self, path: DocPath, depth: int) -> tuple[JSON, int, list[Located]]:
        value: list[JSON] = []
        items: list[Located] = []
        size = 1
        next_event = self.next_event
        while True:
            event = next_event()
            kind = type(event)
            if kind is _SCALAR and event.tag is None and event.anchor is None:
                text = event.value
                value.append(resolve_plain_scalar(text) if event.implicit[0] else text)
                mark = event.start_mark
                items.append((mark.line, mark.column))
                size += 1
            elif kind is _SEQUENCE_END:
                break
            else:
                item, item_size, located = self._node(event, (*path, len(value)), depth)
                value.append(item)
                items.append(located)
                size += item_size
        return value, size, items

    def _check_tag(
        self, tag: str | None, allowed: tuple[str, ...], path: DocPath, at: Located
    ) -> bool:
        if tag is None or tag == "!" or tag in allowed:
            return True
        shown = "!!" + tag[len(_TAG):] if tag.startswith(_TAG) else tag
        self.problems.append(
            Problem(self._where(at), f"{_label(path)}: unsupported YAML tag {shown}")
        )
        return False

    def _scalar(self, event: Any, path: DocPath, at: Located) -> JSON:
        """A scalar's value by the YAML 1.2 core schema; explicit tags are honoured."""
        text: str = event.value
        tag: str | None = event.tag
        if tag is None or tag == "!":
            return resolve_plain_scalar(text) if event.implicit[0] else text
        if not self._check_tag(tag, _CORE_TAGS, path, at) or tag == _TAG + "str":
            return text
        value = resolve_plain_scalar(text)
        wanted = tag[len(_TAG):]
        mismatched = isinstance(value, bool) and wanted != "bool"
        if mismatched or not isinstance(value, _TAG_TYPES[wanted]):
            self.problems.append(
                Problem(self._where(at), f"{_label(path)}: {text!r} is not a !!{wanted}")
            )
            return text
        if wanted == "float" and isinstance(value, int):
            return float(value)
        return value

def resolve_plain_scalar(text: str) -> JSON:
    """Plain scalars: null, booleans, integers and finite floats; everything else is text.

    Public because ``export`` quotes exactly the strings this would read as something else."""
    first = text[:1]
    if first not in _MAYBE_NOT_TEXT:  # most values: names, ids, prose
        return text
    if first not in _NUMBER_START:  # null, a boolean, or text such as "thread_a"
        return _WORDS.get(text, text)
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


