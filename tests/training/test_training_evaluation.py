from __future__ import annotations

import pytest

from privet.training.evaluation import metrics_from_predictions


def test_metrics_on_known_predictions() -> None:
    labels = ["a", "b", "c"]
    y_true = [0, 0, 0, 0, 1, 1, 1, 2, 2, 2]
    y_pred = [0, 0, 1, 2, 1, 1, 0, 2, 2, 2]
    r = metrics_from_predictions(y_true, y_pred, labels)
    assert r.examples == 10
    assert r.accuracy == pytest.approx(7 / 10)
    assert r.confusion_matrix == ((2, 1, 1), (1, 2, 0), (0, 0, 3))
    a, b, c = r.per_class
    assert (a.precision, a.recall, a.support) == (pytest.approx(2 / 3), 0.5, 4)
    assert (b.precision, b.recall) == (pytest.approx(2 / 3), pytest.approx(2 / 3))
    assert (c.precision, c.recall) == (0.75, 1.0)
    f1s = [2 * p * q / (p + q) for p, q in [(2 / 3, 0.5), (2 / 3, 2 / 3), (0.75, 1.0)]]
    assert r.macro_f1 == pytest.approx(sum(f1s) / 3)
    assert r.to_dict()["per_class"][2]["label"] == "c"


def test_class_never_predicted_counts_as_zero() -> None:
    r = metrics_from_predictions([0, 1, 1], [1, 1, 1], ["x", "y"])
    assert r.per_class[0].precision == 0.0 and r.per_class[0].f1 == 0.0
    assert r.macro_f1 == pytest.approx((0.0 + 0.8) / 2)


def test_the_worst_class_is_named_with_its_f1() -> None:
    """A rare class can hide behind a good macro average: the evaluation names it."""
    from privet.training.evaluation import metrics_from_predictions

    result = metrics_from_predictions([0, 0, 0, 0, 1, 1, 2], [0, 0, 0, 0, 1, 0, 2], ["a", "b", "c"])
    assert result.worst_class == "b"
    assert result.worst_class_f1 == min(c.f1 for c in result.per_class) < result.macro_f1
    assert result.to_dict()["worst_class"] == "b"
