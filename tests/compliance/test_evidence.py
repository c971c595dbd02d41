"""Ledger evidence at scale (issue 23): proofs for many cited events from a bounded number
of SQL statements, every proof verifying offline (and a tampered one failing), the
access-log report streamed with the range it covers, its time window, and the PDF row
limit. On SQLite and PostgreSQL (``db_url``)."""

from __future__ import annotations

import copy
import hashlib
import json
import time
from datetime import datetime
from typing import cast

import pytest
from sqlalchemy import Engine
from sqlmodel import select

from privet.config import clear_settings_caches
from privet.db import read_session, session_scope
from privet.ledger import EventSpec, emit_many, queries
from privet.ledger.sequencer import Ledger
from privet.ledger.tables import LedgerEntry
from privet.reports.evidence import Evidence
from privet.reports.kind import ReportRuntime
from privet.reports.kinds.access_log import build_access_log
from privet.reports.model import Rows
from privet.reports.render import ReportTooLargeError, iter_render, render
from privet_audit.report import verify_report
from tests.ledger.conftest import engine, home, ledger  # noqa: F401
from tests.statements import counted

NO_RUNTIME = cast(ReportRuntime, None)
"""The access-log builder reads only the session (its runtime parameter is unused)."""


def _decisions(eng: Engine, n: int, *, actor: str = "prn_app") -> None:
    with session_scope(eng) as s:
        emit_many(
            s,
            [
                EventSpec(
                    "auth.decision",
                    actor,
                    project="prj_1",
                    objects={"project": "prj_1"},
                    outcome="allow" if i % 3 else "deny",
                    details={"action": "project.read", "policies": ["p1"]},
                )
                for i in range(n)
            ],
        )


@pytest.fixture
def filled(engine: Engine, ledger: Ledger) -> Engine:  # noqa: F811
    _decisions(engine, 37, actor="prn_other")  # some leaves before the cited ones
    _decisions(engine, 260)
    ledger.integrate_now()
    return engine


def test_proofs_for_200_events_take_a_few_statements_and_verify(filled: Engine) -> None:
    with session_scope(filled) as s:
        ev = Evidence(s)
        cited = ev.events(type="auth.decision", actor="prn_app", limit=200)
        assert len(cited) == 200
        with counted(filled) as statements:
            doc = {"ledger": {**ev.to_json(), "events": list(ev.to_json()["events"])}}
    # leaves and interior nodes: one statement each (per-event proofs took 200 * ~18)
    assert len(statements) <= 4, statements
    assert [e["index"] for e in doc["ledger"]["events"]] == [e.index for e in cited]
    result = verify_report(doc)
    assert result.ok and result.events_verified == 200, result.message

    tampered = copy.deepcopy(doc)
    proof = tampered["ledger"]["events"][123]["inclusion_proof"]
    proof[2] = ("0" if proof[2][0] != "0" else "1") + proof[2][1:]
    bad = verify_report(tampered)
    assert not bad.ok and bad.bad_event == 123 and "inclusion proof" in bad.message


def test_single_proof_route_matches_the_batched_proofs(filled: Engine) -> None:
    with session_scope(filled) as s:
        ev = Evidence(s)
        ev.events(type="auth.decision", limit=300)
        batched = {e["index"]: e["inclusion_proof"] for e in ev.to_json()["events"]}
        for index in (0, 1, 36, 37, 150, 296):
            one = queries.get_inclusion_proof(session=s, index=index)
            assert one.hashes == batched[index]
            assert one.root_hash == ev.checkpoint.root_hash


def test_access_log_streams_states_its_range_and_verifies(filled: Engine) -> None:
    with read_session(filled) as s:
        report = build_access_log(s, NO_RUNTIME, actor="prn_admin", principal="prn_app")
        rows = report.tables[0].rows
        assert isinstance(rows, Rows) and len(rows) == 260  # read again when rendered
        first, last = 37, 296
        assert report.range == {
            "tree_size": 297,
            "first_index": first,
            "last_index": last,
            "since": None,
            "until": None,
        }
        doc = json.loads(render(report, "json"))
        assert doc["report"]["range"]["first_index"] == first
        assert doc["ledger"]["range"]["last_index"] == last
        assert len(doc["tables"][0]["rows"]) == 260 and len(doc["ledger"]["events"]) == 260
        assert doc["summary"]["Decisions"] == 260 and doc["summary"]["Denied"] == 87
        assert verify_report(doc).ok
        csv_text = render(report, "csv").decode()
        assert "range_first_index,37" in csv_text and "range_tree_size,297" in csv_text
        assert csv_text.count("\r\ndecisions,") == 260
        assert f"cites log events #{first} to #{last}" in render(report, "html").decode()
        assert sum(1 for _ in iter_render(report, "csv")) >= 1


