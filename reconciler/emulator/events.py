"""A run's server-sent events as the service emitted them: which, when, and what they carry.

``script`` turns a run record into beats — instants on the run's own course (``machine``) with
the events due then — and ``render`` gives each event its data from the record as it stands
when the beat comes. Both are purely computational; ``reconciler.emulator.streaming`` waits
for the beats, re-reads the run before each (a cancel or an expiry meanwhile changes the
ending) and writes the events to the wire.

The order follows the reference spec's streaming examples: ``thread.created`` (create and
run), ``thread.run.created``, ``queued``, ``in_progress``; then either the tool-call step
(``thread.run.step.created`` / ``in_progress`` / ``delta``…) and ``thread.run.requires_action``,
where the stream ends, or the reply (the message-creation step, ``thread.message.created`` /
``in_progress`` / ``delta``… / ``completed``) and the run's ending; finally ``done``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from reconciler.emulator.machine import Course, Phase, Status
from reconciler.emulator.resources.common import JSON, Body, Context
from reconciler.emulator.resources.runs import course, phase, reply_message, reply_text
from reconciler.emulator.resources.runs import render as render_run
from reconciler.emulator.resources.steps import message_step, tool_calls_step

Opening = Literal["create", "create_thread", "submit"]
"""How a stream begins: a new run, a new thread and run, or a run given its tool outputs."""

Kind = Literal[
    "thread", "run", "tool_step", "tool_step_done", "tool_delta", "reply_step",
    "reply_step_done", "message", "message_done", "message_delta", "done",
]

ENDINGS: frozenset[str] = frozenset({"cancelling", "cancelled", "expired"})
"""Statuses a run reaches off its scripted course, by a cancel or at its expiry."""


@dataclass(frozen=True)
class Emit:
    """One event of a beat: its name, what it shows, and for deltas the piece they carry."""

    name: str
    kind: Kind
    status: Status | None = None  # run events: the status the run object shows
    index: int = 0  # deltas: which tool call (or 0 for the reply's one text part)
    piece: str = ""  # deltas: the text or arguments this one adds
    first: bool = False  # deltas: the first for its part (carries the name or annotations)


@dataclass(frozen=True)
class Beat:
    """The events due at one instant of the run's course (seconds since the epoch)."""

    at: float
    emits: tuple[Emit, ...]


@dataclass(frozen=True)
class Event:
    """One server-sent event: ``event: NAME`` and ``data: …`` (JSON, or ``[DONE]``)."""

    name: str
    data: JSON


def _run(status: Status) -> Emit:
    return Emit(f"thread.run.{status}", "run", status)


_DONE = Emit("done", "done")


def script(ctx: Context, record: Mapping[str, JSON], opening: Opening) -> list[Beat]:
    """Every beat of a stream, from its opening to ``done``, if nothing interrupts the run."""
    times = course(ctx, record)
    created = float(record["clock"]["created"])
    if opening == "submit":
        assert times.resumed is not None and times.replying_at is not None
        beats = [Beat(times.resumed, (Emit("thread.run.step.completed", "tool_step_done"),
                                      _run("queued"))),
                 Beat(times.replying_at, (_run("in_progress"),))]
    else:
        start = (Emit("thread.created", "thread"),) if opening == "create_thread" else ()
        beats = [Beat(created, (*start, Emit("thread.run.created", "run", "queued"),
                                _run("queued"))),
                 Beat(times.started, (_run("in_progress"),))]
    if times.end is None:
        return [*beats, _tool_calls(record, times)]
    return beats + _reply(record, times)


def _tool_calls(record: Mapping[str, JSON], times: Course) -> Beat:
    """The tool-call step filling in, then ``requires_action``: the stream ends there."""
    emits = [Emit("thread.run.step.created", "tool_step"),
             Emit("thread.run.step.in_progress", "tool_step")]
    for index, call in enumerate(record["calls"]):
        emits.append(Emit("thread.run.step.delta", "tool_delta", index=index, first=True))
        for piece in re.findall(r"\w+|\W+", call["function"]["arguments"]):
            emits.append(Emit("thread.run.step.delta", "tool_delta", index=index, piece=piece))
    assert times.requires_action_at is not None
    return Beat(times.requires_action_at, (*emits, _run("requires_action"), _DONE))


