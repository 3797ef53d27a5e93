"""The request hook: how each attempt ended, for ``--verbose`` (or any logging handler).

The client reports every attempt to :data:`REQUEST_LOG` as it ends; nothing listens unless the
command line (``--verbose``) or a library user attaches a handler, so the client itself never
prints. A record holds no header, so never the key.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import httpx

from reconciler.client.text import sanitize

#: Every attempt, as it ends, is reported here (a :class:`RequestRecord` in ``extra``): the
#: hook ``--verbose`` attaches a handler to at the edge. Without one it costs one level check.
REQUEST_LOG = logging.getLogger("reconciler.requests")


@dataclass(frozen=True)
class RequestRecord:
    """One attempt, as ``--verbose`` shows it: method, path and query, status, time taken.

    No header is kept, so the key can never be in one.
    """

    method: str
    path: str  # with its query string
    status: int | None  # None: no answer (``failure`` says why)
    seconds: float
    attempt: int = 0  # 0: the first attempt; then the retry's number
    failure: str | None = None

    def __str__(self) -> str:
        outcome = str(self.status) if self.status is not None else (self.failure or "no answer")
        retry = f" (retry {self.attempt})" if self.attempt else ""
        return f"{self.method} {self.path} → {outcome} in {self.seconds * 1000:.0f} ms{retry}"


def report_attempt(request: httpx.Request, status: int | None, started: float, attempt: int,
                   failure: BaseException | None) -> None:
    """Tell :data:`REQUEST_LOG` how one attempt ended (only when someone listens)."""
    if not REQUEST_LOG.isEnabledFor(logging.DEBUG):
        return
    why = None
    if status is None:
        timed_out = isinstance(failure, TimeoutError | httpx.TimeoutException)
        why = "timed out" if timed_out else (
            f"no answer ({type(failure).__name__})" if failure is not None else "no answer")
    record = RequestRecord(request.method, sanitize(request.url.raw_path.decode("ascii"), 300),
                           status, time.monotonic() - started, attempt, why)
    REQUEST_LOG.debug("%s", record, extra={"request": record})
