"""Modules executed on first use, so that a command pays only for the layers it touches.

``reconciler --help`` (and every usage error) needs click and the flags, not the HTTP client,
YAML, JSON Schema or rich: the CLI binds its application-layer modules through :func:`lazy`.
"""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType

__all__ = ["defer_httpx_command_line", "lazy"]

_HTTPX_CLI = "httpx._main"


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


def defer_httpx_command_line() -> None:
    """Keep ``import httpx`` from importing httpx's own command line (rich, pygments, click:
    about 55 ms of every API command's start-up when rich is installed, as it is here).

    ``httpx/__init__.py`` runs ``from ._main import main`` for the ``httpx`` console script
    only. A stand-in module takes its place until ``httpx.main()`` is called, which then
    imports the real one and runs it, so nothing of httpx is lost. Done once, before httpx is
    first imported; never when something imported httpx before reconciler.
    """
    if "httpx" in sys.modules or _HTTPX_CLI in sys.modules:
        return
    stand_in = ModuleType(_HTTPX_CLI, "Stands in for httpx's command line until it is used.")

    def main() -> None:
        if sys.modules.get(_HTTPX_CLI) is stand_in:
            del sys.modules[_HTTPX_CLI]
        real: ModuleType = importlib.import_module(_HTTPX_CLI)
        real.main()

    stand_in.main = main  # type: ignore[attr-defined]
    sys.modules[_HTTPX_CLI] = stand_in
