"""Modules executed on first use, so that a command pays only for the layers it touches.

``reconciler --help`` (and every usage error) needs click and the flags, not the HTTP client,
YAML, JSON Schema or rich: the CLI binds its application-layer modules through :func:`lazy`.
"""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType

__all__ = ["lazy"]


def lazy(name: str) -> ModuleType:
    """``name``, executed on first use: ``reconciler --help`` never pays for the layers below
    (the HTTP client, YAML, JSON Schema, rich) that only a command's work needs."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.find_spec(name)
    assert spec is not None and spec.loader is not None, name
    spec.loader = importlib.util.LazyLoader(spec.loader)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
