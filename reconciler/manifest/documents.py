"""The manifest model: located documents, merged runs, and the problems found in them.

Everything the reader, the merger and the checks pass between them lives here, as frozen
dataclasses over plain JSON values: a ``Document`` remembers where each key and value was
written, a ``MergedRun`` remembers which document path each merged value came from, and a
``Problem`` is one located sentence for a person. ``DocPath`` and ``format_path`` name places
inside a document (``runs[1].metadata["a b"]``). No parsing and no checking happen here.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeAlias

from reconciler.model import JSON, SourceLocation

__all__ = [
    "API_VERSION",
    "KIND",
    "DocPath",
    "Document",
    "MergedRun",
    "Problem",
    "format_path",
]

#: A path inside a document: mapping keys and list indexes, e.g. ``("runs", 1, "temperature")``.
DocPath: TypeAlias = tuple[str | int, ...]

#: The ``apiVersion`` and ``kind`` of the documents reconciler reads; others are not judged.
API_VERSION = "reconciler/v1"
KIND = "Runs"


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the input, where it is and what to do about it.

    A location with line 0 stands for the whole file (a path that does not exist, a file too
    large to read); it prints without line and column.
    """

    location: SourceLocation
    message: str

    def __str__(self) -> str:
        if self.location.line <= 0:
            return f"{self.location.file}: {self.message}"
        return f"{self.location}: {self.message}"

    @property
    def sort_key(self) -> tuple[str, int, int]:
        return (self.location.file, self.location.line, self.location.column)


@dataclass(frozen=True)
class Document:
    """One YAML document as plain JSON values, remembering where each key and value was written.

    ``values`` maps a path to where its value starts; ``keys`` maps the path of a mapping entry
    to where its key starts. Values reached through an alias have no entry of their own: they
    are located at the alias.
    """

    file: str
    value: JSON
    start: SourceLocation
    values: Mapping[DocPath, SourceLocation]
    keys: Mapping[DocPath, SourceLocation]

    def locate(self, path: DocPath, *, key: bool = False) -> SourceLocation:
        """Where ``path`` was written, or its nearest written ancestor."""
        if key and path in self.keys:
            return self.keys[path]
        for end in range(len(path), 0, -1):
            found = self.values.get(path[:end])
            if found is not None:
                return found
        return self.values.get((), self.start)


@dataclass(frozen=True)
class MergedRun:
    """A run's fields after ``defaults`` are merged in, and where each merged value came from.

    ``fields`` has no null values (a null clears a default). ``origins`` maps a path in
    ``fields`` (``("tools",)``, ``("metadata", "team")``) to the document path of the value it
    came from, so problems point at the line that must change.
    """

    document: Document
    index: int
    fields: Mapping[str, JSON]
    origins: Mapping[DocPath, DocPath]

    @property
    def path(self) -> DocPath:
        return ("runs", self.index)

    @property
    def name(self) -> str | None:
        name = self.fields.get("name")
        return name if isinstance(name, str) else None

    def source_path(self, path: DocPath) -> DocPath:
        """The document path a merged path came from (the run itself when it is unset)."""
        for end in range(len(path), 0, -1):
            origin = self.origins.get(path[:end])
            if origin is not None:
                return origin + path[end:]
        return self.path

    def locate(self, path: DocPath, *, key: bool = False) -> SourceLocation:
        return self.document.locate(self.source_path(path), key=key)

    def describe(self) -> str:
        """How messages name this run: ``run 'weekly-report'``."""
        return f"run {self.name!r}" if self.name else "this run"


def format_path(path: DocPath) -> str:
    """``("runs", 1, "metadata", "a b")`` → ``runs[1].metadata["a b"]``."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        elif part.replace("_", "").replace("-", "").isalnum() and part.isascii():
            text += f".{part}" if text else part
        else:
            text += f"[{json.dumps(part, ensure_ascii=False)}]"
    return text or "document"