def test_access_log_time_window(engine: Engine, ledger: Ledger) -> None:  # noqa: F811
    for n in (20, 30, 10):  # three batches, three event times
        _decisions(engine, n)
        ledger.integrate_now()
        time.sleep(0.002)
    with session_scope(engine) as s:
        times = [e.event["time"] for e in queries.list_events(session=s, limit=100).items]
    assert len(times) == 60 and times[19] < times[20] < times[50], "batches need distinct times"
    since, until = datetime.fromisoformat(times[20]), datetime.fromisoformat(times[50])
    with read_session(engine) as s:
        report = build_access_log(s, NO_RUNTIME, actor="prn_admin", since=since)
        assert len(report.tables[0].rows) == 40
        assert report.range["first_index"] == 20 and report.range["since"] == since.isoformat()
        before = build_access_log(s, NO_RUNTIME, actor="prn_admin", until=since)
        assert len(before.tables[0].rows) == 20 and before.range["last_index"] == 19
        window = build_access_log(s, NO_RUNTIME, actor="prn_admin", since=since, until=until)
        assert (window.range["first_index"], window.range["last_index"]) == (20, 49)
        assert window.range["until"] == until.isoformat()
        doc = json.loads(render(window, "json"))
        assert doc["report"]["parameters"]["since"] == since.isoformat()
        assert [e["index"] for e in doc["ledger"]["events"]] == list(range(20, 50))
        assert [r["index"] for r in doc["tables"][0]["rows"]] == [f"#{i}" for i in range(20, 50)]


def test_pdf_is_refused_above_the_row_limit(
    filled: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PRIVET_COMPLIANCE_MAX_PDF_ROWS", "100")
    clear_settings_caches()
    try:
        with read_session(filled) as s:
            report = build_access_log(s, NO_RUNTIME, actor="prn_admin")
            with pytest.raises(ReportTooLargeError) as refused:
                render(report, "pdf")
            assert refused.value.status == 422
            assert "PDF row limit of 100" in refused.value.detail
            assert "format=csv" in refused.value.detail
            assert refused.value.extensions == {"limit": 100, "rows": 297}
            assert render(report, "csv")  # the other formats stream at any size
    finally:
        monkeypatch.delenv("PRIVET_COMPLIANCE_MAX_PDF_ROWS")
        clear_settings_caches()


def test_the_api_streams_reports_and_refuses_a_large_pdf(  # type: ignore[no-untyped-def]
    client, admin, runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    for _ in range(3):  # each authenticated request writes an auth.decision
        assert client.get("/v1/projects", headers=admin.headers).status_code == 200
    r = client.get("/v1/reports/access-log", params={"format": "csv"}, headers=admin.headers)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert "range_tree_size" in r.text
    # the streamed document's digest is recorded once the last byte is out
    digest = "sha256:" + hashlib.sha256(r.content).hexdigest()
    with session_scope(runtime.engine) as s:
        events = [json.loads(e) for e in s.exec(select(LedgerEntry.event)).all()]
    issued = [e for e in events if e["type"] == "report.issued"]
    assert issued and issued[-1]["digests"]["document"] == digest

    monkeypatch.setenv("PRIVET_COMPLIANCE_MAX_PDF_ROWS", "2")
    clear_settings_caches()
    try:
        r = client.get("/v1/reports/access-log", params={"format": "pdf"}, headers=admin.headers)
        assert r.status_code == 422, r.text
        problem = r.json()
        assert problem["type"].endswith("report-too-large") and problem["limit"] == 2
        assert "PDF row limit of 2" in problem["detail"] and "format=csv" in problem["detail"]
        r = client.get(
            "/v1/reports/access-log",
            params={"format": "json", "since": "2000-01-01T00:00:00Z"},
            headers=admin.headers,
        )
        assert r.status_code == 200
        doc = r.json()
        assert doc["report"]["range"]["since"] == "2000-01-01T00:00:00+00:00"
        assert doc["report"]["range"]["tree_size"] == doc["ledger"]["tree_size"]
        assert verify_report(doc).ok
    finally:
        monkeypatch.delenv("PRIVET_COMPLIANCE_MAX_PDF_ROWS")
        clear_settings_caches()
