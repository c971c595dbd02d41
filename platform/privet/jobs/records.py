"""What a succeeded job records about its run, in its result and its model version's:
the DP guarantee the accountant reports, and how the model was trained."""

from __future__ import annotations

import math
from dataclasses import asdict
from typing import Any

from privet.training import TrainingResult


def finite(value: float | None) -> float | None:
    """A float the JSON columns can hold (NaN and ±inf become None)."""
    return None if value is None or not math.isfinite(value) else float(value)


def privacy_record(result: TrainingResult) -> dict[str, Any] | None:
    """The DP guarantee as the job result and the model version record it (None: no DP)."""
    if result.privacy is None:
        return None
    return {
        "epsilon": result.privacy.epsilon,
        "delta": result.privacy.delta,
        "accountant": result.privacy.accountant,
        "noise_multiplier": result.privacy.noise_multiplier,
        "max_grad_norm": result.privacy.max_grad_norm,
        "sample_rate": result.privacy.sample_rate,
        "steps": result.privacy.steps,
        "target_epsilon": result.privacy.target_epsilon,
        "grad_sample_mode": result.privacy.grad_sample_mode,
        "secure_mode": result.privacy.secure_mode,
        "epsilon_training": result.privacy.epsilon_training,
        "epsilon_selection": result.privacy.epsilon_selection,
        "selection_noise_multiplier": result.privacy.selection_noise_multiplier,
        "selection_releases": result.privacy.selection_releases,
    }


def selection_record(result: TrainingResult) -> dict[str, Any] | None:
    """What model selection did (None: off); its per-epoch releases go to the history."""
    if result.selection is None:
        return None
    record: dict[str, Any] = result.selection.to_dict()
    record.pop("epochs", None)
    return record


def seen_by_selection(result: TrainingResult, eval_name: str) -> bool:
    """Whether model selection kept its epoch by scores on the split the metrics come from
    (the validation split, when a version has no test split): such metrics are optimistic."""
    return eval_name == "validation" and result.selection is not None


def training_record(result: TrainingResult, eval_name: str) -> dict[str, Any]:
    """How the model was trained, as the job result and the model version record it."""
    return {
        "strategy": result.strategy.strategy,
        "pooling": result.pooling,
        "trainable_parameters": result.strategy.trainable_parameters,
        "total_parameters": result.strategy.total_parameters,
        "epochs": result.epochs,
        "steps": result.steps,
        "logical_batch_size": result.config.logical_batch_size,
        "physical_batch_size": result.config.physical_batch_size,
        "learning_rate": result.config.learning_rate,
        "head_learning_rate": result.config.head_learning_rate,
        "optimizer": result.config.optimizer,
        "weight_decay": result.config.weight_decay,
        "dropout": result.config.dropout,
        "label_smoothing": result.config.label_smoothing,
        "class_weights": dict(result.config.class_weights) or None,
        "logit_adjustment": dict(result.config.logit_adjustment) or None,
        "augmentation": asdict(result.config.augmentation)
        if result.config.augmentation.active
        else None,
        "max_length": result.config.max_length,
        "seed": result.seed,
        "train_examples": result.train_examples,
        "eval_examples": result.eval_examples,
        "evaluated_on": eval_name,
        "evaluation_seen_by_selection": seen_by_selection(result, eval_name),
        "final_loss": finite(result.final_loss),
        "selection": selection_record(result),
        "duration_s": round(result.duration_s, 3),
        "device": result.device,
        "precision": result.precision,
        "privacy_label": result.privacy_label,
        **{f"{k}_version": str(v) for k, v in result.versions.items()},
    }
