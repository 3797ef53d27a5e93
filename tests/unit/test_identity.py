"""Reserved metadata and hashes: the identity a managed run carries."""

from __future__ import annotations

import hashlib
import json
from types import MappingProxyType

from reconciler import identity
from reconciler.model import RUN_FIELDS


def test_spec_hash_ignores_key_order_and_sees_values_and_revision() -> None:
    a = {"assistant_id": "asst_1", "tools": [{"type": "code_interpreter"}], "temperature": 0.5}
    b = {"temperature": 0.5, "tools": [{"type": "code_interpreter"}], "assistant_id": "asst_1"}
    assert identity.spec_hash(a, 0) == identity.spec_hash(b, 0)
    assert identity.spec_hash(a, 0) != identity.spec_hash(a, 1)
    assert identity.spec_hash(a, 0) != identity.spec_hash({**a, "temperature": 0.6}, 0)


def test_encode_decode_spec_round_trip_names_fields() -> None:
    spec = {"assistant_id": "asst_1", "instructions": "x" * 5000, "additional_messages": [{}]}
    value = identity.encode_spec(spec, 3)
    assert len(value) <= 512
    digest, revision, fields = identity.decode_spec(value)
    assert digest == identity.spec_hash(spec, 3)
    assert revision == 3
    assert set(fields) == set(spec)
    assert fields == identity.field_digests(spec)


def test_encoded_spec_with_every_field_fits_the_api_limit() -> None:
    spec = {name: name * 100 for name in RUN_FIELDS if name != "metadata"}
    assert len(identity.encode_spec(spec, 10**9)) <= 512


def test_decode_tolerates_hand_edited_values() -> None:
    digest, revision, fields = identity.decode_spec("abc;r=x;99=zz,junk")
    assert (digest, revision, fields) == ("abc", None, {})


def test_reserved_metadata_and_ownership() -> None:
    meta = identity.reserved_metadata(
        project="demo", name="weekly", spec={"assistant_id": "a"}, revision=0,
        user_metadata={"team": "x"},
    )
    assert set(meta) == set(identity.RESERVED_KEYS)
    assert all(k.startswith(identity.RESERVED_PREFIX) for k in meta)
    assert identity.is_managed_by(meta, "demo")
    assert not identity.is_managed_by(meta, "other")
    assert identity.user_metadata({**meta, "team": "x"}) == {"team": "x"}
    assert 16 - len(identity.RESERVED_KEYS) == identity.USER_METADATA_MAX_PAIRS


def test_canonical_json_is_sorted_compact_ascii_json() -> None:
    values: list[object] = [
        {"b": 1, "a": [{"z": 1.5, "y": "é\n"}]}, {}, [], "x\u2028", None, True, 1e-7,
    ]
    for value in values:
        assert identity.canonical_json(value) == json.dumps(
            value, sort_keys=True, separators=(",", ":")
        )


def test_spec_hash_is_the_digest_of_the_canonical_spec_and_revision() -> None:
    """Hashes recorded on live runs stay valid: the written-out form equals the wrapper's."""
    spec = {"tools": [{"type": "function", "function": {"name": "f"}}], "model": "gpt-4o"}
    wrapped = json.dumps({"spec": spec, "revision": 7}, sort_keys=True, separators=(",", ":"))
    assert identity.spec_hash(spec, 7) == hashlib.sha256(wrapped.encode()).hexdigest()[:16]
    assert identity.spec_hash(MappingProxyType(spec), 7) == identity.spec_hash(spec, 7)
