"""Helpers shared by the policy tests (and the policy benchmark): policy-file edits and the
two requests most tests decide, a prediction on a model version and a training submission."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from privet.policy import Action, predict_context, training_context

#: The attributes of model version mv1 in project p1, approved for credit scoring.
MV_ATTRS = {
    "project": "p1",
    "state": "approved",
    "submitted_by": "User:bob",
    "purposes": ["credit_scoring"],
}


def replace_in(path: Path, old: str, new: str) -> None:
    """Edit a policy file in place, failing loudly if the text to change is absent."""
    text = path.read_text()
    assert old in text, f"{old!r} not in {path.name}"
    path.write_text(text.replace(old, new, 1))


def model_version_request(
    *,
    principal_type: str = "ServiceAccount",
    principal_id: str = "app",
    action: str = Action.MODEL_VERSION_PREDICT,
    roles: Sequence[str] = ("predictor",),
    attributes: Mapping[str, Any] = MV_ATTRS,
    purpose: str | None = "credit_scoring",
) -> dict[str, Any]:
    """The keyword arguments of a request on model version mv1 of project p1 (a prediction
    by default) for ``engine.decide`` or ``build_request``; no context when ``purpose`` is
    None."""
    request: dict[str, Any] = {
        "principal_type": principal_type,
        "principal_id": principal_id,
        "action": action,
        "resource_type": "ModelVersion",
        "resource_id": "mv1",
        "resource_attributes": attributes,
        "project_id": "p1",
        "roles": list(roles),
    }
    if purpose is not None:
        request["context"] = predict_context(purpose=purpose)
    return request


def credit_training_context(
    *,
    epsilon: float = 3.0,
    categories: Sequence[str] = ("financial",),
    epsilon_limit: float = 10.0,
) -> dict[str, Any]:
    """The context of a DP job for credit scoring, on personal data declared for that
    purpose, fine-tuning the allow-listed MiniLM."""
    return training_context(
        purpose="credit_scoring",
        dataset_contains_personal_data=True,
        dataset_categories=categories,
        dataset_purposes=["credit_scoring"],
        dataset_epsilon_limit=epsilon_limit,
        dp=True,
        epsilon=epsilon,
        base_model="minilm-l6",
        base_model_allowlisted=True,
    )


def submit_request(
    *, epsilon: float = 3.0, categories: Sequence[str] = ("financial",)
) -> dict[str, Any]:
    """The keyword arguments of an ML engineer's training submission in project p1."""
    return {
        "principal_type": "User",
        "principal_id": "alice",
        "action": Action.TRAINING_JOB_SUBMIT,
        "resource_type": "Project",
        "resource_id": "p1",
        "project_id": "p1",
        "roles": ["ml_engineer"],
        "context": credit_training_context(epsilon=epsilon, categories=categories),
    }
