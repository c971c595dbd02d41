"""Evaluation on a held-out split: accuracy, macro-F1, per-class precision/recall/F1, the
worst class, confusion.

Returned as plain data (JSON-ready via `to_dict`) so it can go into the model card and the
job record unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from privet.training.data import EncodedDataset


@dataclass(frozen=True)
class ClassMetrics:
    label: str
    precision: float
    recall: float
    f1: float
    support: int


@dataclass(frozen=True)
class EvaluationResult:
    examples: int
    accuracy: float
    macro_f1: float
    per_class: tuple[ClassMetrics, ...]
    labels: tuple[str, ...]
    confusion_matrix: tuple[tuple[int, ...], ...]
    """Rows are true labels, columns predicted labels, both in `labels` order."""
    worst_class: str = ""
    """The label with the lowest F1 (the first in `labels` order on a tie): a rare class
    that matters can hide behind a good macro average."""
    worst_class_f1: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _ratio(num: int, den: int) -> float:
    return num / den if den else 0.0


def metrics_from_predictions(
    y_true: Sequence[int], y_pred: Sequence[int], labels: Sequence[str]
) -> EvaluationResult:
    """Metrics from label indices. Undefined precision/recall/F1 (0/0) count as 0."""
    if len(y_true) != len(y_pred):
        raise ValueError("y_true and y_pred differ in length")
    k = len(labels)
    matrix = [[0] * k for _ in range(k)]
    for t, p in zip(y_true, y_pred, strict=True):
        matrix[int(t)][int(p)] += 1
    per_class = []
    for i, name in enumerate(labels):
        tp = matrix[i][i]
        predicted = sum(matrix[r][i] for r in range(k))
        actual = sum(matrix[i])
        precision = _ratio(tp, predicted)
        recall = _ratio(tp, actual)
        f1 = _ratio(2 * tp, predicted + actual)
        per_class.append(ClassMetrics(str(name), precision, recall, f1, actual))
    n = len(y_true)
    worst = min(per_class, key=lambda c: c.f1) if per_class else None
    return EvaluationResult(
        examples=n,
        accuracy=_ratio(sum(matrix[i][i] for i in range(k)), n),
        macro_f1=sum(c.f1 for c in per_class) / k if k else 0.0,
        per_class=tuple(per_class),
        labels=tuple(str(name) for name in labels),
        confusion_matrix=tuple(tuple(row) for row in matrix),
        worst_class="" if worst is None else worst.label,
        worst_class_f1=0.0 if worst is None else worst.f1,
    )


@torch.no_grad()
def predict(
    model: nn.Module,
    data: EncodedDataset,
    *,
    batch_size: int = 128,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Predicted label indices (on the CPU), in eval mode (restores the previous mode
    afterwards); batches go to `device` when given (a model still on its training GPU)."""
    was_training = model.training
    model.eval()
    preds = []
    try:
        for start in range(0, len(data), batch_size):
            batch = data.batch(range(start, min(start + batch_size, len(data))))
            batch.pop("labels")
            if device is not None:
                batch = {k: v.to(device) for k, v in batch.items()}
            logits = model(**batch).logits
            preds.append(logits.argmax(dim=-1).cpu())
    finally:
        model.train(was_training)
    return torch.cat(preds) if preds else torch.empty(0, dtype=torch.long)


def evaluate(
    model: nn.Module, data: EncodedDataset, labels: Sequence[str], *, batch_size: int = 128
) -> EvaluationResult:
    pred = predict(model, data, batch_size=batch_size)
    return metrics_from_predictions(data.labels.tolist(), pred.tolist(), labels)
