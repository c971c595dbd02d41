"""The fast canonical encoder gives exactly the reference encoder's bytes (or its error).

``canonical_bytes`` takes a fast path (json's C encoder sorting keys) for plain values and
the reference path (``_normalize``, every rule checked) for the rest; the audit contract is
the reference's bytes, so every value here must encode identically both ways.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from privet_audit.canonical import (
    MAX_SAFE_INTEGER,
    CanonicalError,
    _canonical_bytes_reference,
    _plain,
    canonical_bytes,
)
from privet_audit.events import FIELDS, format_time, make_event, validate_event


def _outcome(encode: Callable[[Any], bytes], value: Any) -> tuple[str, Any]:
    """What ``encode`` makes of ``value``: ("ok", bytes) or ("error", why)."""
    try:
        return "ok", encode(value)
    except CanonicalError as exc:
        return "error", str(exc)
    except RecursionError:
        return "error", "recursion"


def _same(value: Any) -> None:
    fast = _outcome(canonical_bytes, value)
    assert fast == _outcome(_canonical_bytes_reference, value), repr(value)


# Characters from every region that matters: ASCII, controls, the escapes, Latin-1, BMP
# below and above the surrogates (U+E000..U+FFFF sorts differently by code point than by
# UTF-16), lone surrogates, astral characters, U+2028/9, noncharacters.
_chars = st.one_of(
    st.characters(min_codepoint=0, max_codepoint=0x7F),
    st.sampled_from(list('"\\/\b\f\n\r\t\x00\x1f\x7f\u2028\u2029\ufeff\ufffe\uffff')),
    st.characters(min_codepoint=0x80, max_codepoint=0xD7FF),
    st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF, categories=["Cs"]),
    st.characters(min_codepoint=0xE000, max_codepoint=0xFFFF),
    st.characters(min_codepoint=0x10000, max_codepoint=0x10FFFF),
)
_text = st.text(_chars, max_size=12)
_keys = st.one_of(_text, st.sampled_from(["a", "b", "aa", "A", "_", "", "\ufb01", "\U0001f600"]))
_ints = st.one_of(
    st.integers(-1000, 1000),
    st.integers(-(2**60), 2**60),
    st.sampled_from(
        [MAX_SAFE_INTEGER, -MAX_SAFE_INTEGER, MAX_SAFE_INTEGER + 1, -MAX_SAFE_INTEGER - 1]
    ),
)
_scalars = st.one_of(
    st.none(),
    st.booleans(),
    _ints,
    _text,
    st.floats(allow_nan=True, allow_infinity=True),
)
_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5),
        st.lists(inner, max_size=3).map(tuple),
        st.dictionaries(_keys, inner, max_size=5),
        st.dictionaries(st.one_of(st.integers(0, 3), st.none()), inner, max_size=2),
    ),
    max_leaves=25,
)


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_values)
def test_fast_path_matches_reference_on_generated_values(value: Any) -> None:
    _same(value)


def _event(rng: random.Random) -> dict[str, Any]:
    """An event shaped like the platform's, with random (often non-ASCII) detail strings."""
    pool = 'aé\u00ff\u0100\u4e2d\ud7ff\ue000\uffff\U0001f600\U0010ffff\n\t"\\\x00\x1f\u2028/ '

    def word() -> str:
        return "".join(rng.choice(pool) for _ in range(rng.randint(0, 8)))

    def detail(depth: int) -> Any:
        kind = rng.randint(0, 7 if depth < 3 else 4)
        if kind == 0:
            return None
        if kind == 1:
            return rng.choice([True, False])
        if kind == 2:
            return rng.randint(-MAX_SAFE_INTEGER, MAX_SAFE_INTEGER)
        if kind in (3, 4):
            return word()
        if kind == 5:
            return [detail(depth + 1) for _ in range(rng.randint(0, 4))]
        names = ["a", "b", "status", "policies", "reason", "n_2", "z"]
        return {rng.choice(names): detail(depth + 1) for _ in range(rng.randint(0, 4))}

    return {
        "v": 1,
        "type": rng.choice(["auth.decision", "model.version.created", "prediction.made"]),
        "time": format_time(),
        "actor": rng.choice([None, f"prn_{rng.getrandbits(48):012x}"]),
        "project": rng.choice([None, "prj_abc", "p/1:x@y"]),
        "objects": {rng.choice(["model", "dataset", "job"]): f"id_{i}" for i in range(3)},
        "digests": {"input": f"hmac-sha256:{rng.getrandbits(256):064x}"},
        "outcome": rng.choice(["ok", "allow", "deny", "error"]),
        "details": {
            rng.choice(["action", "reason", "items", "extra"]): detail(0) for _ in range(4)
        },
    }


def test_fast_path_matches_reference_on_platform_events() -> None:
    rng = random.Random(20261130)
    for _ in range(5000):
        event = _event(rng)
        assert sorted(event) == sorted(FIELDS)
        validate_event(event)
        assert _plain(event, 0)  # what the platform emits takes the fast path
        assert canonical_bytes(event) == _canonical_bytes_reference(event)
        fields = {k: event[k] for k in FIELDS if k != "v"}
        assert make_event(**fields) == _canonical_bytes_reference(event)


def _nested(depth: int) -> list[Any]:
    value: list[Any] = [1]
    for _ in range(depth):
        value = [value]
    return value


class _Str(str):
    pass


class _Int(int):
    pass


class _Dict(dict):  # type: ignore[type-arg]
    pass


@pytest.mark.parametrize(
    "value",
    [
        {"\ufb01": 1, "\U0001f600": 2},  # keys whose UTF-16 order is not code-point order
        {"\ue000": 1, "\U00010000": 2, "\ud7ff": 3},
        {"s": "\ud800"},  # lone surrogate in a value
        {"\udfff": 1},  # and in a key
        {"a": (1, 2)},
        {"a": 1.0},
        {"a": [2**53]},
        {1: "x"},
        {None: "x"},
        {"a": _Str("x"), "b": _Int(3), "c": _Dict(z=1, y=2)},
        _Dict(b=1, a=2),
        _nested(70),
        {"b": True, "a": False, "c": None, "": "", "A": -0},
        "top-level \u2028 string",
        -MAX_SAFE_INTEGER,
        [],
        {},
    ],
)
def test_fast_path_matches_reference_on_edge_cases(value: Any) -> None:
    _same(value)


def test_self_referencing_values_are_still_refused() -> None:
    loop: list[Any] = []
    loop.append(loop)
    assert not _plain(loop, 0)
    with pytest.raises(RecursionError):
        canonical_bytes(loop)
