"""The one package that speaks HTTP: an async Assistants v2 client for runs and threads.

Why its own client rather than the official SDK: bounded concurrency over a few small
connection pools, a rate-limit gate shared by every request in flight, and a retry policy
that knows a ``createRun`` is not idempotent (the API honours no idempotency key), so an
ambiguous failure is reported as :class:`AmbiguousResultError` for the caller to resolve from
live state instead of being retried blindly. Every HTTP status becomes a typed exception in
one place.

The host is trusted for nothing: the base URL is checked before any request (TLS always
verified, the key never sent in clear to a host that is not this machine without an opt-in),
every attempt has one deadline for connect, send and the whole answer, answers are read
incrementally and refused past a size cap (after decompression, which is done here so that it
is bounded too), JSON is refused past a nesting depth before it is parsed, server-suggested
waits are capped, pagination refuses to loop, and whatever text the server sends is sanitized
before it can reach a terminal.

The package's public face; import from here, not from the rooms, which are:

- ``settings``: ``ClientSettings``, the base URL check (``validate_base_url``,
  ``insecure_warning``), TLS contexts, header and limit checks;
- ``text``: ``sanitize``, server text made fit for one terminal line, and message numbers;
- ``answers``: JSON within a nesting depth, an error answer as its typed error
  (``error_from_response``);
- ``retry``: how a request may be retried, server wait hints, backoff (``retry_delay``);
- ``reading``: one answer read off the wire, bounded and decompressed, then interpreted;
- ``pacing``: ``Pacer``, request starts spaced from the rate-limit headers once the allowance
  runs low (no delay while plenty remains);
- ``http_client``: ``HttpClient``, the only code that sends requests (pools, 429 gate, pacing,
  the deadline of each attempt, retries);
- ``trace``: the request hook, each attempt reported to ``REQUEST_LOG`` as a
  ``RequestRecord`` (``--verbose`` attaches a handler);
- ``assistants``: ``AssistantsClient``, the run and thread endpoints, and run-list paging.
"""

from __future__ import annotations

from reconciler.client.answers import error_from_response
from reconciler.client.assistants import AssistantsClient
from reconciler.client.http_client import BETA_HEADER, Clock, Sleep
from reconciler.client.reading import JSONObject
from reconciler.client.retry import retry_delay
from reconciler.client.settings import (
    DEFAULT_BASE_URL,
    AuthStyle,
    ClientSettings,
    insecure_warning,
    validate_base_url,
)
from reconciler.client.text import sanitize
from reconciler.client.trace import REQUEST_LOG, RequestRecord

__all__ = [
    "BETA_HEADER",
    "DEFAULT_BASE_URL",
    "REQUEST_LOG",
    "AssistantsClient",
    "AuthStyle",
    "ClientSettings",
    "Clock",
    "JSONObject",
    "RequestRecord",
    "Sleep",
    "error_from_response",
    "insecure_warning",
    "retry_delay",
    "sanitize",
    "validate_base_url",
]
