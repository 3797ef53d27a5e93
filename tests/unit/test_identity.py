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
    value = identity.encode_spec(spec, 3, generation=4)
    assert len(value) <= 512
    record = identity.decode_spec(identity.with_attempt(value, "00ff00ff00ff00ff"))
    assert record.digest == identity.spec_hash(spec, 3)
    assert (record.revision, record.generation, record.version) == (3, 4, 2)
    assert record.attempt == "00ff00ff00ff00ff"
    assert set(record.fields) == set(spec)
    assert record.fields == identity.field_digests(spec)


# --- the reserved-metadata format: a contract with every run already written ----------------
# The expected values are literals, and each digest is also recomputed here from its written-out
# input with hashlib alone, so a change to the encoding code cannot move both sides at once.


def _sha(text: str, length: int) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def test_format_2_spec_value_is_pinned() -> None:
    spec = {"instructions": "hi", "assistant_id": "asst_1"}
    assert identity.encode_spec(spec, 0) == "v2;6a89fced4f756c2a;r=0;g=1;0=48555a,3=b49177"
    assert _sha('{"revision":0,"spec":{"assistant_id":"asst_1","instructions":"hi"}}', 16) == (
        "6a89fced4f756c2a"
    )
    assert (_sha('"asst_1"', 6), _sha('"hi"', 6)) == ("48555a", "b49177")
    assert identity.with_attempt(identity.encode_spec(spec, 2, generation=3),
                                 "0123456789abcdef") == (
        "v2;6a4fcf07ebc277a4;r=2;g=3;a=0123456789abcdef;0=48555a,3=b49177"
    )


def test_field_codes_are_pinned_whatever_the_order_of_run_fields() -> None:
    assert dict(identity.FIELD_CODES) == {
        "assistant_id": 0, "model": 1, "reasoning_effort": 2, "instructions": 3,
        "additional_instructions": 4, "additional_messages": 5, "tools": 6, "metadata": 7,
        "temperature": 8, "top_p": 9, "max_prompt_tokens": 10, "max_completion_tokens": 11,
        "truncation_strategy": 12, "tool_choice": 13, "parallel_tool_calls": 14,
        "response_format": 15,
    }
    assert set(identity.FIELD_CODES) == set(RUN_FIELDS)


def test_metadata_hash_and_reserved_keys_are_pinned() -> None:
    assert identity.metadata_hash({"team": "x", "cadence": "weekly"}) == "6339df73a76c"
    assert _sha("cadence\x1eweekly\x1fteam\x1ex", 12) == "6339df73a76c"
    assert identity.reserved_metadata(
        project="demo", name="weekly", spec={"assistant_id": "asst_1"}, revision=1,
        user_metadata={"team": "x"},
    ) == {
        "reconciler.project": "demo",
        "reconciler.name": "weekly",
        "reconciler.spec": "v2;b602d9b11ec667df;r=1;g=1;0=48555a",
        "reconciler.meta": "e25d96df1bf1",
    }


def test_format_1_values_written_by_earlier_versions_still_read() -> None:
    """A run created before format 2: no version, generation or attempt; same hash and codes."""
    record = identity.decode_spec("6a89fced4f756c2a;r=0;0=48555a,3=b49177")
    assert record == identity.SpecRecord(
        "6a89fced4f756c2a", 0, {"assistant_id": "48555a", "instructions": "b49177"},
        generation=None, attempt=None, version=1,
    )
    assert identity.recorded_spec_hash({identity.KEY_SPEC: "6a89fced4f756c2a;r=0"}) == (
        "6a89fced4f756c2a"
    )
    assert identity.recorded_spec_hash(
        {identity.KEY_SPEC: "v2;6a89fced4f756c2a;r=0;g=1"}
    ) == "6a89fced4f756c2a"
    assert identity.recorded_generation({identity.KEY_SPEC: "6a89fced4f756c2a;r=0"}) == 0


def test_the_current_run_is_chosen_by_generation_not_by_ids_or_clock() -> None:
    old = {identity.KEY_SPEC: "v2;aaaa;r=0;g=1;a=ffffffffffffffff"}
    new = {identity.KEY_SPEC: "v2;bbbb;r=0;g=2;a=0000000000000000"}
    # the replacement was created in the same second and got a smaller random id
    assert identity.recency(new, 100, "run_AAAA") > identity.recency(old, 100, "run_zzzz")
    assert identity.recency(new, 99, "run_A") > identity.recency(old, 100, "run_z")


def test_encoded_spec_with_every_field_fits_the_api_limit() -> None:
    spec = {name: name * 100 for name in RUN_FIELDS if name != "metadata"}
    assert len(identity.encode_spec(spec, 10**9)) <= 512


def test_decode_tolerates_hand_edited_values() -> None:
    record = identity.decode_spec("abc;r=x;99=zz,junk;g=;a=")
    assert (record.digest, record.revision, record.fields) == ("abc", None, {})
    assert (record.generation, record.attempt, record.version) == (None, None, 1)
    assert identity.decode_spec("v9999;x").version == 1  # not a version: a hash


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
