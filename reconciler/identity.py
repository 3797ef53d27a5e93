"""How a managed run carries its identity: reserved metadata keys and canonical hashes.

Runs have server-chosen ids and cannot be deleted, so reconciler keeps what it needs on the
run itself (as kopf keeps the last-applied configuration on the object). Pure functions only.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass

from reconciler.model import JSON, RUN_FIELDS

#: Every metadata key reconciler owns starts with this; users may not use it.
RESERVED_PREFIX = "reconciler."

#: The project that owns the run (two repos may share a thread without touching each other).
KEY_PROJECT = "reconciler.project"
#: The run's name in the manifests (unique per thread).
KEY_NAME = "reconciler.name"
#: Format version, hash of the immutable spec, revision, generation, create attempt id, then
#: per-field digests: ``v2;<hash>;r=<rev>;g=<gen>;a=<attempt>;<code>=<digest>,…``.
KEY_SPEC = "reconciler.spec"
#: Hash of the user metadata as last applied: a mismatch means someone edited it outside.
KEY_META = "reconciler.meta"

RESERVED_KEYS: tuple[str, ...] = (KEY_PROJECT, KEY_NAME, KEY_SPEC, KEY_META)

#: The API allows 16 metadata pairs; reconciler's own keys take this many of them.
METADATA_MAX_PAIRS = 16
USER_METADATA_MAX_PAIRS = METADATA_MAX_PAIRS - len(RESERVED_KEYS)


_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"))
# The C encoder ``_CANONICAL.encode`` builds afresh on every call, built once (plans hash
# 100,000 specs). Without a markers dict it keeps no state between calls; values come from
# parsed YAML or JSON, which the manifest loader guarantees are trees, never cycles.
_ENCODE = (
    json.encoder.c_make_encoder(  # type: ignore[attr-defined]
        None, _CANONICAL.default, json.encoder.encode_basestring_ascii, None, ":", ",",
        True, False, True,
    )
    if getattr(json.encoder, "c_make_encoder", None) is not None
    else None
)


def canonical_json(value: JSON) -> str:
    """One text per JSON value, whatever the key order: the basis of every hash here."""
    if _ENCODE is None or isinstance(value, str):
        return _CANONICAL.encode(value)
    return "".join(_ENCODE(value, 0))


def _digest(value: JSON, length: int) -> str:
    return hashlib.sha256(canonical_json(value).encode("utf-8")).hexdigest()[:length]


def spec_hash(spec: Mapping[str, JSON], revision: int) -> str:
    """The identity of a run's immutable spec: equal hashes mean no replace is needed.

    The canonical JSON of ``{"revision": revision, "spec": spec}``, written out directly:
    a plan hashes every declared spec, so the wrapper dict is not built.
    """
    body = spec if isinstance(spec, dict) else dict(spec)
    text = f'{{"revision":{int(revision)},"spec":{canonical_json(body)}}}'
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def flat_text(metadata: Mapping[str, str]) -> str:
    """One text per string-to-string map, whatever the key order.

    Metadata is flat, so sorted pairs joined by separator characters (which the API's keys
    and values never need) say the same as canonical JSON at a third of the cost: plans
    hash the metadata of every live run.
    """
    return "\x1f".join(map("\x1e".join, sorted(metadata.items())))


def metadata_hash(metadata: Mapping[str, str]) -> str:
    """Digest of user metadata, stored at apply time so later edits show up as drift."""
    return hashlib.sha256(flat_text(metadata).encode("utf-8")).hexdigest()[:12]


#: Reserved-metadata format written by this version (the ``v2;`` prefix of ``reconciler.spec``).
#: Version 1 (no prefix) is still read: it has no generation and no attempt id.
RESERVED_FORMAT_VERSION = 2

#: The code of each field in ``reconciler.spec``'s digest list. A contract with every run already
#: written: never renumber, only append (the codes of format 1 were these same numbers).
FIELD_CODES: Mapping[str, int] = {
    "assistant_id": 0,
    "model": 1,
    "reasoning_effort": 2,
    "instructions": 3,
    "additional_instructions": 4,
    "additional_messages": 5,
    "tools": 6,
    "metadata": 7,
    "temperature": 8,
    "top_p": 9,
    "max_prompt_tokens": 10,
    "max_completion_tokens": 11,
    "truncation_strategy": 12,
    "tool_choice": 13,
    "parallel_tool_calls": 14,
    "response_format": 15,
}
_FIELD_BY_CODE = {code: name for name, code in FIELD_CODES.items()}


@dataclass(frozen=True)
class SpecRecord:
    """What ``reconciler.spec`` says about a run: its spec and how it came to be.

    ``generation`` counts the runs of one (thread, name): a replacement is one more than the run it
    replaces, so the current run is the highest generation whatever ids and clocks the host has.
    ``attempt`` is the id of the create request that made the run (found again after a lost
    answer). Both are ``None`` on runs written by format 1.
    """

    digest: str
    revision: int | None
    fields: Mapping[str, str]
    generation: int | None = None
    attempt: str | None = None
    version: int = 1


def field_digests(spec: Mapping[str, JSON]) -> dict[str, str]:
    """Short digests of each set field, so a plan can name the fields that force a replace."""
    return {name: _digest(spec[name], 6) for name in RUN_FIELDS if name in spec}


def encode_spec(
    spec: Mapping[str, JSON], revision: int, *, generation: int = 1, attempt: str | None = None
) -> str:
    """The value of ``reconciler.spec``: ``v2;<hash>;r=<rev>;g=<gen>[;a=<attempt>];<digests>``.

    Well under the API's 512-character limit. The plan writes it without an attempt id; apply
    adds one per create request (:func:`with_attempt`).
    """
    parts = ",".join(
        f"{FIELD_CODES[name]}={digest}" for name, digest in field_digests(spec).items()
    )
    attempt_part = f"a={attempt};" if attempt else ""
    return (
        f"v{RESERVED_FORMAT_VERSION};{spec_hash(spec, revision)};r={int(revision)};"
        f"g={int(generation)};{attempt_part}{parts}"
    )


def with_attempt(value: str, attempt: str) -> str:
    """``value`` (a ``reconciler.spec``) carrying ``attempt`` as its create attempt id."""
    pieces = [p for p in value.split(";") if not p.startswith("a=")]
    at = next((i + 1 for i, p in enumerate(pieces) if p.startswith("g=")), min(3, len(pieces)))
    return ";".join([*pieces[:at], f"a={attempt}", *pieces[at:]])


def decode_spec(value: str) -> SpecRecord:
    """Read a ``reconciler.spec`` value of format 1 or 2.

    Tolerates values written by hand: unknown parts are ignored, and a missing or garbled
    revision or generation is ``None``.
    """
    pieces = value.split(";")
    version = 1
    if len(pieces) > 1 and re.fullmatch(r"v[0-9]{1,3}", pieces[0]):
        version = int(pieces[0][1:])
        pieces = pieces[1:]
    digest = pieces[0]
    revision: int | None = None
    generation: int | None = None
    attempt: str | None = None
    fields: dict[str, str] = {}
    for piece in pieces[1:]:
        if piece.startswith("r="):
            revision = _small_int(piece[2:])
        elif piece.startswith("g="):
            generation = _small_int(piece[2:])
        elif piece.startswith("a="):
            attempt = piece[2:] or None
        else:
            for item in piece.split(","):
                code, sep, field_digest = item.partition("=")
                name = _FIELD_BY_CODE.get(int(code)) if sep and code.isdigit() else None
                if name is not None and len(code) < 4:
                    fields[name] = field_digest
    return SpecRecord(digest, revision, fields, generation, attempt, version)


def _small_int(text: str) -> int | None:
    return int(text) if text.isdigit() and len(text) < 19 else None


def recorded_generation(metadata: Mapping[str, str]) -> int:
    """A managed run's generation (0 for format 1 runs, which were all first of their name)."""
    return decode_spec(metadata.get(KEY_SPEC, "")).generation or 0


