"""The event validator and the published JSON Schema describe the same format."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from privet_audit.canonical import parse_canonical
from privet_audit.events import (
    EventError,
    event_errors,
    event_schema,
    format_time,
    make_event,
    validate_event,
)

GOOD: dict[str, Any] = {
    "v": 1,
    "type": "auth.decision",
    "time": "2026-11-29T21:07:39.123456Z",
    "actor": "prn_7f3a",
    "project": "prj_01",
    "objects": {"model_version": "mv_3", "dataset_version": "dsv_9"},
    "digests": {"input": "hmac-sha256:" + "ab" * 32, "weights": "sha256:" + "0" * 64},
    "outcome": "deny",
    "details": {
        "policy_ids": ["deny-default", "p7"],
        "epsilon_milli": 8000,
        "ok": False,
        "nested": {"n": None, "l": [1, "a", [True]]},
    },
}


def variant(**changes: Any) -> dict[str, Any]:
    ev = copy.deepcopy(GOOD)
    for k, v in changes.items():
        if v is ...:
            del ev[k]
        else:
            ev[k] = v
    return ev


GOOD_EVENTS: list[Any] = [
    GOOD,
    variant(actor=None, project=None, objects={}, digests={}, details={}),
    variant(type="project.created", outcome="ok"),
    variant(type="a.b.c_d", outcome="error"),
]

BAD_EVENTS: list[Any] = [
    variant(v=2),
    variant(v=True),
    variant(v=...),
    variant(extra=1),
    variant(type="Auth.Decision"),
    variant(type="nodot"),
    variant(type=3),
    variant(time="2026-11-29T21:07:39Z"),
    variant(time="2026-11-29 21:07:39.123456Z"),
    variant(time="2026-11-29T21:07:39.123456+00:00"),
    variant(actor=""),
    variant(actor="has space"),
    variant(actor=42),
    variant(project=["x"]),
    variant(objects={"Model": "mv_3"}),
    variant(objects={"model": 3}),
    variant(objects=[]),
    variant(digests={"input": "md5:" + "0" * 32}),
    variant(digests={"input": "sha256:" + "A" * 64}),
    variant(digests={"input": "sha256:" + "0" * 63}),
    variant(outcome="maybe"),
    variant(outcome=None),
    variant(details={"BadKey": 1}),
    variant(details={"x": 1.5}),
    variant(details={"x": {"y": [1.5]}}),
    variant(details=[]),
    "not an object",
]


@pytest.mark.parametrize("event", GOOD_EVENTS)
def test_good_events_pass(event: dict[str, Any]) -> None:
    validate_event(event)


@pytest.mark.parametrize("event", BAD_EVENTS)
def test_bad_events_fail(event: Any) -> None:
    with pytest.raises(EventError):
        validate_event(event)


def test_errors_name_the_field() -> None:
    assert any("$.outcome" in e for e in event_errors(variant(outcome="maybe")))
    assert any("missing field(s) v" in e for e in event_errors(variant(v=...)))


@pytest.mark.parametrize("event", GOOD_EVENTS + BAD_EVENTS)
def test_json_schema_agrees_with_validator(event: Any) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    validator = jsonschema.Draft202012Validator(event_schema())
    jsonschema.Draft202012Validator.check_schema(event_schema())
    assert validator.is_valid(event) == (not event_errors(event))


def test_make_event_is_canonical_and_valid() -> None:
    raw = make_event(
        type="prediction.made",
        outcome="ok",
        actor="prn_1",
        objects={"model_version": "mv_1"},
        digests={"input": "hmac-sha256:" + "1" * 64},
        details={"label": 1},
        time=datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC),
    )
    value = parse_canonical(raw)
    assert value["time"] == "2026-01-02T03:04:05.000006Z"
    validate_event(value)
    with pytest.raises(EventError):
        make_event(type="x.y", outcome="ok", details={"f": 0.1})


def test_schema_file_is_published_json() -> None:
    schema = event_schema()
    assert schema["properties"]["v"]["const"] == 1
    json.dumps(schema)
    assert format_time(datetime(2026, 1, 1, tzinfo=UTC)) == "2026-01-01T00:00:00.000000Z"
