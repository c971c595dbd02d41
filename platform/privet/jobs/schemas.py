"""Request and response schemas of training jobs and the privacy budget (their tables:
``privet.jobs.tables``)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import StringConstraints, model_validator
from sqlmodel import Field, SQLModel

from privet.jobs.tables import TrainingJobBase
from privet.kit.schemas import StrictSchema

Token = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_]*$")]
ModelName = Annotated[
    str, StringConstraints(min_length=1, max_length=100, pattern=r"^[a-z0-9][a-z0-9._-]*$")
]
StrategyText = Annotated[
    str, StringConstraints(pattern=r"^(auto|full|bitfit|head|top-[1-9][0-9]?)$")
]
AUTO_NOTE = " Null or left out: the auto recipe chooses it (privet.training.recipe)."


def _auto(
    description: str,
    *,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    lt: float | None = None,
) -> Any:
    """A field the auto recipe chooses when the request leaves it out (null by default;
    its description ends with AUTO_NOTE)."""
    return Field(default=None, ge=ge, gt=gt, le=le, lt=lt, description=description + AUTO_NOTE)


class TrainingJobCreate(StrictSchema):
    """A training request. Privacy parameters are required for private training."""

    dataset_version_id: str = Field(min_length=1, max_length=40)
    base_model: str = Field(default="minilm-l6", min_length=1, max_length=100)
    purpose: Token | None = Field(
        default=None, description="Purpose of the model; default: the dataset's only purpose."
    )
    model_name: ModelName | None = Field(
        default=None, description="Registry model the result becomes a version of."
    )
    private: bool = Field(default=True, description="DP-SGD; false only for non-personal data.")
    target_epsilon: float | None = Field(default=None, gt=0, le=100)
    delta: float | None = Field(default=None, gt=0, lt=1)
    epochs: int | None = _auto("Passes.", ge=1, le=100)
    batch_size: int | None = _auto("Logical (expected Poisson) batch.", ge=1, le=65536)
    physical_batch_size: int = Field(default=64, ge=1, le=4096)
    learning_rate: float | None = _auto("Rate of the trainable encoder parameters.", gt=0, le=1)
    max_length: int = Field(default=64, ge=8, le=512)
    strategy: StrategyText = Field(
        default="auto", description="auto, full, bitfit, head or top-<k>; auto: the recipe's."
    )
    head_learning_rate: float | None = _auto("Rate of the classification head.", gt=0, le=1)
    optimizer: Literal["adamw", "sgd"] | None = _auto("sgd (momentum 0.9) or adamw.")
    lr_schedule: Literal["constant", "linear"] | None = _auto(
        "Rate kept constant or decayed linearly to 0."
    )
    weight_decay: float | None = _auto("Weight decay.", ge=0, le=1)
    dropout: float | None = _auto("Hidden dropout (else the base model's).", ge=0, lt=1)
    label_smoothing: float | None = _auto("Label smoothing.", ge=0, lt=1)
    class_balance: Literal["auto", "on", "logit_adjust", "none"] = Field(
        default="auto",
        description="Class balance from the version's label counts: logit_adjust (the loss "
        "sees logits + log prior, Menon et al. 2021), on (per-class weights <= 1 on the "
        "clipped gradients), none, or auto (logit_adjust when the rarest class holds under "
        "10% of the training rows, else none; training/README.md).",
    )
    selection: Literal["auto", "on", "none"] = Field(
        default="auto",
        description="Model selection on the validation split, released with DP noise and "
        "charged to the same ε: keep the best epoch, stop early. auto (on with at least 200 "
        "validation rows), on, or none (nothing released, no ε spent on it).",
    )
    selection_share: float | None = _auto("Share of the target ε for selection.", ge=0, le=0.5)
    patience: int | None = _auto(
        "Epochs without a better noisy validation macro-F1 before stopping.", ge=1, le=100
    )
    augment_multiplicity: int | None = _auto(
        "Augmentation multiplicity K: K augmented copies of each sampled example, "
        "their gradients averaged before clipping (ε unchanged; K times the compute); 1: off.",
        ge=1,
        le=16,
    )
    augment_token_dropout: float | None = _auto("Share of words dropped per copy.", ge=0, le=0.5)
    augment_span_deletion: float | None = _auto("Share of words in one deleted span.", ge=0, le=0.5)
    augment_word_order: float | None = _auto("Chance of swapping neighbour words.", ge=0, le=0.5)
    accountant: Literal["prv", "rdp"] = "prv"
    max_grad_norm: float | None = _auto("DP clipping norm C.", gt=0, le=100)
    seed: int = Field(default=0, ge=0, le=2**31 - 1)
    init_from_model_version_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=40,
        description="Warm start: train from this approved model version of the project "
        "(same base model and labels) instead of the base model. Its ε stays charged to its "
        "own datasets; this job charges only its own dataset version's budget.",
    )
    distill_from_model_version_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=40,
        description="Distillation: train the student (base_model) on the teacher's soft labels "
        "over this dataset version's texts (its labels are ignored). The teacher is an approved "
        "model version of the project; the dataset must be declared non-personal and the job "
        "non-private. The student's ε is the teacher's (post-processing); nothing is charged.",
    )
    distill_temperature: float | None = Field(
        default=None,
        gt=0,
        le=20,
        description="Softmax temperature of the teacher's soft labels and the student's "
        "KL loss (default 2).",
    )
    workers: int | None = Field(
        default=None,
        ge=1,
        le=1024,
        description="Data-parallel training processes (Ray executor); default from settings.",
    )

    @model_validator(mode="after")
    def _privacy(self) -> TrainingJobCreate:
        if self.private and self.target_epsilon is None:
            raise ValueError("target_epsilon is required for private (DP) training")
        if not self.private and (self.target_epsilon is not None or self.delta is not None):
            raise ValueError("non-private training takes no target_epsilon or delta")
        if self.selection == "none" and self.selection_share:
            raise ValueError("selection none takes no selection_share")
        if self.distill_from_model_version_id is None:
            if self.distill_temperature is not None:
                raise ValueError("distill_temperature needs distill_from_model_version_id")
            return self
        if self.private:
            raise ValueError(
                "distillation is non-private training (private: false) on texts declared "
                "non-personal: the student's guarantee is the teacher's ε (post-processing)"
            )
        if self.init_from_model_version_id is not None:
            raise ValueError("distillation and warm start (init_from) are exclusive")
        return self


class TrainingJobPublic(TrainingJobBase):
    id: str
    error_detail: str | None = Field(
        default=None,
        description="The failure's own text (e.g. the exception message), for the job's "
        "readers; sealed at rest, shown on GET of one job.",
    )


BUDGET_SCOPE_NOTE = (
    "dataset-wide: one budget for every version of the dataset (new uploads and the "
    "versions erasure derives); ε spent or reserved on any version counts against all"
)


class PrivacyBudgetPublic(SQLModel):
    scope: Literal["dataset"] = "dataset"
    note: str = BUDGET_SCOPE_NOTE
    dataset_id: str
    dataset_version_id: str | None = Field(
        default=None, description="The version asked about; the totals are the dataset's."
    )
    project_id: str
    epsilon_total: float
    delta: float
    epsilon_reserved: float
    epsilon_charged: float
    epsilon_remaining: float
    delta_charged: float = Field(
        default=0.0,
        description="Sum of the δ of the charged jobs: the dataset's δ under basic "
        "sequential composition.",
    )
    entries: list[dict[str, Any]]


class HistoryPoint(SQLModel):
    step: int
    epoch: int
    loss: float | None = Field(description="Mean training loss of the step's Poisson batch.")
    epsilon: float | None = Field(description="Cumulative ε after the step (null: no DP).")
    examples: int


class EpochSummary(SQLModel):
    epoch: int
    steps: int
    last_step: int
    mean_loss: float | None = Field(description="Mean of the epoch's step losses.")
    epsilon: float | None = Field(description="Cumulative ε of training at the epoch's end.")
    validation_accuracy: float | None = Field(
        default=None, description="Accuracy on the validation split, from the DP release."
    )
    validation_macro_f1: float | None = Field(
        default=None, description="Macro-F1 on the validation split, from the DP release."
    )
    best: bool | None = Field(
        default=None, description="A new best noisy macro-F1 (null: no model selection)."
    )


HISTORY_NOTE = (
    "training loss and ε of the training steps as the job's progress reports them, kept at "
    "evenly spaced steps; validation metrics per epoch only with model selection, computed "
    "from a confusion matrix released with Gaussian noise whose ε is in the job's total"
)


class TrainingJobHistoryPublic(SQLModel):
    job_id: str
    state: str
    note: str = HISTORY_NOTE
    total_steps: int | None = Field(
        default=None, description="Steps planned; null until the job has ended."
    )
    stride: int | None = Field(
        default=None, description="Every stride-th step is kept, with the first and the last."
    )
    max_points: int
    epsilon: float | None = Field(
        default=None, description="The ε the job reports (its privacy record), if it succeeded."
    )
    points: list[HistoryPoint]
    epochs: list[EpochSummary]
    selection: dict[str, Any] | None = Field(
        default=None,
        description="Model selection (null: off): kept epoch, epochs run, whether it stopped "
        "early, the noise and the ε split (training, selection).",
    )
