"""Registers the end-to-end fixtures (defined in ``harness.py``)."""

from tests.e2e.harness import api, env, server, ws

__all__ = ["api", "env", "server", "ws"]
