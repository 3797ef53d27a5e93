"""Writing files at the edge: atomically, and through the output redactor."""

from __future__ import annotations

from pathlib import Path

from reconciler.errors import ConfigError
from reconciler.redact import Redactor


def write_text_file(path: str, text: str) -> None:
    """Write atomically, so a crash never leaves half a file behind; never a secret in it."""
    target = Path(path)
    tmp = target.with_name(f".{target.name}.tmp")
    try:
        tmp.write_text(Redactor.from_env().redact(text), "utf-8")
        tmp.replace(target)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot write it ({exc.strerror or exc})") from exc
