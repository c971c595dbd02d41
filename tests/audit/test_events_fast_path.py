"""The validator's fast paths report exactly what the reference validator reports, and the
fast ``format_time`` gives strftime's string."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from privet_audit.canonical import MAX_SAFE_INTEGER
from privet_audit.events import event_errors, format_time

from . import _events_reference as reference
from .test_events import BAD_EVENTS, GOOD_EVENTS


class _Str(str):
    pass


class _Int(int):
    pass


_names = st.one_of(
    st.sampled_from(["a", "policy_ids", "n_2", "model", "input", "x" * 64, "x" * 65]),
    st.sampled_from(["", "A", "1a", "a-b", "é", _Str("ok")]),
    st.text(max_size=6),
    st.integers(0, 2),
)
_ids = st.one_of(
    st.none(),
    st.sampled_from(["prn_1", "p/1:x@y", "a" * 128, "a" * 129, "-x", "", _Str("prn_s")]),
    st.text(max_size=6),
    st.integers(0, 3),
    st.lists(st.text(max_size=2), max_size=1),
)
_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**60), 2**60),
    st.sampled_from([MAX_SAFE_INTEGER, MAX_SAFE_INTEGER + 1, _Int(4), _Str("s"), 1.5]),
    st.text(max_size=5),
)
_details = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.lists(inner, max_size=2).map(tuple),
        st.dictionaries(_names, inner, max_size=4),
    ),
    max_leaves=30,
)
_events = st.fixed_dictionaries(
    {
        "v": st.sampled_from([1, 1, 1, 2, True, "1"]),
        "type": st.sampled_from(["auth.decision", "a.b", "nodot", "A.b", 3, "a." + "b" * 70]),
        "time": st.sampled_from([format_time(), "2026-11-29T21:07:39Z", None]),
        "actor": _ids,
        "project": _ids,
        "objects": st.one_of(st.dictionaries(_names, _ids, max_size=3), st.just([])),
        "digests": st.one_of(
            st.dictionaries(
                _names,
                st.sampled_from(["sha256:" + "0" * 64, "hmac-sha256:" + "ab" * 32, "md5:0", 1]),
                max_size=3,
            ),
            st.none(),
        ),
        "outcome": st.sampled_from(["ok", "allow", "deny", "error", "maybe", None]),
        "details": st.one_of(st.dictionaries(_names, _details, max_size=4), st.just("x")),
    }
)


@settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_events, st.sets(st.sampled_from(["v", "type", "details", "objects"]), max_size=2))
def test_validator_matches_reference_on_generated_events(
    event: dict[str, Any], drop: set[str]
) -> None:
    for key in drop:
        del event[key]
    assert event_errors(event) == reference.event_errors(event)
    # twice: the second call answers from the validator's caches of names and ids
    assert event_errors(event) == reference.event_errors(event)


def _nest(depth: int, leaf: Any, *, in_list: bool) -> Any:
    value = leaf
    for _ in range(depth):
        value = [value] if in_list else {"k": value}
    return value


@pytest.mark.parametrize("depth", [14, 15, 16, 17, 18])
@pytest.mark.parametrize("leaf", [1, "s", None, True, 2**60, 1.5])
@pytest.mark.parametrize("in_list", [True, False])
def test_validator_depth_limit_matches_reference(depth: int, leaf: Any, in_list: bool) -> None:
    event = copy.deepcopy(GOOD_EVENTS[0])
    event["details"] = {"deep": _nest(depth, leaf, in_list=in_list)}
    assert event_errors(event) == reference.event_errors(event)


def test_validator_matches_reference_on_the_fixed_cases() -> None:
    for event in [*GOOD_EVENTS, *BAD_EVENTS, None, [], "x"]:
        assert event_errors(event) == reference.event_errors(event)


@pytest.mark.parametrize(
    "when",
    [
        datetime(2026, 11, 29, 21, 7, 39, 123456, tzinfo=UTC),
        datetime(2026, 1, 2, 3, 4, 5, 0, tzinfo=UTC),
        datetime(1000, 1, 1, tzinfo=UTC),
        datetime(999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        datetime(1, 1, 1, tzinfo=UTC),
        datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        datetime(2026, 3, 29, 1, 30, tzinfo=timezone(timedelta(hours=-5, minutes=-30))),
        datetime(2026, 3, 29, 1, 30, 0, 7, tzinfo=timezone(timedelta(hours=14))),
    ],
)
def test_format_time_matches_strftime(when: datetime) -> None:
    assert format_time(when) == reference.format_time(when)


@settings(max_examples=500, deadline=None)
@given(st.datetimes(timezones=st.timezones()))
def test_format_time_matches_strftime_generated(when: datetime) -> None:
    try:
        expected = reference.format_time(when)
    except (OverflowError, ValueError):
        with pytest.raises((OverflowError, ValueError)):
            format_time(when)
        return
    assert format_time(when) == expected
