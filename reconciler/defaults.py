"""Defaults and limits every layer agrees on, in a module that imports nothing.

The command line declares its flags from these at start-up; the config reader, the backend
and the views check against the same values. Keeping them here lets ``reconciler --help``
start without importing the HTTP client, the JSON Schema validator or YAML.
"""

from __future__ import annotations

__all__ = [
    "DEFAULT_EMULATOR_STATE",
    "MAX_CONCURRENCY",
    "MAX_WAIT_SECONDS",
    "PLAN_FORMATS",
    "VALIDATE_FORMATS",
]

#: Where ``--emulator`` keeps the embedded emulator's state.
DEFAULT_EMULATOR_STATE = ".reconciler/emulator.sqlite"
#: The most requests in flight at once, from ``--concurrency`` or the file alike.
MAX_CONCURRENCY = 1024
#: Longest wait accepted for the lock or the settle window: a day.
MAX_WAIT_SECONDS = 86_400.0
#: How ``plan`` (and ``show``) can print a plan.
PLAN_FORMATS = ("text", "json", "markdown", "github")
#: What ``validate --format`` prints: sentences, workflow commands, or a JSON array.
VALIDATE_FORMATS = ("text", "github", "json")