def reserved_metadata(
    *,
    project: str,
    name: str,
    spec: Mapping[str, JSON],
    revision: int,
    user_metadata: Mapping[str, str],
    generation: int = 1,
) -> dict[str, str]:
    """The reserved keys a managed run carries, for a create or a metadata update."""
    return {
        KEY_PROJECT: project,
        KEY_NAME: name,
        KEY_SPEC: encode_spec(spec, revision, generation=generation),
        KEY_META: metadata_hash(user_metadata),
    }


def user_metadata(metadata: Mapping[str, str]) -> dict[str, str]:
    """A run's metadata without reconciler's reserved keys."""
    return {k: v for k, v in metadata.items() if not k.startswith(RESERVED_PREFIX)}


def is_managed_by(metadata: Mapping[str, str], project: str) -> bool:
    """Whether a run belongs to ``project`` (runs of other projects are never touched)."""
    return metadata.get(KEY_PROJECT) == project and bool(metadata.get(KEY_NAME))


def attempt_of(metadata: Mapping[str, str]) -> str | None:
    """The create attempt id a run was made by (``None`` for runs of format 1)."""
    return decode_spec(metadata.get(KEY_SPEC, "")).attempt


def recency(metadata: Mapping[str, str], created_at: int, run_id: str) -> tuple[int, int, str, str]:
    """Sort key of one name's managed runs: the greatest is the current run.

    The generation written by reconciler decides; the server's clock and then the attempt and
    run ids only break ties between twins of one generation, so every reader picks the same run
    on any host, whatever its ids look like.
    """
    record = decode_spec(metadata.get(KEY_SPEC, ""))
    return (record.generation or 0, created_at, record.attempt or "", run_id)


def recorded_spec_hash(metadata: Mapping[str, str]) -> str:
    """The spec hash in ``reconciler.spec`` (either format), read without decoding the rest:
    planning reads it for every live run."""
    value = metadata.get(KEY_SPEC, "")
    head, _, rest = value.partition(";")
    return rest.partition(";")[0] if head.startswith("v") else head
