"""Canonical JSON: the exact bytes a ledger entry commits to."""

from __future__ import annotations

import pytest

from privet_audit.canonical import CanonicalError, canonical_bytes, parse_canonical


def test_sorted_keys_no_whitespace_utf8() -> None:
    assert canonical_bytes({"b": 1, "a": [True, None, "é"], "c": {"y": 0, "x": -2}}) == (
        '{"a":[true,null,"é"],"b":1,"c":{"x":-2,"y":0}}'.encode()
    )


def test_escapes_control_characters_and_never_emits_newlines() -> None:
    out = canonical_bytes({"s": 'a\n\r\t\b\f\x01\x1f"\\/\u2028'})
    assert out == b'{"s":"a\\n\\r\\t\\b\\f\\u0001\\u001f\\"\\\\/\xe2\x80\xa8"}'
    assert b"\n" not in out


def test_keys_sort_by_utf16_code_units_like_jcs() -> None:
    # U+1F600 (surrogates D83D..) sorts before U+FB01 in UTF-16, after it by code point.
    obj = {"\ufb01": 1, "\U0001f600": 2}
    assert canonical_bytes(obj) == '{"\U0001f600":2,"\ufb01":1}'.encode()


@pytest.mark.parametrize("bad", [1.0, 0.5, float("nan"), float("inf"), {"x": [1, 2.5]}])
def test_floats_are_rejected(bad: object) -> None:
    with pytest.raises(CanonicalError, match="float"):
        canonical_bytes(bad)


@pytest.mark.parametrize("bad", [2**53, -(2**53), {1: "x"}, b"bytes", {"s": {1, 2}}, "\ud800"])
def test_other_unrepresentable_values_are_rejected(bad: object) -> None:
    with pytest.raises(CanonicalError):
        canonical_bytes(bad)


def test_parse_canonical_round_trip_and_rejections() -> None:
    data = canonical_bytes({"a": 1, "b": ["x"]})
    assert parse_canonical(data) == {"a": 1, "b": ["x"]}
    for bad in [
        b'{"b":1,"a":2}',  # unsorted
        b'{"a": 1}',  # whitespace
        b'{"a":1,"a":1}',  # duplicate key
        b'{"a":1.0}',  # float
        b'{"a":NaN}',
        b'{"a":"\\u00e9"}',  # needless escape
        b"\xff",
        b"{",
    ]:
        with pytest.raises(CanonicalError):
            parse_canonical(bad)
