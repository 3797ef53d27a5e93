"""The client's JSON reading: orjson for speed, with exactly json's answers.

orjson refuses what Python's json accepts (NaN, integers past 64 bits, lone surrogates, UTF-16
text); those bodies must still read as they always have, and a body neither accepts is still
an error.
"""

from __future__ import annotations

import json
import math

import pytest

from reconciler.client.answers import _parse_json, _TooDeepError

BODIES = [
    b'{"id": "run_1", "metadata": {"k": "v"}, "temperature": 0.7, "tools": []}',
    b'{"usage": null, "n": 18446744073709551617}',  # past 64 bits
    b'{"x": "\\ud800"}',  # a lone surrogate
    '{"é": "ü"}'.encode("utf-16"),  # json detects UTF-16 from its bytes
    b'{"a": 1, "a": 2}',  # the last of a repeated key
    b'[1e400, -0.0, 5e-324, -0, 1E2, 0.1]',
    b'[9223372036854775807, 18446744073709551615, -9223372036854775808]',  # 64 bits
    b'[9223372036854775808, -9223372036854775809, 123456789012345678901234567890]',
    b'{"id": "thread_1234567890123456789012"}',  # 19 digits in a string: json reads it
    b'\xef\xbb\xbf{"bom": true}',  # json skips a UTF-8 byte order mark
]


@pytest.mark.parametrize("body", BODIES)
def test_every_body_reads_as_json_reads_it(body: bytes) -> None:
    assert repr(_parse_json(body, 128)) == repr(json.loads(body))  # types too: 1 is not 1.0


def test_nan_reads_as_json_reads_it() -> None:
    value = _parse_json(b'{"t": NaN}', 128)
    assert math.isnan(value["t"])


def test_a_body_neither_reads_is_still_an_error() -> None:
    with pytest.raises(ValueError):
        _parse_json(b'{"id": "run_1",}', 128)


def test_nesting_past_the_limit_is_refused_before_parsing() -> None:
    with pytest.raises(_TooDeepError):
        _parse_json(b"[" * 200 + b"]" * 200, 128)
