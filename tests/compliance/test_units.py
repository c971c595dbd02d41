"""Units: statutory deadlines, the erasure remedy rule, CSV neutralisation, chart escaping,
rendering of an empty report in every format."""

from __future__ import annotations

from datetime import UTC, date, datetime
from types import SimpleNamespace
from typing import Any

import pytest

from privet.compliance.deadlines import add_business_days, add_one_month, deadlines
from privet.compliance.remedies import choose_remedy
from privet.compliance.settings import ComplianceSettings
from privet.reports import charts
from privet.reports.model import Report, Table
from privet.reports.render import neutralise, to_csv, to_html


def test_gdpr_one_month_and_ccpa_deadlines() -> None:
    assert add_one_month(date(2026, 1, 31)) == date(2026, 2, 28)
    assert add_one_month(date(2026, 12, 15)) == date(2027, 1, 15)
    ack, due = deadlines("gdpr", date(2026, 3, 31))
    assert ack is None and due == datetime(2026, 4, 30, 23, 59, 59, tzinfo=UTC)
    # Friday 2026-11-27 + 10 business days = Friday 2026-12-11; + 45 days = 2027-01-11.
    assert add_business_days(date(2026, 11, 27), 10) == date(2026, 12, 11)
    ack, due = deadlines("ccpa", date(2026, 11, 27))
    assert ack is not None and ack.date() == date(2026, 12, 11)
    assert due.date() == date(2027, 1, 11)


def test_request_log_is_kept_at_least_24_months() -> None:
    with pytest.raises(ValueError):
        ComplianceSettings(request_log_days=365)
    assert ComplianceSettings().request_log_days >= 730


def _version(private: bool, eps: float | None) -> SimpleNamespace:
    privacy = {"epsilon": eps, "delta": 1e-5, "accountant": "prv"} if eps is not None else None
    return SimpleNamespace(private=private, privacy=privacy)


@pytest.mark.parametrize(
    ("mode", "private", "eps", "expected"),
    [
        ("auto", True, 1.0, "keep_with_dp"),
        ("auto", True, 9.0, "retrain"),
        ("auto", False, None, "retrain"),
        ("retrain", True, 1.0, "retrain"),
        ("keep_with_dp", True, 9.0, "keep_with_dp"),
        ("keep_with_dp", False, None, "retrain"),
    ],
)
def test_remedy_follows_the_setting(
    mode: str, private: bool, eps: float | None, expected: str
) -> None:
    config = ComplianceSettings(erasure_remedy=mode, keep_max_epsilon=8)  # type: ignore[arg-type]
    remedy, why = choose_remedy(_version(private, eps), config)  # type: ignore[arg-type]
    assert remedy.value == expected
    assert why and (expected != "keep_with_dp" or "differential privacy" in why)


def _one_cell_report(value: str, ledger: dict[str, Any]) -> Report:
    """A report of one table with one cell holding ``value``."""
    table = Table("t", "T", [("a", "A")], [{"a": value}])
    return Report("dsr-log", "t", datetime.now(UTC), "prn", {}, tables=[table], ledger=ledger)


def test_csv_cells_that_start_a_formula_are_neutralised() -> None:
    for bad in ("=1+1", "+cmd", "-2", "@SUM(A1)", "\t=x"):
        assert neutralise(bad).startswith("'")
    assert neutralise("plain") == "plain"
    report = _one_cell_report('=HYPERLINK("x")', {"tree_size": 0, "root_hash": ""})
    assert "'=HYPERLINK" in to_csv(report).decode()


def test_chart_text_is_escaped() -> None:
    svg = charts.bar_chart("<b>t</b>", ["<script>"], [("s&p", [1.0])])
    assert "<script>" not in svg and "&lt;script&gt;" in svg and "s&amp;p" in svg
    assert "no data" in charts.step_chart("t", [])


def test_html_escapes_values() -> None:
    ledger = {
        "tree_size": 0,
        "root_hash": "",
        "origin": "o",
        "events": [],
        "checkpoint": "",
        "verifier_key": "",
    }
    report = _one_cell_report("<img src=x onerror=1>", ledger)
    html = to_html(report)
    assert "<img" not in html and "&lt;img" in html
