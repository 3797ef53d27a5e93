"""The JSON Schemas that are the authority on reconciler's file formats.

The top-level ``schemas/`` folder of the repository is a link to this package, so editors
and CI see the same files the installed tool loads.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any


@cache
def load_schema(name: str) -> dict[str, Any]:
    """Load ``<name>.schema.json`` (e.g. ``manifest``, ``plan``) from the installed package."""
    text = resources.files(__name__).joinpath(f"{name}.schema.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema
