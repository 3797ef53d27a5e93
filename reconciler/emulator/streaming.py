"""Streaming runs: the events ``reconciler.emulator.events`` scripts, paced and written as SSE.

A stream starts after its request succeeded (the run is created, or its outputs accepted, in
one transaction as without streaming), so request errors are ordinary JSON errors. Then each
beat waits for its instant on the emulator's clock — with ``instant`` timing nothing waits —
re-reads the run (settling it at its ending, so the reply is stored exactly as streamed) and
writes its events. A run cancelled or expired meanwhile ends the stream with that status; a
failure after the stream began is an ``error`` event. Each event is one body chunk, which
the knobs count when a fault cuts a stream in the middle.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from starlette.responses import StreamingResponse

from reconciler.emulator.events import (
    ENDINGS,
    Event,
    Opening,
    ending,
    error_event,
    render,
    script,
)
from reconciler.emulator.machine import Phase
from reconciler.emulator.resources.common import Body
from reconciler.emulator.resources.runs import phase
from reconciler.emulator.service import Emulator

logger = logging.getLogger("reconciler.emulator")

STREAMING: dict[str, Opening] = {
    "createRun": "create",
    "createThreadAndRun": "create_thread",
    "submitToolOuputsToRun": "submit",
}
"""The operations that stream with ``stream: true``, and how each stream opens."""

EVENT_STREAM = "text/event-stream"
_SERVER_ERROR = "The server had an error while processing your request. Sorry about that!"

Sleep = Callable[[float], Awaitable[None]]


def encode(event: Event) -> bytes:
    """One event on the wire: ``event: NAME``, ``data: JSON`` (or ``[DONE]``), a blank line."""
    data = event.data
    if not isinstance(data, str):
        data = json.dumps(data, separators=(",", ":"))
    return f"event: {event.name}\ndata: {data}\n\n".encode()


class RunStream:
    """The events of one run from its opening to ``done``, written as they fall due."""

    def __init__(self, emulator: Emulator, opening: Opening, run: Body,
                 thread: Body | None = None, sleep: Sleep = asyncio.sleep) -> None:
        self.emulator = emulator
        self.opening = opening
        self.thread_id: str = run["thread_id"]
        self.run_id: str = run["id"]
        self.thread = thread
        self._sleep = sleep

    async def chunks(self) -> AsyncIterator[bytes]:
        """The stream's body, one event per chunk; an unexpected failure is an error event."""
        try:
            async for event in self._events():
                yield encode(event)
        except Exception:
            logger.exception("emulator stream of %s failed", self.run_id)
            yield encode(error_event(_SERVER_ERROR))

    async def _events(self) -> AsyncIterator[Event]:
        ctx = self.emulator.context
        record = self.emulator.observe(self.thread_id, self.run_id, self.emulator.now())
        if record is None:
            yield self._gone()
            return
        for beat in script(ctx, record, self.opening):
            at = await self._wait(beat.at)
            record = self.emulator.observe(self.thread_id, self.run_id, at)
            if record is None:
                yield self._gone()
                return
            current = phase(ctx, record, at)
            if current.status in ENDINGS:
                async for event in self._off_course(record, current):
                    yield event
                return
            for emit in beat.emits:
                yield render(ctx, record, emit, self.thread)

    async def _off_course(self, record: Body, current: Phase) -> AsyncIterator[Event]:
        """A run cancelled or expired mid-stream: its status events, then ``done``."""
        ctx = self.emulator.context
        if current.status == "cancelled":  # cancelled between two beats: it was cancelling
            yield ending(ctx, record, Phase("cancelling", started_at=current.started_at,
                                            requires_action_at=current.requires_action_at))
        yield ending(ctx, record, current)
        if current.status == "cancelling":
            at = await self._wait(record["clock"]["cancel_requested"] + ctx.timing.cancelling)
            later = self.emulator.observe(self.thread_id, self.run_id, at)
            if later is None:
                yield self._gone()
                return
            yield ending(ctx, later, phase(ctx, later, at))
        yield Event("done", "[DONE]")

    async def _wait(self, at: float) -> float:
        """Sleep until ``at`` on the emulator's clock; the instant the beat is taken at."""
        remaining = at - self.emulator.now()
        if remaining > 0:
            await self._sleep(remaining)
        return max(at, self.emulator.now())

    def _gone(self) -> Event:
        return error_event(f"No run found with id '{self.run_id}'.",
                           type="invalid_request_error", code=None)


def stream_response(emulator: Emulator, operation_id: str, run: Body) -> StreamingResponse:
    """The SSE response for a streaming request that has just succeeded with ``run``."""
    opening = STREAMING[operation_id]
    thread = emulator.thread(run["thread_id"]) if opening == "create_thread" else None
    stream = RunStream(emulator, opening, run, thread)
    return StreamingResponse(stream.chunks(), media_type=EVENT_STREAM,
                             headers={"cache-control": "no-cache"})
