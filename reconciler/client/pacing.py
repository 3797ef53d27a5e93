"""Pacing from the rate-limit headers: use the allowed rate without running into 429s.

Every answer, success or error, says how many requests are left (``x-ratelimit-remaining-
requests``), the size of the allowance (``x-ratelimit-limit-requests``) and how long until it is
full again (``x-ratelimit-reset-requests``, OpenAI's duration format: ``1s``, ``6m0s``,
``120ms``). From those the :class:`Pacer` learns the refill rate, ``(limit - remaining) /
reset``, smoothed. While the allowance left is plentiful compared to the requests in flight it
adds no delay at all: a subtraction and a comparison per request. When it runs low, request
starts are spaced at ``1 / rate`` on one shared timeline, each start waiting until the
estimated allowance (what was left at the last answer, plus what has refilled since, minus
every request in flight or already given a start time) covers it. Without usable headers the
pacer never delays anything, and the 429 gate works as before.

Pure arithmetic over times it is given: the caller reads the clock and does the sleeping.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

LIMIT = "x-ratelimit-limit-requests"
REMAINING = "x-ratelimit-remaining-requests"
RESET = "x-ratelimit-reset-requests"

_NUMBER = re.compile(r"\d+(?:\.\d*)?|\.\d+", re.ASCII)
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(h|ms|m|s|us|µs|ns)", re.ASCII)
_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}


def parse_reset(text: str | None) -> float | None:
    """Seconds in OpenAI's (Go's) duration format: ``1s``, ``6m0s``, ``1h2m3.5s``, ``120ms``,
    or a bare number of seconds. ``None`` for anything else (empty, negative, garbage)."""
    if not text:
        return None
    text = text.strip()
    if _NUMBER.fullmatch(text):
        return float(text)
    total, position = 0.0, 0
    for part in _PART.finditer(text):
        if part.start() != position:
            return None
        total += float(part.group(1)) * _UNITS[part.group(2)]
        position = part.end()
    if position == 0 or position != len(text) or not math.isfinite(total):
        return None
    return total


def parse_count(text: str | None) -> int | None:
    """A whole number of requests from a header, ``None`` when absent or not one."""
    if not text:
        return None
    text = text.strip()
    return int(text) if text.isascii() and text.isdigit() else None


class Pacer:
    """When each request may start, learned from the rate-limit headers of every answer.

    Call :meth:`reserve` before an attempt (it counts the attempt in flight and says how long
    to wait first), :meth:`learn` with the headers of every answer, and :meth:`release` once
    the attempt is over, whatever its outcome. ``margin`` is the allowance kept spare for what
    the estimate cannot see; ``smoothing`` how far one sample from an empty allowance moves
    the rate (samples from a fuller one, whose rounding matters more, move it less);
    ``max_wait`` caps one wait, whatever the estimate says.
    """

    def __init__(self, *, margin: float = 1.0, smoothing: float = 0.25,
                 max_wait: float = 60.0) -> None:
        self.margin = margin
        self.smoothing = smoothing
        self.max_wait = max_wait
        self.rate: float | None = None  # requests per second, once learned
        self.limit: int | None = None  # the allowance's size, as last told
        self.in_flight = 0  # attempts reserved and not yet released
        self.paced = 0  # starts that were delayed (for tests and benchmarks)
        self._remaining = math.inf  # the allowance at the last answer that told it
        self._seen_at = 0.0  # when that answer arrived
        self._next_start = -math.inf  # the shared timeline of paced starts

    def reserve(self, now: float) -> float:
        """Count one more attempt in flight; the seconds it should wait before starting."""
        self.in_flight += 1
        budget = self._remaining - self.in_flight
        if budget >= self.margin or self.rate is None:
            return 0.0  # plenty left (or nothing known): no delay
        rate = self.rate
        if budget + rate * (now - self._seen_at) >= self.margin:
            return 0.0
        covered = self._seen_at + (self.margin - budget) / rate  # when refill covers it
        start = min(max(now, self._next_start, covered), now + self.max_wait)
        self._next_start = start + 1.0 / rate
        self.paced += 1
        return start - now

    def release(self) -> None:
        """One attempt is over (answered, failed or cancelled)."""
        self.in_flight = max(0, self.in_flight - 1)

    def learn(self, headers: Mapping[str, str], now: float, *, refused: bool = False) -> None:
        """Take in the rate-limit headers of one answer; headers absent or malformed are
        ignored, one by one. A 429 (``refused``) proves the estimate wrong: its rate is
        taken as it is, not smoothed."""
        remaining = parse_count(headers.get(REMAINING))
        if remaining is None:
            return
        known = self.limit
        if known is not None and _plentiful(remaining, known) and not refused:
            self._remaining, self._seen_at = float(remaining), now  # the common case
            return
        limit = parse_count(headers.get(LIMIT))
        if limit == 0 or (limit is not None and remaining > limit):
            return  # contradicts itself, or says nothing: trust neither
        self._remaining, self._seen_at = float(remaining), now
        if limit is None:
            return
        self.limit = limit
        if _plentiful(remaining, limit):
            return  # too full for its reset time to tell the rate well
        reset = parse_reset(headers.get(RESET))
        if reset is None or reset <= 0:
            return
        deficit = limit - remaining
        sample = deficit / reset
        if not math.isfinite(sample):
            return
        if self.rate is None or refused:
            self.rate = sample
        else:
            self.rate += self.smoothing * deficit / limit * (sample - self.rate)


def _plentiful(remaining: int, limit: int) -> bool:
    """Less than an eighth of the allowance spent: nothing to pace, no sample worth taking
    (rounding to whole requests and milliseconds weighs too much)."""
    return remaining <= limit and 8 * (limit - remaining) < limit
