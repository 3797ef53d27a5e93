"""How a managed run carries its identity: reserved metadata keys and canonical hashes.

Runs have server-chosen ids and cannot be deleted, so reconciler keeps what it needs on the
run itself (as kopf keeps the last-applied configuration on the object). Pure functions only.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping

from reconciler.model import JSON, RUN_FIELDS

#: Every metadata key reconciler owns starts with this; users may not use it.
RESERVED_PREFIX = "reconciler."

#: The project that owns the run (two repos may share a thread without touching each other).
KEY_PROJECT = "reconciler.project"
#: The run's name in the manifests (unique per thread).
KEY_NAME = "reconciler.name"
#: Hash of the immutable spec and revision, then per-field digests: ``<hash>;r=<rev>;<i>=<d>,…``.
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


def field_digests(spec: Mapping[str, JSON]) -> dict[str, str]:
    """Short digests of each set field, so a plan can name the fields that force a replace."""
    return {name: _digest(spec[name], 6) for name in RUN_FIELDS if name in spec}


def encode_spec(spec: Mapping[str, JSON], revision: int) -> str:
    """The value of ``reconciler.spec``: well under the API's 512-character limit."""
    parts = [f"{RUN_FIELDS.index(name)}={digest}" for name, digest in field_digests(spec).items()]
    return f"{spec_hash(spec, revision)};r={revision};{','.join(parts)}"


def decode_spec(value: str) -> tuple[str, int | None, dict[str, str]]:
    """Split a ``reconciler.spec`` value into (hash, revision, field digests).

    Tolerates values written by hand or by older versions: unknown parts are ignored and a
    missing revision is ``None``.
    """
    pieces = value.split(";")
    digest = pieces[0]
    revision: int | None = None
    fields: dict[str, str] = {}
    for piece in pieces[1:]:
        if piece.startswith("r="):
            try:
                revision = int(piece[2:])
            except ValueError:
                revision = None
            continue
        for item in piece.split(","):
            index, sep, field_digest = item.partition("=")
            if sep and index.isdigit() and int(index) < len(RUN_FIELDS):
                fields[RUN_FIELDS[int(index)]] = field_digest
    return digest, revision, fields


def reserved_metadata(
    *,
    project: str,
    name: str,
    spec: Mapping[str, JSON],
    revision: int,
    user_metadata: Mapping[str, str],
) -> dict[str, str]:
    """The reserved keys a managed run carries, for a create or a metadata update."""
    return {
        KEY_PROJECT: project,
        KEY_NAME: name,
        KEY_SPEC: encode_spec(spec, revision),
        KEY_META: metadata_hash(user_metadata),
    }


def user_metadata(metadata: Mapping[str, str]) -> dict[str, str]:
    """A run's metadata without reconciler's reserved keys."""
    return {k: v for k, v in metadata.items() if not k.startswith(RESERVED_PREFIX)}


def is_managed_by(metadata: Mapping[str, str], project: str) -> bool:
    """Whether a run belongs to ``project`` (runs of other projects are never touched)."""
    return metadata.get(KEY_PROJECT) == project and bool(metadata.get(KEY_NAME))
