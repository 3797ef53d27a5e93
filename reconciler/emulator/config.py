"""The emulator's configuration and the parsers for its knob strings.

Every knob is a frozen value built from a short, documented string (the ``reconciler emulator
serve`` flags), so the CLI, tests and benchmarks describe an emulator the same way. The parsers
raise ``ValueError`` with a sentence that names the bad part; they never touch I/O.
"""

from __future__ import annotations

import math
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from os import PathLike
from typing import TYPE_CHECKING, Literal, TypeAlias, cast

if TYPE_CHECKING:
    from reconciler.emulator.fixtures import Fixtures

Clock: TypeAlias = Callable[[], float]
"""Seconds since the epoch, like ``time.time``; tests inject a fake one."""

FaultKind: TypeAlias = Literal["500", "drop", "lost_create", "cut", "stream_error"]
FAULT_KINDS: tuple[FaultKind, ...] = ("500", "drop", "lost_create", "cut", "stream_error")
STREAM_FAULTS: frozenset[str] = frozenset({"cut", "stream_error"})
"""Faults that strike a stream once it has started (rolled when an event stream begins)."""
AuthStyle: TypeAlias = Literal["bearer", "azure"]
HTTP_METHODS: frozenset[str] = frozenset({"GET", "POST", "DELETE"})


@dataclass(frozen=True)
class RunTiming:
    """How long a run spends in each transient status, in seconds (derived from timestamps)."""

    queued: float = 0.5
    in_progress: float = 2.0
    cancelling: float = 0.5
    expires_after: float = 600.0

    @classmethod
    def instant(cls) -> RunTiming:
        """Runs finish the moment they are created: for fast tests."""
        return cls(queued=0.0, in_progress=0.0, cancelling=0.0)

    @classmethod
    def fast(cls) -> RunTiming:
        """Visible transitions that still end within a fraction of a second: for demos."""
        return cls(queued=0.05, in_progress=0.2, cancelling=0.05)

    @classmethod
    def realistic(cls) -> RunTiming:
        """Roughly what the hosted service did for a short run."""
        return cls(queued=0.5, in_progress=2.0, cancelling=0.5)


@dataclass(frozen=True)
class Latency:
    """Added delay before every response: fixed, normal(mean, stddev) or uniform(low..high)."""

    kind: Literal["fixed", "normal", "uniform"]
    first: float
    second: float = 0.0

    def sample(self, rng: random.Random) -> float:
        """One delay in seconds, never negative."""
        if self.kind == "fixed":
            return self.first
        if self.kind == "normal":
            return max(0.0, rng.gauss(self.first, self.second))
        return rng.uniform(self.first, self.second)


@dataclass(frozen=True)
class RateLimit:
    """At most ``requests`` per ``period`` seconds (a token bucket refilled continuously)."""

    requests: int
    period: float = 1.0


@dataclass(frozen=True)
class FaultRule:
    """Inject ``kind`` with probability ``rate`` into matching requests, at most ``limit`` times.

    ``methods`` / ``operations`` filter by HTTP method or operationId; empty means any.
    """

    kind: FaultKind
    rate: float
    limit: int | None = None
    methods: frozenset[str] = frozenset()
    operations: frozenset[str] = frozenset()

    def matches(self, method: str, operation_id: str | None) -> bool:
        """Whether a request is a candidate for this fault (before the dice roll)."""
        if self.methods and method.upper() not in self.methods:
            return False
        return not self.operations or (operation_id is not None and operation_id in self.operations)


@dataclass(frozen=True)
class Faults:
    """The fault rules, tried in order; the first that fires decides the request's fate."""

    rules: tuple[FaultRule, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.rules)


@dataclass(frozen=True)
class EmulatorConfig:
    """Everything that makes one emulator differ from another; all randomness comes from ``seed``.

    ``fixtures`` is either loaded fixtures or a path to a fixtures YAML file. ``auth`` is how
    clients authenticate: ``bearer`` as OpenAI (``Authorization: Bearer``, ``OpenAI-Beta``
    required), ``azure`` as Azure OpenAI (an ``api-key`` header and an ``api-version`` query
    parameter). The API is served under ``path_prefix`` (``/v1``; ``""`` for the root).
    """

    state_path: str | None = None
    api_key: str | None = field(default=None, repr=False)
    seed: int = 0
    timing: RunTiming = field(default_factory=RunTiming.realistic)
    latency: Latency | None = None
    rate_limit: RateLimit | None = None
    faults: Faults = field(default_factory=Faults)
    fixtures: Fixtures | str | PathLike[str] | None = None
    clock: Clock = time.time
    auth: AuthStyle = "bearer"
    path_prefix: str = "/v1"


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?|\.\d+)\s*(ms|s|m|min)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "min": 60.0}


def parse_duration(text: str) -> float:
    """``"50ms"``, ``"1.5s"``, ``"2m"`` or a bare number of seconds → seconds."""
    match = _DURATION.match(text)
    if match is None:
        raise ValueError(f"invalid duration {text!r}: expected a number with ms, s or m, e.g. 50ms")
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2) or "s"]


