"""The distillation loss: KL divergence to the teacher's soft labels at temperature T,
scaled by T², zero where the student's tempered distribution is the teacher's."""

from __future__ import annotations

import math


def test_soft_targets_train_on_the_tempered_kl_divergence() -> None:
    import torch

    from privet.training.privacy import NonPrivateEngine

    model = torch.nn.Linear(2, 3)
    engine = NonPrivateEngine(model, torch.optim.SGD(model.parameters(), lr=0.1), temperature=2.0)
    logits = torch.tensor([[1.0, 0.0, -1.0], [0.5, 0.5, 0.0]])
    same = torch.softmax(logits / 2.0, dim=-1)
    assert abs(engine._loss(logits, same).item()) < 1e-6

    target = torch.tensor([[0.1, 0.2, 0.7], [0.5, 0.25, 0.25]])
    q = torch.softmax(logits / 2.0, dim=-1)
    kl = sum(
        float(p) * math.log(float(p) / float(qq))
        for row_p, row_q in zip(target, q, strict=True)
        for p, qq in zip(row_p, row_q, strict=True)
    )
    assert abs(engine._loss(logits, target).item() - 4.0 * kl) < 1e-5
    hard = torch.tensor([2, 0])  # integer labels still train on cross-entropy
    expected = torch.nn.functional.cross_entropy(logits, hard, reduction="sum")
    assert abs(engine._loss(logits, hard).item() - expected.item()) < 1e-6
