"""The rows one rank trains on: its part of the data encoded once, labelled with a
teacher's distributions when distilling, or K augmented copies per example encoded per
batch (augment.py). One place decides which, so the trainer and the engines never do.
"""

from __future__ import annotations

from privet.training.augment import AugmentedRows
from privet.training.catalog import LoadedBaseModel
from privet.training.config import ConfigError, TrainingConfig
from privet.training.data import LabelledTexts, SoftTargets, encode
from privet.training.steps import TrainingRows


def rank_rows(
    config: TrainingConfig,
    part: LabelledTexts | None,
    loaded: LoadedBaseModel,
    *,
    labels: list[str],
    rank: int,
    soft: SoftTargets | None,
) -> TrainingRows | None:
    """This rank's training rows: encoded once (labelled with the teacher's distributions
    when distilling), or K augmented copies encoded per batch."""
    if part is None:
        return None
    if soft is not None and config.private:
        raise ConfigError("distillation trains without DP-SGD (private: false)")
    if config.augmentation.active:
        if soft is not None:
            raise ConfigError(
                "augmentation multiplicity does not apply to distillation: the teacher's "
                "distributions label the texts as they are"
            )
        return AugmentedRows(
            part,
            config.augmentation,
            tokenizer=loaded.tokenizer,
            label_names=labels,
            max_length=config.max_length,
            model=loaded.model,
            seed=f"augment:{config.seed}:{rank}",
        )
    encoded = encode(
        part,
        loaded.tokenizer,
        label_names=labels,
        max_length=config.max_length,
        model=loaded.model,
    )
    if soft is not None:
        encoded.labels = soft.probabilities
    return encoded
