"""The edge where manifests come from: paths on the command line → (name, text) pairs.

Files are read with limits so that hostile input is refused before it costs memory: a file
over ``MAX_FILE_BYTES`` is never read whole, devices and pipes are not read at all, and binary
content (NUL bytes, invalid UTF-8) is reported at its line and column.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence

from reconciler.manifest.documents import Problem
from reconciler.model import SourceLocation

__all__ = ["MANIFEST_SUFFIXES", "MAX_FILE_BYTES", "find_manifest_files", "read_sources"]

#: Largest manifest file read; a real one is a few kilobytes.
MAX_FILE_BYTES = 8 * 1024 * 1024
#: What a directory contributes: its YAML files, at any depth.
MANIFEST_SUFFIXES = (".yaml", ".yml")


def read_sources(paths: Sequence[str]) -> tuple[list[tuple[str, str]], list[Problem]]:
    """Expand ``paths`` and read every manifest: ``(display name, text)`` pairs and problems.

    A file is read whatever its name; a directory gives its ``*.yaml`` / ``*.yml`` files,
    recursively, sorted, skipping hidden entries. A file named twice is read once.
    """
    sources: list[tuple[str, str]] = []
    problems: list[Problem] = []
    seen: set[str] = set()
    for path in paths:
        files, found = find_manifest_files(path)
        problems.extend(found)
        for file in files:
            identity = os.path.realpath(file)
            if identity in seen:
                continue
            seen.add(identity)
            text, problem = read_text(file)
            if problem is not None:
                problems.append(problem)
            elif text is not None:
                sources.append((file, text))
    return sources, problems


def find_manifest_files(path: str) -> tuple[list[str], list[Problem]]:
    """The files one command-line path stands for."""
    whole = SourceLocation(path, 0, 0)
    if not os.path.exists(path):
        return [], [Problem(whole, "no such file or directory")]
    if not os.path.isdir(path):
        return [path], []
    found: list[str] = []
    for root, dirs, files in os.walk(path):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found.extend(
            os.path.join(root, f)
            for f in sorted(files)
            if f.endswith(MANIFEST_SUFFIXES) and not f.startswith(".")
        )
    if not found:
        return [], [Problem(whole, "directory holds no manifests (*.yaml, *.yml)")]
    return sorted(found, key=lambda f: os.path.relpath(f, path).split(os.sep)), []


def read_text(path: str, limit: int = MAX_FILE_BYTES) -> tuple[str | None, Problem | None]:
    """The UTF-8 text of one file, or the problem that stops it being read."""
    whole = SourceLocation(path, 0, 0)
    try:
        # Checked before opening too: opening a pipe would block until someone writes to it.
        if not stat.S_ISREG(os.stat(path).st_mode):
            return None, Problem(whole, "not a regular file")
        with open(path, "rb") as handle:
            mode = os.fstat(handle.fileno()).st_mode
            if not stat.S_ISREG(mode):
                return None, Problem(whole, "not a regular file")
            data = handle.read(limit + 1)
    except OSError as exc:
        return None, Problem(whole, f"cannot read: {exc.strerror or exc}")
    if len(data) > limit:
        return None, Problem(
            whole, f"file is larger than {limit // (1024 * 1024)} MiB; refusing to read it"
        )
    nul = data.find(b"\0")
    if nul >= 0:
        return None, Problem(_byte_location(path, data, nul), "binary file (NUL byte)")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return None, Problem(
            _byte_location(path, data, exc.start),
            f"not UTF-8 text (byte 0x{data[exc.start]:02x})",
        )
    return text, None


def _byte_location(path: str, data: bytes, offset: int) -> SourceLocation:
    """Line and column of a byte offset, counting characters of the valid text before it."""
    line_start = data.rfind(b"\n", 0, offset) + 1
    column = len(data[line_start:offset].decode("utf-8", errors="replace")) + 1
    return SourceLocation(path, data.count(b"\n", 0, offset) + 1, column)
