"""Where each key and value of a document was written, kept per collection and looked up lazily.

The reader sees a million and a half values for 100,000 runs, and a location is asked for only
by a problem or once per run, so it stores the cheapest thing it can: per collection, the
0-based line and column of each entry as plain integers in tuples. A path is resolved into a
``SourceLocation`` only when ``ValueLocations`` / ``KeyLocations`` (read-only mappings from a
``DocPath``, which is what ``Document.values`` and ``Document.keys`` are) are asked.

The tree (``Located``): a value is ``(line, column)`` when nothing inside it is located (a
scalar, or a value reached through an alias), ``(line, column, entries)`` for a mapping (a dict
from each key to ``(key line, key column, *value)`` where ``value`` is a 2- or 3-tuple) and
``(line, column, items)`` for a sequence (a list of located values).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, TypeAlias

from reconciler.manifest.documents import DocPath
from reconciler.model import SourceLocation

__all__ = ["KeyLocations", "Located", "ValueLocations"]

#: A located value, as described in the module's docstring (recursive, so loosely typed).
Located: TypeAlias = tuple[Any, ...]


def _entry_value(entry: Located) -> Located:
    """The located value of a mapping entry ``(key line, key column, *value)``."""
    return (entry[2], entry[3]) if len(entry) == 4 else entry[2]


def _walk(located: Located | None, path: DocPath) -> Located | None:
    """The located value at ``path`` below ``located``, if it was recorded."""
    for part in path:
        if located is None or len(located) != 3:
            return None
        inner = located[2]
        if type(inner) is dict:
            entry = inner.get(part) if type(part) is str else None
            located = None if entry is None else _entry_value(entry)
        elif type(part) is int and 0 <= part < len(inner):
            located = inner[part]
        else:
            return None
    return located


def _paths(located: Located, path: DocPath) -> Iterator[tuple[DocPath, Located, Located | None]]:
    """Every recorded path below ``located``: its value, and its key entry for mapping entries."""
    if len(located) != 3:
        return
    inner = located[2]
    if type(inner) is dict:
        for key, entry in inner.items():
            value = _entry_value(entry)
            yield (*path, key), value, entry
            yield from _paths(value, (*path, key))
    else:
        for index, value in enumerate(inner):
            yield (*path, index), value, None
            yield from _paths(value, (*path, index))


class _Locations(Mapping[DocPath, SourceLocation]):
    """A read-only view of a located tree; subclasses say what a path's location is."""

    __slots__ = ("_file", "_root")

    def __init__(self, file: str, root: Located) -> None:
        self._file = file
        self._root = root

    def _find(self, path: DocPath) -> Located | None:
        raise NotImplementedError

    def get(self, path: DocPath, default: Any = None) -> Any:
        found = self._find(path)
        if found is None:
            return default
        return SourceLocation(self._file, found[0] + 1, found[1] + 1)

    def __getitem__(self, path: DocPath) -> SourceLocation:
        found = self.get(path)
        if found is None:
            raise KeyError(path)
        location: SourceLocation = found
        return location

    def __contains__(self, path: object) -> bool:
        return isinstance(path, tuple) and self._find(path) is not None

    def __len__(self) -> int:
        return sum(1 for _ in self)


class ValueLocations(_Locations):
    """Path → where its value starts, for every value written in the document (``()`` too)."""

    __slots__ = ()

    def _find(self, path: DocPath) -> Located | None:
        return _walk(self._root, path)

    def __iter__(self) -> Iterator[DocPath]:
        yield ()
        for path, _, _ in _paths(self._root, ()):
            yield path


class KeyLocations(_Locations):
    """Path of a mapping entry → where its key starts (a merged entry: at its ``<<``)."""

    __slots__ = ()

    def _find(self, path: DocPath) -> Located | None:
        if not path:
            return None
        parent = _walk(self._root, path[:-1])
        if parent is None or len(parent) != 3 or type(parent[2]) is not dict:
            return None
        entry: Located | None = parent[2].get(path[-1])
        return entry

    def __iter__(self) -> Iterator[DocPath]:
        for path, _, entry in _paths(self._root, ()):
            if entry is not None:
                yield path
