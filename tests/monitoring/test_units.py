"""Drift and quality arithmetic, and what a Cedar decision means for a prediction."""

from __future__ import annotations

import math

import pytest

from privet.monitoring.rules import classify
from privet.monitoring.stats import Agg, drift_scores, js_divergence, length_bin, psi, quality


def test_psi_and_js() -> None:
    assert psi([10, 20, 30], [10, 20, 30]) == pytest.approx(0.0, abs=1e-9)
    assert psi([10, 20, 30], [1, 2, 3]) == pytest.approx(0.0, abs=1e-9)  # scale-free
    shifted = psi([90, 10, 0], [10, 10, 80])
    assert shifted > 1.0
    assert js_divergence({"a": 5, "b": 5}, {"a": 50, "b": 50}) == pytest.approx(0.0)
    assert js_divergence({"a": 1}, {"b": 1}) == pytest.approx(1.0)
    assert 0 < js_divergence({"a": 8, "b": 2}, {"a": 2, "b": 8}) < 1


def test_aggregates_add_and_round_trip() -> None:
    a, b = Agg(), Agg()
    a.add_prediction("accept", 0.91, 10)
    b.add_prediction("reject", 0.55, 3000)
    b.add_embeddings(2, [1.0, 2.0], [1.0, 4.0])
    merged = Agg.from_json(a.count, a.to_json()).merge(b)
    assert merged.count == 2 and merged.labels == {"accept": 1, "reject": 1}
    assert merged.conf[9] == 1 and merged.conf[5] == 1
    assert merged.length[length_bin(10)] == 1 and merged.length[length_bin(3000)] == 1
    assert merged.emb_n == 2 and merged.emb_sum == [1.0, 2.0]
    scores = drift_scores(merged, merged)
    assert scores["label_js"] == 0 and scores["length_psi"] == pytest.approx(0, abs=1e-9)
    assert scores["embedding_shift"] == 0


def test_quality_accuracy_f1_and_calibration() -> None:
    rows = [("a", "a", 0.95)] * 8 + [("b", "a", 0.95)] * 2
    q = quality(rows, ["a", "b"])
    assert q["outcomes"] == 10 and q["accuracy"] == 0.8
    assert q["macro_f1"] == pytest.approx((2 * 0.8 / 1.8 + 0) / 2)
    assert q["ece"] == pytest.approx(0.15)
    assert quality([], ["a"])["accuracy"] is None
    assert math.isclose(quality([("a", "a", 1.0)], ["a"])["ece"] or 0.0, 0.0)


def test_classify_decisions() -> None:
    assert classify(True, ("decision.final-by-default",), False).status == "final"
    review = classify(False, ("decision.review.x", "decision.refer.y"), False)
    assert review.status == "pending_review" and review.rules == (
        "decision.refer.y",
        "decision.review.x",
    )
    assert classify(False, ("decision.refer.y",), False).status == "refer"
    # No permit or an evaluation error: never final without a person.
    assert classify(False, (), False).status == "pending_review"
    assert classify(True, ("decision.final-by-default",), True).status == "pending_review"


def test_small_embedding_sketches_are_never_written(monkeypatch: pytest.MonkeyPatch) -> None:
    """A flush with fewer embeddings than min_sketch_count keeps them in memory (same
    window) or drops them (window over): a stored sketch never describes a few texts."""
    from datetime import timedelta

    from privet.config import clear_settings_caches
    from privet.kit.ids import utcnow
    from privet.monitoring.hub import Monitor, window_start

    monkeypatch.setenv("PRIVET_MONITORING_MIN_SKETCH_COUNT", "5")
    clear_settings_caches()
    written: list[dict] = []

    class FakeSession:
        def execute(self, _stmt, rows):  # type: ignore[no-untyped-def]
            written.extend(rows)

    monitor = Monitor(policy_engine=None)
    now = window_start(utcnow(), 3600)
    monitor.clock = lambda: now
    old = now - timedelta(hours=1)
    with monitor._lock:
        monitor._pending[("mv", now)] = Agg()
        monitor._pending[("mv", now)].add_prediction("a", 0.9, 10)
        monitor._pending[("mv", now)].add_embeddings(3, [1.0], [1.0])
        monitor._pending[("mv", old)] = Agg()
        monitor._pending[("mv", old)].add_embeddings(2, [1.0], [1.0])
    monkeypatch.setattr("privet.monitoring.drift.judge_drift", lambda *a, **k: {})
    monitor.flush(FakeSession())  # type: ignore[arg-type]
    assert [(r["count"], r["data"]["emb_n"]) for r in written] == [(1, 0)]
    assert list(monitor._pending) == [("mv", now)] and monitor._pending[("mv", now)].emb_n == 3
    monitor._pending[("mv", now)].add_embeddings(2, [1.0], [1.0])
    monitor.flush(FakeSession())  # type: ignore[arg-type]
    assert written[-1]["data"]["emb_n"] == 5 and written[-1]["count"] == 0
    monkeypatch.delenv("PRIVET_MONITORING_MIN_SKETCH_COUNT")
    clear_settings_caches()
