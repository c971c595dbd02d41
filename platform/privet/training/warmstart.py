"""Warm start: fine-tune from the weights of an earlier fine-tuned classifier instead of
the base model's, keeping that classifier's labels and their order.

The caller (a job worker) decrypts the weights in memory; they never touch a file here.
Under DP, starting from released DP weights is post-processing of the earlier run: it
spends nothing more of the earlier data's budget (docs/PRIVACY.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from privet.training.catalog import Catalog, LoadedBaseModel, load_base_model, load_finetuned
from privet.training.config import ConfigError, TrainingConfig
from privet.training.data import LabelledTexts, label_names_for


@dataclass(frozen=True)
class WarmStart:
    """The initial weights of a run (safetensors bytes of a fine-tuned classifier)."""

    source: str
    """Where they come from (the model version id), for messages."""
    label_names: tuple[str, ...]
    """The classifier's labels in its head's order."""
    weights: bytes = field(repr=False)


def run_label_names(train_data: LabelledTexts, init: WarmStart | None) -> list[str]:
    """The labels of a run in head order: sorted from the data, or the warm start's own
    (every training label must be one of them: a new label would have no head row)."""
    if init is None:
        return label_names_for(train_data)
    unknown = sorted({str(label) for label in train_data.labels} - set(init.label_names))
    if unknown:
        raise ConfigError(
            f"the training data has labels {unknown} that the warm start {init.source} does "
            f"not know (its labels: {list(init.label_names)})"
        )
    return list(init.label_names)


def load_initial(
    config: TrainingConfig,
    *,
    label_names: list[str],
    init: WarmStart | None,
    catalog: Catalog | None = None,
) -> LoadedBaseModel:
    """The model a run starts from: the base model with a new seeded head, or the warm
    start's fine-tuned classifier (in training mode)."""
    if init is None:
        return load_base_model(
            config.base_model,
            num_labels=len(label_names),
            seed=config.seed,
            catalog=catalog,
            dropout=config.dropout,
        )
    if list(init.label_names) != label_names:
        raise ConfigError(f"the run's labels {label_names} are not those of {init.source}")
    return load_finetuned(
        init.weights,
        base_model=config.base_model,
        num_labels=len(label_names),
        catalog=catalog,
        dropout=config.dropout,
        for_training=True,
    )
