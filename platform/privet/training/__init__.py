"""privet.training: differentially private fine-tuning of catalog text classifiers.

Runs without the web app (in job workers). The public surface:

- `train(config, train_data, eval_data, progress=..., should_cancel=...)` → `TrainingResult`
  (metrics, privacy record, strategy, seed, and the weights as safetensors bytes);
- `accounting.plan` / `compute_epsilon` / `reservation_amount`: pure functions for the
  budget ledger (reserve the target ε; recompute ε from sigma, q, steps, δ);
- `catalog`: allow-listed base models pinned by SHA-256;
- `evaluation`, `strategies`, `progress`.

Noise sources: by default Poisson sampling and Gaussian noise come from seeded torch
generators, so a run is reproducible from its recorded seed — good for research and
debugging, but an attacker who learns the seed can reconstruct and subtract the noise.
`secure_mode=True` draws both from a CSPRNG (AES-256-CTR keyed by `os.urandom`) and uses
Opacus's floating-point-attack mitigation (sum of four Gaussians): use it in production.
It costs some noise-generation time per step and makes runs unreproducible; the seed then
only fixes the head initialisation and dropout. See README.md in this folder.
"""

import importlib
from typing import Any

# Names → the submodule that defines them. Loaded on first use (PEP 562), so importing
# `privet.training.catalog` or `.accounting` alone does not pull torch into the gateway.
_EXPORTS = {
    "compute_epsilon": "accounting",
    "plan": "accounting",
    "reservation_amount": "accounting",
    "CATALOG": "catalog",
    "BaseModelSpec": "catalog",
    "Catalog": "catalog",
    "CatalogError": "catalog",
    "load_base_model": "catalog",
    "load_finetuned": "catalog",
    "LabelledTexts": "data",
    "EvaluationResult": "evaluation",
    "metrics_from_predictions": "evaluation",
    "ProgressEvent": "progress",
    "TrainingCancelled": "progress",
    "Strategy": "strategies",
    "ConfigError": "config",
    "NonPrivateRefused": "config",
    "PrivacyRecord": "guarantee",
    "TrainingConfig": "config",
    "TrainingResult": "trainer",
    "privacy_plan": "trainer",
    "train": "trainer",
    "WarmStart": "warmstart",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'privet.training' has no attribute {name!r}")
    return getattr(importlib.import_module(f"privet.training.{module}"), name)


__all__ = [
    "CATALOG",
    "BaseModelSpec",
    "Catalog",
    "CatalogError",
    "ConfigError",
    "EvaluationResult",
    "LabelledTexts",
    "NonPrivateRefused",
    "PrivacyRecord",
    "ProgressEvent",
    "Strategy",
    "TrainingCancelled",
    "TrainingConfig",
    "TrainingResult",
    "WarmStart",
    "compute_epsilon",
    "load_base_model",
    "load_finetuned",
    "metrics_from_predictions",
    "plan",
    "privacy_plan",
    "reservation_amount",
    "train",
]
