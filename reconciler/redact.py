"""One redactor at the output boundary: no secret reaches the terminal, a log or a file.

Call sites do not each remember to redact: the CLI wraps standard output and standard error
for the whole command (progress lines, reports, ``--wait`` output, export, query results,
``--debug`` tracebacks), and every file it writes goes through :meth:`Redactor.redact` too. A
server that echoes the key in an error, a run's ``last_error`` that quotes it, a header dumped
into a traceback: each is caught here, in its plain, URL-encoded and base64 forms.
"""

from __future__ import annotations

import base64
import contextlib
import os
import sys
from collections.abc import Iterable, Iterator, Mapping
from typing import TextIO
from urllib.parse import quote, unquote, urlsplit

MASK = "***"
#: Shorter values are not secrets worth hiding (and would mask ordinary words).
_MIN_SECRET = 6
#: Environment variables that hold a key, or a URL that may hold a password.
SECRET_VARIABLES = ("OPENAI_API_KEY", "AZURE_OPENAI_API_KEY")
URL_VARIABLES = ("RECONCILER_LOCK_URL",)


def _forms(secret: str) -> set[str]:
    """The spellings a secret takes on the wire and in dumps."""
    forms = {secret, quote(secret, safe=""), quote(secret)}
    for raw in (secret, f"Bearer {secret}", f":{secret}"):
        data = raw.encode("utf-8")
        forms.add(base64.b64encode(data).decode("ascii").rstrip("="))
        forms.add(base64.urlsafe_b64encode(data).decode("ascii").rstrip("="))
    return {form for form in forms if len(form) >= _MIN_SECRET}


class Redactor:
    """Replaces every known form of every secret with ``***``; longest forms first."""

    def __init__(self, secrets: Iterable[str | None]) -> None:
        forms: set[str] = set()
        for secret in secrets:
            if secret and len(secret) >= _MIN_SECRET:
                forms |= _forms(secret)
        self._forms = sorted(forms, key=len, reverse=True)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Redactor:
        """The secrets this process may hold: API keys, and passwords in lock URLs."""
        env = os.environ if env is None else env
        secrets: list[str | None] = [env.get(name) for name in SECRET_VARIABLES]
        for name in URL_VARIABLES:
            password = _password(env.get(name))
            secrets.extend([password, unquote(password) if password else None])
        return cls(secrets)

    def redact(self, text: str) -> str:
        for form in self._forms:
            if form in text:
                text = text.replace(form, MASK)
        return text

    def __bool__(self) -> bool:
        return bool(self._forms)


def _password(url: str | None) -> str | None:
    if not url:
        return None
    try:
        return urlsplit(url).password
    except ValueError:
        return None


class RedactingStream:
    """A text stream that redacts everything written through it (stdout, stderr)."""

    def __init__(self, stream: TextIO, redactor: Redactor) -> None:
        self._stream = stream
        self._redactor = redactor

    def write(self, text: str) -> int:
        self._stream.write(self._redactor.redact(text))
        return len(text)

    def writelines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str) -> object:  # isatty, fileno, flush, encoding, …
        return getattr(self._stream, name)


@contextlib.contextmanager
def redacted_output(redactor: Redactor | None = None) -> Iterator[None]:
    """Standard output and standard error through one redactor (from the environment) for the
    whole command, so no secret reaches the terminal or a log, whoever prints it."""
    redactor = Redactor.from_env() if redactor is None else redactor
    out, error = sys.stdout, sys.stderr
    sys.stdout = RedactingStream(out, redactor)
    sys.stderr = RedactingStream(error, redactor)
    try:
        yield
    finally:
        sys.stdout, sys.stderr = out, error
