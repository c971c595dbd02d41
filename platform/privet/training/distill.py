"""Distillation: a student learns a DP teacher's label distributions over unlabelled texts.

The teacher's outputs are post-processing of its DP training: whatever the student
learns from them adds no ε about the teacher's data. The texts are the steward's,
declared non-personal, so the student trains without DP-SGD (`private: false`); its
loss is the KL divergence to the teacher's soft labels at a temperature
(docs/PRIVACY.md, Distillation).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from privet.training.catalog import Catalog, load_finetuned
from privet.training.config import TrainingConfig
from privet.training.data import LabelledTexts, SoftTargets, encode
from privet.training.progress import CancelCheck, ProgressCallback
from privet.training.trainer import TrainingResult, train_part
from privet.training.warmstart import WarmStart
from privet.training.world import LOCAL, World

DEFAULT_TEMPERATURE = 2.0


def soft_labels(
    teacher: WarmStart,
    texts: Sequence[str],
    *,
    base_model: str,
    temperature: float,
    max_length: int,
    batch_size: int = 64,
    catalog: Catalog | None = None,
) -> SoftTargets:
    """softmax(teacher logits / temperature) over `texts`, in the teacher's label order
    (on the CPU, in eval mode: the teacher is only read)."""
    labels = list(teacher.label_names)
    loaded = load_finetuned(
        teacher.weights, base_model=base_model, num_labels=len(labels), catalog=catalog
    )
    model = loaded.model
    placeholder = LabelledTexts(list(texts), [labels[0]] * len(texts))
    encoded = encode(
        placeholder, loaded.tokenizer, label_names=labels, max_length=max_length, model=model
    )
    rows = []
    with torch.no_grad():
        for start in range(0, len(encoded), batch_size):
            batch = encoded.batch(range(start, min(start + batch_size, len(encoded))))
            batch.pop("labels")
            logits = model(**batch).logits.float()
            rows.append(torch.softmax(logits / temperature, dim=-1))
    return SoftTargets(probabilities=torch.cat(rows), temperature=temperature)


def hard_labels(targets: SoftTargets, label_names: Sequence[str]) -> list[str]:
    """The teacher's most likely label of each row (what agreement is measured against)."""
    return [label_names[int(i)] for i in targets.probabilities.argmax(dim=-1).tolist()]


def train_student(
    config: TrainingConfig,
    texts: Sequence[str],
    targets: SoftTargets,
    eval_data: LabelledTexts,
    *,
    label_names: list[str],
    progress: ProgressCallback | None = None,
    should_cancel: CancelCheck | None = None,
    catalog: Catalog | None = None,
    world: World = LOCAL,
) -> TrainingResult:
    """Train `config.base_model` with a new head on `targets` over `texts` (the KL loss at
    the targets' temperature) and evaluate it on `eval_data` (labels among the teacher's).
    Raises ConfigError for a private config (distillation adds no DP of its own)."""
    part = LabelledTexts(list(texts), hard_labels(targets, label_names))
    config.validate(len(part.texts))
    outcome = train_part(
        config,
        part,
        eval_data,
        n=len(part.texts),
        label_names=label_names,
        progress=progress,
        should_cancel=should_cancel,
        catalog=catalog,
        world=world,
        soft_targets=targets,
    )
    assert outcome.result is not None
    return outcome.result
