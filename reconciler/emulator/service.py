"""The emulated service: its state, its fixtures, and dispatch of the 23 operations.

Requests arrive here already matched to an operation and validated against the spec
(``reconciler.emulator.app``). ``Emulator.handle`` runs the operation's handler — one of the
resource modules in ``reconciler.emulator.resources``, which apply the service's own rules —
inside one store transaction, so each request is all-or-nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from os import PathLike

from reconciler.emulator.config import EmulatorConfig
from reconciler.emulator.encoded import plain
from reconciler.emulator.fixtures import Fixtures, load_fixtures
from reconciler.emulator.resources import assistants, messages, runs, steps, threads
from reconciler.emulator.resources.common import JSON, Body, Context, Operation
from reconciler.emulator.store import Store

OPERATIONS: dict[str, Operation] = {
    **assistants.OPERATIONS,
    **threads.OPERATIONS,
    **messages.OPERATIONS,
    **runs.OPERATIONS,
    **steps.OPERATIONS,
}
"""Every operation's handler, by the spec's operation id."""


class Emulator:
    """The state and rules of one emulated Assistants v2 service."""

    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self.timing = config.timing
        self.store = Store(config.state_path)
        self.context = Context(self.store, config.timing, config.seed)
        fixtures = config.fixtures
        if isinstance(fixtures, (str, PathLike)):
            fixtures = load_fixtures(fixtures)
        if fixtures is not None:
            self._load_fixtures(fixtures)

    def close(self) -> None:
        self.store.close()

    def now(self) -> float:
        return float(self.config.clock())

    def new_id(self, prefix: str) -> str:
        """A unique id: a persisted serial (so ids sort by creation) and seeded noise."""
        return self.context.new_id(prefix)

    def _load_fixtures(self, fixtures: Fixtures) -> None:
        """Create the fixtures' assistants and threads that are not there yet."""
        now = self.now()
        with self.store.transaction():
            for item in fixtures.assistants:
                if not self.store.exists("assistants", item["id"]):
                    body = {k: v for k, v in item.items() if k != "id"}
                    self.store.insert("assistants", item["id"],
                                      assistants.new_assistant(item["id"], body, now))
            for item in fixtures.threads:
                if not self.store.exists("threads", item["id"]):
                    body = {k: v for k, v in item.items() if k != "id"}
                    threads.insert_thread(self.context, item["id"], body, now)

    def observe(self, thread_id: str, run_id: str, at: float) -> Body | None:
        """A run's record at ``at``, what finished runs leave settled first; None once gone."""
        with self.store.transaction():
            if not self.store.exists("threads", thread_id):
                return None
            runs.settle(self.context, thread_id, at)
            found: Body | None = self.store.get("runs", run_id, parent=thread_id)
            return found

    def thread(self, thread_id: str) -> Body | None:
        """The stored thread, or None."""
        found: Body | None = self.store.get("threads", thread_id)
        return found

    def handle(self, operation_id: str, params: Mapping[str, str], query: Mapping[str, str],
               body: Body) -> JSON:
        """Perform one operation atomically and return its response body as plain JSON."""
        return plain(self.answer(operation_id, params, query, body))

    def answer(self, operation_id: str, params: Mapping[str, str], query: Mapping[str, str],
               body: Body) -> JSON:
        """``handle``, its body perhaps holding parts already encoded (``encoded.dumps``
        writes it): what the app sends."""
        handler = OPERATIONS[operation_id]
        now = self.now()
        with self.store.transaction():
            return handler(self.context, now=now, query=query, body=body, **params)
