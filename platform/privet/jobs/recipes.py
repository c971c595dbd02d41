"""A job's hyperparameters: the request's fields, completed by the `auto` recipe.

Admission resolves a request once it knows the dataset version's public facts (training
rows, per-class counts): fields the caller set win, the recipe
(privet.training.recipe) fills the rest. The job keeps the resolved values in `params`
(still a valid TrainingJobCreate, so a retraining can resubmit them) and the recipe's
record, with a reason for every value, in `recipe`; the worker builds its
TrainingConfig from both with `config_from_params`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from privet.executors.settings import get_executor_settings
from privet.jobs.schemas import TrainingJobCreate
from privet.jobs.sources import DatasetFacts
from privet.kit.errors import InvalidInputError

if TYPE_CHECKING:
    from privet.training.config import TrainingConfig

API_TO_CONFIG = {
    "strategy": "strategy",
    "epochs": "epochs",
    "batch_size": "logical_batch_size",
    "learning_rate": "learning_rate",
    "head_learning_rate": "head_learning_rate",
    "optimizer": "optimizer",
    "lr_schedule": "lr_schedule",
    "max_grad_norm": "max_grad_norm",
    "weight_decay": "weight_decay",
    "dropout": "dropout",
    "label_smoothing": "label_smoothing",
    "selection_share": "selection_share",
    "patience": "patience",
    "augment_multiplicity": "augment_multiplicity",
    "augment_token_dropout": "augment_token_dropout",
    "augment_span_deletion": "augment_span_deletion",
    "augment_word_order": "augment_word_order",
}
"""Request fields the recipe may choose, by their TrainingConfig names."""
_FIXED = ("max_length", "physical_batch_size", "seed", "accountant")


RULE_SELECTION_EXECUTOR = "jobs.selection.local-executor"
RAY_SELECTION_OFF = (
    "off: model selection runs on the local executor only; this deployment trains on Ray, "
    "whose workers do not get the validation split (nothing is released, no ε spent on it)"
)


def _on_ray() -> bool:
    return get_executor_settings().effective_executor != "local"


def check_selection_executor(data: TrainingJobCreate) -> None:
    """Refuse model selection asked for explicitly (`selection: on` or a selection share)
    where jobs train on Ray: it would not run there, and the job's record would say it did."""
    asked = data.selection == "on" or bool(data.selection_share)
    if data.private and asked and _on_ray():
        raise InvalidInputError(
            f"refused by {RULE_SELECTION_EXECUTOR}: model selection (selection: on, "
            "selection_share) runs on the local executor only and this deployment trains on "
            "Ray; ask for selection auto or none",
            rule=RULE_SELECTION_EXECUTOR,
            field="selection",
        )


def _overrides(data: TrainingJobCreate) -> dict[str, Any]:
    """TrainingConfig fields the caller set (a null or `auto` leaves the choice to the recipe)."""
    out: dict[str, Any] = {}
    for api, name in API_TO_CONFIG.items():
        value = getattr(data, api)
        if api in data.model_fields_set and value is not None and value != "auto":
            out[name] = value
    out.update({name: getattr(data, name) for name in _FIXED})
    return out


def resolve(
    data: TrainingJobCreate, *, facts: DatasetFacts, delta: float | None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(params, recipe record) of a request on a version: every field resolved."""
    from privet.training.recipe import RecipeInputs, choose  # torch: at admission only

    n = facts.train_rows if facts.train_rows is not None else facts.row_count
    ray = data.private and _on_ray()
    if ray:  # selection auto resolves to none (an explicit one: `check_selection_executor`)
        data = data.model_copy(update={"selection": "none", "selection_share": None})
    recipe = choose(
        RecipeInputs(
            n=max(1, n),
            label_counts=facts.train_label_counts,
            target_epsilon=data.target_epsilon if data.private else None,
            delta=delta if data.private else None,
            base_model=data.base_model,
            strategy=data.strategy,
            private=data.private,
            accountant=data.accountant,
            class_balance=data.class_balance,
            overrides=_overrides(data),
            validation_rows=facts.validation_rows,
            selection=data.selection,
        )
    )
    params = data.model_dump(mode="json")
    for api, name in API_TO_CONFIG.items():
        params[api] = getattr(recipe.config, name)
    params["class_balance"] = (
        "on"
        if recipe.config.class_weights
        else "logit_adjust"
        if recipe.config.logit_adjustment
        else "none"
    )
    record = recipe.to_dict()
    if ray:
        for name in ("selection_share", "patience"):
            record["choices"][name]["reason"] = RAY_SELECTION_OFF
    if data.private and data.delta is None:
        record["choices"]["delta"] = {
            "value": delta,
            "source": "auto",
            "reason": "the dataset version's declared δ (each job's δ is at most it)",
        }
    return params, record


def recorded_class_weights(recipe: dict[str, Any] | None) -> tuple[tuple[str, float], ...]:
    """The class weights a job's recipe record holds (none for older jobs)."""
    return _recorded_per_class(recipe, "class_weights")


def recorded_logit_adjustment(recipe: dict[str, Any] | None) -> tuple[tuple[str, float], ...]:
    """The logit offsets a job's recipe record holds (none for older jobs)."""
    return _recorded_per_class(recipe, "logit_adjustment")


def _recorded_per_class(recipe: dict[str, Any] | None, name: str) -> tuple[tuple[str, float], ...]:
    choice = ((recipe or {}).get("choices") or {}).get(name) or {}
    value = choice.get("value") or {}
    return tuple(sorted((str(k), float(v)) for k, v in dict(value).items()))


def config_from_params(
    p: dict[str, Any],
    *,
    base_model: str,
    private: bool,
    target_epsilon: float | None,
    delta: float | None,
    contains_personal_data: bool,
    secure_mode: bool = False,
    class_weights: tuple[tuple[str, float], ...] = (),
    logit_adjustment: tuple[tuple[str, float], ...] = (),
) -> TrainingConfig:
    """The TrainingConfig of a job's params (defaults: those of jobs admitted before recipes)."""
    from privet.training.config import TrainingConfig

    def get(key: str, default: Any) -> Any:
        value = p.get(key)
        return default if value is None else value

    return TrainingConfig(
        base_model=base_model,
        strategy=get("strategy", "top-2"),
        max_length=int(get("max_length", 64)),
        epochs=int(get("epochs", 3)),
        logical_batch_size=int(get("batch_size", 256)),
        physical_batch_size=int(get("physical_batch_size", 64)),
        learning_rate=float(get("learning_rate", 2e-3)),
        head_learning_rate=p.get("head_learning_rate"),
        optimizer=get("optimizer", "adamw"),
        lr_schedule=get("lr_schedule", "constant"),
        weight_decay=float(get("weight_decay", 0.0)),
        dropout=p.get("dropout"),
        label_smoothing=float(get("label_smoothing", 0.0)),
        class_weights=class_weights,
        selection_share=float(get("selection_share", 0.0)) if private else 0.0,
        patience=p.get("patience"),
        logit_adjustment=logit_adjustment,
        augment_multiplicity=int(get("augment_multiplicity", 1)),
        augment_token_dropout=float(get("augment_token_dropout", 0.0)),
        augment_span_deletion=float(get("augment_span_deletion", 0.0)),
        augment_word_order=float(get("augment_word_order", 0.0)),
        seed=int(get("seed", 0)),
        private=private,
        target_epsilon=target_epsilon if private else None,
        delta=delta if private else None,
        accountant=get("accountant", "prv"),
        max_grad_norm=float(get("max_grad_norm", 1.0)),
        secure_mode=secure_mode,
        contains_personal_data=contains_personal_data,
    )
