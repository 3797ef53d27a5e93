"""Fixtures: assistants and threads with fixed ids, created when the emulator starts if absent.

A fixtures file is YAML::

    assistants:
      - id: asst_demo            # required, must start with asst_
        model: gpt-4o            # then any CreateAssistantRequest field
        instructions: You help.
    threads:
      - id: thread_demo_reports  # required, must start with thread_
        metadata: {purpose: demo}  # then any CreateThreadRequest field

The embedded emulator loads ``demo.yaml`` beside this module (``DEMO_FIXTURES_PATH``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from os import PathLike, fspath
from typing import Any

import yaml

from reconciler.emulator.errors import EmulatorError
from reconciler.emulator.spec import operation_by_id
from reconciler.emulator.validation import validate_body

JSON = Any

DEMO_FIXTURES_PATH: str = str(resources.files("reconciler.emulator").joinpath("demo.yaml"))
_MAX_BYTES = 1_000_000


@dataclass(frozen=True)
class Fixtures:
    """Objects to create with fixed ids: each a request body plus its ``id``."""

    assistants: tuple[Mapping[str, JSON], ...] = ()
    threads: tuple[Mapping[str, JSON], ...] = ()


def load_fixtures(path: str | PathLike[str]) -> Fixtures:
    """Read and check a fixtures file; ``ValueError`` names the file and the bad entry."""
    name = fspath(path)
    try:
        with open(name, "rb") as handle:
            raw = handle.read(_MAX_BYTES + 1)
    except OSError as exc:
        raise ValueError(f"cannot read fixtures file {name}: {exc.strerror}") from None
    if len(raw) > _MAX_BYTES:
        raise ValueError(f"fixtures file {name} is larger than 1 MB")
    try:
        data = yaml.safe_load(raw) or {}
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        at = f":{where.line + 1}:{where.column + 1}" if where is not None else ""
        raise ValueError(f"{name}{at}: not valid YAML") from None
    return parse_fixtures(data, source=name)


def parse_fixtures(data: JSON, *, source: str = "<fixtures>") -> Fixtures:
    """Check already-decoded fixtures (a mapping with ``assistants`` and ``threads`` lists)."""
    if not isinstance(data, dict):
        raise ValueError(f"{source}: expected a mapping with 'assistants' and 'threads'")
    unknown = sorted(set(data) - {"assistants", "threads"})
    if unknown:
        raise ValueError(f"{source}: unknown key '{unknown[0]}' (expected assistants, threads)")
    assistants = _entries(data.get("assistants"), "assistants", "asst_", "createAssistant",
                          source)
    threads = _entries(data.get("threads"), "threads", "thread_", "createThread", source)
    return Fixtures(assistants, threads)


def _entries(
    items: JSON, key: str, prefix: str, operation_id: str, source: str
) -> tuple[Mapping[str, JSON], ...]:
    if items is None:
        return ()
    if not isinstance(items, list):
        raise ValueError(f"{source}: '{key}' must be a list")
    seen: set[str] = set()
    checked: list[Mapping[str, JSON]] = []
    for index, item in enumerate(items):
        where = f"{source}: {key}[{index}]"
        if not isinstance(item, dict):
            raise ValueError(f"{where}: expected a mapping")
        object_id = item.get("id")
        if not isinstance(object_id, str) or not object_id.startswith(prefix):
            raise ValueError(f"{where}: 'id' must be a string starting with {prefix}")
        if object_id in seen:
            raise ValueError(f"{where}: duplicate id {object_id}")
        seen.add(object_id)
        body = {k: v for k, v in item.items() if k != "id"}
        if operation_id == "createAssistant" and "model" not in body:
            raise ValueError(f"{where}: 'model' is required")
        try:
            validate_body(operation_by_id(operation_id), body)
        except EmulatorError as exc:
            raise ValueError(f"{where}: {exc.message}") from None
        checked.append(item)
    return tuple(checked)
