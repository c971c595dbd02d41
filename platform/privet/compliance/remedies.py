"""Erasure remedies: what happens to a model version trained on erased rows.

The erasure policy (``PRIVET_ERASURE_REMEDY``) keeps a version under its DP guarantee or
asks for retraining; this module chooses, flags the affected versions and clears a flag
when keeping is allowed. An erasure request's own flags are raised by
``privet.compliance.flows`` with its request id.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel import Session

from privet.compliance.settings import ComplianceSettings, get_compliance_settings
from privet.compliance.tables import Remedy
from privet.datasets.schemas import AffectedUsage
from privet.kit.errors import ConflictError
from privet.models import service as models_service
from privet.models.tables import FlagSource, FlagState, ModelVersion, ModelVersionFlag


def choose_remedy(version: ModelVersion, config: ComplianceSettings) -> tuple[Remedy, str]:
    """The remedy for a model version trained on erased rows, and why."""
    privacy = version.privacy or {}
    raw_eps, raw_delta = privacy.get("epsilon"), privacy.get("delta")
    eps = float(raw_eps) if raw_eps is not None else 0.0
    delta = float(raw_delta) if raw_delta is not None else 0.0
    dp = (
        f"trained with differential privacy (ε = {eps:.4g}, δ = {delta:.3g}, "
        f"{privacy.get('accountant', 'prv')} accountant): any one subject's influence on "
        "the weights is bounded by that guarantee"
        if version.private and raw_eps is not None and raw_delta is not None
        else None
    )
    mode = config.erasure_remedy
    if mode == "retrain":
        return Remedy.retrain, "the erasure policy (erasure_remedy=retrain) retrains every model"
    if dp is None:
        return Remedy.retrain, "not trained with differential privacy: retrain without the subject"
    if mode == "keep_with_dp":
        return Remedy.keep_with_dp, f"kept: {dp} (erasure_remedy=keep_with_dp)"
    if eps <= config.keep_max_epsilon:
        return (
            Remedy.keep_with_dp,
            f"kept: {dp}, within the policy's limit ε ≤ {config.keep_max_epsilon:g} "
            "(erasure_remedy=auto)",
        )
    return (
        Remedy.retrain,
        f"ε = {eps:.4g} is above the policy's limit ε ≤ {config.keep_max_epsilon:g} "
        "for keeping a model (erasure_remedy=auto): retrain without the subject",
    )


def remedy_rule(version: ModelVersion, config: ComplianceSettings, remedy: Remedy) -> str:
    """The rule behind ``choose_remedy``'s choice as a code (the ledger records this; the
    sentence stays on the flag): ``policy_<mode>``, ``not_private``, ``within_limit`` or
    ``above_limit``."""
    privacy = version.privacy or {}
    private = (
        version.private and privacy.get("epsilon") is not None and privacy.get("delta") is not None
    )
    if config.erasure_remedy == "retrain":
        return "policy_retrain"
    if not private:
        return "not_private"
    if config.erasure_remedy == "keep_with_dp":
        return "policy_keep_with_dp"
    return "within_limit" if remedy == Remedy.keep_with_dp else "above_limit"


def flag_after_erasure(
    session: Session,
    *,
    affected: Sequence[AffectedUsage],
    actor: str,
    config: ComplianceSettings | None = None,
) -> list[ModelVersionFlag]:
    """Flag the model versions a steward's ``:erase-subjects`` found among the affected
    (the data-subject request path flags its own, with its request id). Each flag is open
    with the remedy the erasure policy suggests; no retraining is submitted here."""
    config = config or get_compliance_settings()
    by_version: dict[str, set[str]] = {}
    for usage in affected:
        if usage.used_by_kind == "model_version":
            by_version.setdefault(usage.used_by_id, set()).add(usage.dataset_version_id)
    flags = []
    for version_id in sorted(by_version):
        version = session.get(ModelVersion, version_id)
        if version is None:
            continue
        remedy, why = choose_remedy(version, config)
        if remedy == Remedy.retrain:
            why += "; submit a training job on the dataset's current version"
        flags.append(
            models_service.flag_erasure(
                session,
                version=version,
                source=FlagSource.erasure,
                dataset_version_ids=sorted(by_version[version_id]),
                remedy=remedy.value,
                remedy_rule=remedy_rule(version, config, remedy),
                justification=why,
                actor=actor,
            )
        )
    return flags


def resolve_erasure_flags(
    session: Session,
    *,
    version: ModelVersion,
    remedy: str,
    actor: str,
    config: ComplianceSettings | None = None,
) -> list[ModelVersionFlag]:
    """Clear a version's open erasure flags by keeping it under its DP guarantee, if the
    erasure policy allows that for this version (ConflictError saying why not otherwise:
    then the remedy is retraining, and this version is retired rather than approved)."""
    config = config or get_compliance_settings()
    if remedy != Remedy.keep_with_dp.value:
        raise ConflictError(f"unknown remedy {remedy!r}: only keep_with_dp clears a flag")
    open_flags = models_service.erasure_flags(
        session, model_version_id=version.id, state=FlagState.open
    )
    if not open_flags:
        raise ConflictError(f"model version {version.id} has no open erasure flag")
    chosen, why = choose_remedy(version, config)
    if chosen != Remedy.keep_with_dp:
        raise ConflictError(
            f"the erasure policy does not allow keeping model version {version.id}: {why}. "
            "The remedy is to retrain on the dataset's current version and approve that "
            "version; retire this one",
            remedy=chosen.value,
            erasure_remedy=config.erasure_remedy,
        )
    return models_service.resolve_erasure_flags(
        session,
        version=version,
        resolution=Remedy.keep_with_dp.value,
        justification=why,
        actor=actor,
    )
