"""The JSON Schemas that are the authority on reconciler's file formats.

The top-level ``schemas/`` folder of the repository is a link to this package, so editors
and CI see the same files the installed tool loads. ``reconciler schema NAME`` prints one of
them as shipped, so that a project using the tool from PyPI can point its editor at a local
copy (each schema's ``$id`` names it; it is an identifier, not a download address).
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

#: How a schema file is named in this package: ``<name>.schema.json``.
SUFFIX = ".schema.json"


@cache
def load_schema(name: str) -> dict[str, Any]:
    """Load ``<name>.schema.json`` (e.g. ``manifest``, ``plan``) from the installed package."""
    schema: dict[str, Any] = json.loads(schema_text(name))
    return schema


def schema_names() -> tuple[str, ...]:
    """Every schema the package ships, by name, sorted (what ``reconciler schema`` offers)."""
    files = resources.files(__name__).iterdir()
    return tuple(sorted(f.name.removesuffix(SUFFIX) for f in files if f.name.endswith(SUFFIX)))


def schema_text(name: str) -> str:
    """The schema file exactly as shipped, ending with a newline (what editors should load)."""
    text = resources.files(__name__).joinpath(f"{name}{SUFFIX}").read_text("utf-8")
    return text if text.endswith("\n") else text + "\n"


def describe_schemas() -> str:
    """One line per schema, ``name  $id  title``, for ``reconciler schema --list``."""
    rows = [(name, str(load_schema(name).get("$id", "(no $id)")),
             str(load_schema(name).get("title", ""))) for name in schema_names()]
    name_width = max(len(name) for name, _, _ in rows)
    id_width = max(len(id_) for _, id_, _ in rows)
    lines = [f"{name:<{name_width}}  {id_:<{id_width}}  {title}".rstrip()
             for name, id_, title in rows]
    return "\n".join(lines) + "\n"