def parse_latency(text: str) -> Latency | None:
    """Parse a latency knob: ``50ms``, ``normal:50ms,10ms``, ``uniform:10ms..90ms``, or ``0``."""
    spec = text.strip()
    if not spec:
        raise ValueError("invalid latency '': expected e.g. 50ms, normal:50ms,10ms or "
                         "uniform:10ms..90ms")
    kind, _, rest = spec.partition(":")
    if not rest:
        value = _latency_part(spec, text)
        return None if value == 0 else Latency("fixed", value)
    if kind == "normal":
        parts = rest.split(",")
        if len(parts) != 2:
            raise ValueError(f"invalid latency {text!r}: normal takes MEAN,STDDEV, "
                             "e.g. normal:50ms,10ms")
        return Latency("normal", _latency_part(parts[0], text), _latency_part(parts[1], text))
    if kind == "uniform":
        low, sep, high = rest.partition("..")
        if not sep:
            raise ValueError(f"invalid latency {text!r}: uniform takes LOW..HIGH, "
                             "e.g. uniform:10ms..90ms")
        lo, hi = _latency_part(low, text), _latency_part(high, text)
        if hi < lo:
            raise ValueError(f"invalid latency {text!r}: the upper bound is below the lower one")
        return Latency("uniform", lo, hi)
    if kind == "fixed":
        return Latency("fixed", _latency_part(rest, text))
    raise ValueError(f"invalid latency {text!r}: unknown distribution {kind!r} "
                     "(use fixed, normal or uniform)")


def _latency_part(part: str, whole: str) -> float:
    try:
        return parse_duration(part)
    except ValueError:
        raise ValueError(f"invalid latency {whole!r}: {part.strip()!r} is not a duration "
                         "such as 50ms or 1.5s") from None


_RATE = re.compile(r"^\s*(\d+)\s*/\s*(\d+(?:\.\d+)?)?\s*(ms|s|m|min)\s*$")


def parse_rate_limit(text: str) -> RateLimit | None:
    """Parse ``"20/s"``, ``"600/m"`` or ``"5/2s"``; ``"0"`` or ``"off"`` means no limit."""
    if text.strip().lower() in {"0", "off", "none"}:
        return None
    match = _RATE.match(text)
    if match is None:
        raise ValueError(f"invalid rate limit {text!r}: expected REQUESTS/PERIOD such as 20/s, "
                         "600/m or 5/2s")
    requests = int(match.group(1))
    period = float(match.group(2) or 1) * _UNIT_SECONDS[match.group(3)]
    if requests < 1 or period <= 0:
        raise ValueError(f"invalid rate limit {text!r}: requests and period must be positive")
    return RateLimit(requests, period)


_FAULT = re.compile(
    r"^(?P<kind>[a-z0-9_]+)=(?P<rate>\d+(?:\.\d+)?|\.\d+)"
    r"(?:\*(?P<limit>\d+))?(?:@(?P<filter>[A-Za-z|]+))?$"
)


def parse_faults(text: str) -> Faults:
    """Parse rules ``KIND=RATE[*MAX][@FILTER|FILTER…]`` separated by commas.

    KIND is ``500``, ``drop``, ``lost_create``, ``cut`` or ``stream_error``; RATE a
    probability 0–1; MAX caps how many
    times the rule fires; each FILTER is an HTTP method (GET, POST, DELETE) or an operationId
    (e.g. ``createRun``). Example: ``500=0.1,drop=0.05@GET,lost_create=1*2@createRun``.
    """
    from reconciler.emulator.spec import operation_ids

    rules: list[FaultRule] = []
    for raw in text.split(","):
        item = raw.strip()
        if not item:
            continue
        match = _FAULT.match(item)
        if match is None:
            raise ValueError(f"invalid fault {item!r}: expected KIND=RATE[*MAX][@FILTER], "
                             "e.g. 500=0.1 or lost_create=1*2@createRun")
        kind = match.group("kind")
        if kind not in FAULT_KINDS:
            raise ValueError(f"invalid fault {item!r}: unknown kind {kind!r} "
                             f"(use {', '.join(FAULT_KINDS)})")
        rate = float(match.group("rate"))
        if not 0.0 <= rate <= 1.0 or math.isnan(rate):
            raise ValueError(f"invalid fault {item!r}: the rate must be between 0 and 1")
        limit = int(match.group("limit")) if match.group("limit") else None
        methods: set[str] = set()
        operations: set[str] = set()
        known = operation_ids()
        for name in filter(None, (match.group("filter") or "").split("|")):
            if name.upper() in HTTP_METHODS:
                methods.add(name.upper())
            elif name in known:
                operations.add(name)
            else:
                raise ValueError(f"invalid fault {item!r}: {name!r} is neither an HTTP method "
                                 "nor an operationId of the spec (e.g. createRun)")
        rules.append(FaultRule(cast(FaultKind, kind), rate, limit, frozenset(methods),
                               frozenset(operations)))
    return Faults(tuple(rules))


def parse_timing(text: str) -> RunTiming:
    """``instant``, ``fast`` or ``realistic`` → the matching preset."""
    presets = {"instant": RunTiming.instant, "fast": RunTiming.fast,
               "realistic": RunTiming.realistic}
    try:
        return presets[text.strip().lower()]()
    except KeyError:
        raise ValueError(f"invalid timing {text!r}: use instant, fast or realistic") from None


_PREFIX_SEGMENT = re.compile(r"^[A-Za-z0-9._~-]+$")


def parse_path_prefix(text: str) -> str:
    """``/openai``, ``openai/`` or ``/`` → the normalised prefix the API is served under.

    The result starts with ``/`` and has no trailing ``/`` (``""`` serves at the root).
    """
    segments = [part for part in text.strip().split("/") if part]
    for part in segments:
        if not _PREFIX_SEGMENT.match(part):
            raise ValueError(f"invalid path prefix {text!r}: {part!r} is not a plain path "
                             "segment (letters, digits, '.', '_', '~', '-')")
    return "".join(f"/{part}" for part in segments)