def _reply(record: Mapping[str, JSON], times: Course) -> list[Beat]:
    """The reply written in several deltas across the run's last stretch, then its ending."""
    assert times.replying_at is not None and times.end is not None
    ending = record["outcome"]["status"]
    if ending == "failed":
        return [Beat(times.end, (_run("failed"), _DONE))]
    opening = (Emit("thread.run.step.created", "reply_step"),
               Emit("thread.run.step.in_progress", "reply_step"),
               Emit("thread.message.created", "message"),
               Emit("thread.message.in_progress", "message"))
    pieces = re.findall(r"\s*\S+", reply_text(record))
    spacing = (times.end - times.replying_at) / max(1, len(pieces))
    beats = [Beat(times.replying_at, opening)]
    for number, piece in enumerate(pieces):
        delta = Emit("thread.message.delta", "message_delta", piece=piece, first=number == 0)
        beats.append(Beat(times.replying_at + number * spacing, (delta,)))
    closing = (Emit(f"thread.message.{'incomplete' if ending == 'incomplete' else 'completed'}",
                    "message_done"),
               Emit("thread.run.step.completed", "reply_step_done"),
               _run(ending), _DONE)
    return [*beats, Beat(times.end, closing)]


def render(ctx: Context, record: Mapping[str, JSON], emit: Emit, thread: Body | None = None
           ) -> Event:
    """The event ``emit`` names, its data taken from ``record`` (``thread``: create and run)."""
    if emit.kind == "done":
        return Event("done", "[DONE]")
    if emit.kind == "thread":
        return Event(emit.name, thread)
    if emit.kind == "run":
        assert emit.status is not None
        return Event(emit.name, show_run(ctx, record, emit.status))
    if emit.kind in {"tool_step", "tool_step_done", "tool_delta"}:
        return Event(emit.name, _tool_event(ctx, record, emit))
    return Event(emit.name, _reply_event(ctx, record, emit))


def show_run(ctx: Context, record: Mapping[str, JSON], status: Status) -> Body:
    """The run object as it stood when it reached ``status`` on its natural course."""
    times = course(ctx, record)
    if status in {"completed", "failed", "incomplete"}:
        assert times.end is not None
        return render_run(record, phase(ctx, record, times.end))
    if status == "requires_action" or times.resumed is not None:
        shown = Phase(status, started_at=times.started,
                      requires_action_at=times.requires_action_at)
    else:
        shown = Phase(status, started_at=None if status == "queued" else times.started)
    return render_run(record, shown)


def _tool_event(ctx: Context, record: Mapping[str, JSON], emit: Emit) -> Body:
    times = course(ctx, record)
    asking = Phase("requires_action", started_at=times.started,
                   requires_action_at=times.requires_action_at)
    step = tool_calls_step(record, asking)
    if emit.kind == "tool_step_done":
        return step
    if emit.kind == "tool_step":
        return {**step, "step_details": {"type": "tool_calls", "tool_calls": []}}
    call = record["calls"][emit.index]
    piece: Body = {"index": emit.index, "type": "function",
                   "function": {"arguments": emit.piece}}
    if emit.first:
        piece = {"index": emit.index, "id": call["id"], "type": "function",
                 "function": {"name": call["function"]["name"], "arguments": "",
                              "output": None}}
    return {"id": step["id"], "object": "thread.run.step.delta",
            "delta": {"step_details": {"type": "tool_calls", "tool_calls": [piece]}}}


def _reply_event(ctx: Context, record: Mapping[str, JSON], emit: Emit) -> Body:
    times = course(ctx, record)
    assert times.end is not None and times.replying_at is not None
    done = reply_message(ctx, record, phase(ctx, record, times.end))
    if emit.kind == "message_done":
        return done
    if emit.kind in {"reply_step", "reply_step_done"}:
        finished = times.end if emit.kind == "reply_step_done" else None
        return message_step(record, done["id"], times.replying_at, finished=finished)
    if emit.kind == "message":
        return {**done, "status": "in_progress", "content": [], "completed_at": None,
                "incomplete_at": None, "incomplete_details": None}
    text: Body = {"value": emit.piece, **({"annotations": []} if emit.first else {})}
    return {"id": done["id"], "object": "thread.message.delta",
            "delta": {"content": [{"index": 0, "type": "text", "text": text}]}}


def ending(ctx: Context, record: Mapping[str, JSON], current: Phase) -> Event:
    """The run event for a run that left its course: ``cancelling``, ``cancelled``, ``expired``."""
    return Event(f"thread.run.{current.status}", render_run(record, current))


def error_event(message: str, *, type: str = "server_error", code: str | None = "server_error"
                ) -> Event:
    """``event: error``: a failure after the stream began (data: the spec's ``Error``)."""
    return Event("error", {"code": code, "message": message, "param": None, "type": type})
