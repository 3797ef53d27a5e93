"""reconciler: GitOps for OpenAI Assistants v2 runs.

Declare runs in YAML, ``plan`` what would change against the live API, ``apply`` it.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
