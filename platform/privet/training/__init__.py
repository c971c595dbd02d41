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

from privet.training.accounting import compute_epsilon, plan, reservation_amount
from privet.training.catalog import (
    CATALOG,
    BaseModelSpec,
    Catalog,
    CatalogError,
    load_base_model,
    load_finetuned,
)
from privet.training.data import LabelledTexts
from privet.training.evaluation import EvaluationResult, metrics_from_predictions
from privet.training.progress import ProgressEvent, TrainingCancelled
from privet.training.strategies import Strategy
from privet.training.trainer import (
    ConfigError,
    NonPrivateRefused,
    PrivacyRecord,
    TrainingConfig,
    TrainingResult,
    privacy_plan,
    train,
)

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
    "compute_epsilon",
    "load_base_model",
    "load_finetuned",
    "metrics_from_predictions",
    "plan",
    "privacy_plan",
    "reservation_amount",
    "train",
]
