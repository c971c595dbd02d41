"""Model registry service: register and read versions, and flag them for erasures.

State changes (approve, retire) are in `privet.models.lifecycle`; decrypting the weights
for inference or export in `privet.models.weights`. Weights live only inside the
encryption envelope (`ObjectRef("model_version", <version id>, <project>)`, part
``weights``), written here at registration.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session, col, select

from privet import __version__, ledger
from privet.auth import service as auth_service
from privet.crypto import ObjectRef, write_object_bytes
from privet.crypto.context import SealedStorage
from privet.db import get_in_project
from privet.kit.errors import ConflictError
from privet.kit.ids import new_id, utcnow
from privet.models.card import card_metadata, render_card
from privet.models.schemas import (
    ErasureFlagPublic,
    ErasureFlagsPublic,
    ModelDetail,
    ModelPublic,
    ModelVersionDetail,
    ModelVersionPublic,
)
from privet.models.tables import (
    ERASURE_FLAG_RULE,
    FLAG_ID_PREFIX,
    OBJECT_KIND,
    WEIGHTS_PART,
    FlagSource,
    FlagState,
    Model,
    ModelVersion,
    ModelVersionFlag,
    ModelVersionState,
)


class ErasureFlagOpenError(ConflictError):
    """Approval of a version with an open erasure flag (rule `model.erasure-flag-unresolved`)."""

    slug = "model-version-erasure-flagged"
    title = "Model version flagged by an erasure"


def code_version() -> str:
    """privet's version, plus the build's commit when the deployment sets PRIVET_CODE_VERSION."""
    extra = os.environ.get("PRIVET_CODE_VERSION")
    return f"privet {__version__}" + (f" ({extra})" if extra else "")


# --- registration (called by the worker) --------------------------------------------------


def ensure_model(session: Session, *, project_id: str, name: str, created_by: str) -> Model:
    """The project's model called `name`, created (and locked) if needed."""
    query = (
        select(Model)
        .where(Model.project_id == project_id, Model.name == name)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    model = session.exec(query).first()
    if model is None:
        model = Model(
            id=new_id("mdl"),
            project_id=project_id,
            name=name,
            created_at=utcnow(),
            created_by=created_by,
            latest_version=0,
        )
        session.add(model)
        session.flush()
    return model


@dataclass(frozen=True)
class Registration:
    """What the jobs layer hands the registry for a finished training run."""

    project_id: str
    model_name: str
    job_id: str
    submitted_by: str
    base_model: str
    base_model_sha256: str
    label_names: list[str]
    purposes: list[str]
    dataset_versions: list[dict[str, Any]]
    private: bool
    privacy: dict[str, Any] | None
    metrics: dict[str, Any]
    training: dict[str, Any]
    weights: bytes
    policy_version: str | None
    parent: dict[str, Any] | None = None
    """A warm start's parent (id, number, weights digest, job, dataset versions): recorded
    in the lineage as `init_from_model_version`."""
    teacher: dict[str, Any] | None = None
    """A distilled student's teacher (id, number, weights digest, job, dataset versions,
    ε, δ, temperature): recorded in the lineage as `distilled_from_model_version`."""


def register_version(
    session: Session, *, runtime: SealedStorage, reg: Registration
) -> ModelVersion:
    """Encrypt the weights, write the model card and lineage, ledger the registration.

    Everything joins the caller's transaction (the job's completion)."""
    model = ensure_model(
        session, project_id=reg.project_id, name=reg.model_name, created_by=reg.submitted_by
    )
    model.latest_version += 1
    session.add(model)
    version_id = new_id("mv")
    weights_sha256 = hashlib.sha256(reg.weights).hexdigest()
    ref = ObjectRef(OBJECT_KIND, version_id, reg.project_id)
    stored = write_object_bytes(
        session=session,
        provider=runtime.key_provider,
        store=runtime.blobs,
        ref=ref,
        data=reg.weights,
        part=WEIGHTS_PART,
    )
    ledger_entry_id = ledger.emit(
        session,
        type="model_version.registered",
        actor=None,
        project=reg.project_id,
        objects={
            "model": model.id,
            "model_version": version_id,
            "training_job": reg.job_id,
            **({"init_model_version": reg.parent["id"]} if reg.parent else {}),
            **({"teacher_model_version": reg.teacher["id"]} if reg.teacher else {}),
        },
        digests={"weights": f"sha256:{weights_sha256}"},
        details={
            "number": model.latest_version,
            "private": reg.private,
            "epsilon": None if not reg.privacy else format(float(reg.privacy["epsilon"]), ".6g"),
            "dataset_versions": [d["id"] for d in reg.dataset_versions],
        },
    )
    lineage = _lineage(reg, ledger_entry_id=ledger_entry_id, weights_sha256=weights_sha256)
    version = ModelVersion(
        id=version_id,
        model_id=model.id,
        project_id=reg.project_id,
        number=model.latest_version,
        state=ModelVersionState.candidate.value,
        job_id=reg.job_id,
        submitted_by=reg.submitted_by,
        base_model=reg.base_model,
        base_model_sha256=reg.base_model_sha256,
        label_names=reg.label_names,
        purposes=reg.purposes,
        dataset_versions=reg.dataset_versions,
        private=reg.private,
        privacy=reg.privacy,
        metrics=reg.metrics,
        training=reg.training,
        lineage=lineage,
        weights_sha256=weights_sha256,
        weights_bytes=len(reg.weights),
        created_at=utcnow(),
        card=_card(reg, model=model, version_id=version_id, lineage=lineage),
        blob_key=stored.blob.key,
        data_key_id=stored.data_key_id,
    )
    session.add(version)
    session.flush()
    return version


def _lineage(reg: Registration, *, ledger_entry_id: int, weights_sha256: str) -> dict[str, Any]:
    """The version's lineage: job, datasets, code, policy, ledger entry, weights, and the
    version it started from (warm start) or learnt from (distillation)."""
    lineage: dict[str, Any] = {
        "training_job": reg.job_id,
        "dataset_versions": [d["id"] for d in reg.dataset_versions],
        "code_version": code_version(),
        "policy_version": reg.policy_version,
        "ledger_entry_id": ledger_entry_id,
        "weights_sha256": weights_sha256,
    }
    if reg.parent is not None:
        lineage["init_from_model_version"] = reg.parent
    if reg.teacher is not None:
        lineage["distilled_from_model_version"] = reg.teacher
    return lineage


def _card(reg: Registration, *, model: Model, version_id: str, lineage: dict[str, Any]) -> str:
    """The new version's model card (README.md), from the registration and its lineage."""
    meta = card_metadata(
        model_name=model.name,
        version_number=model.latest_version,
        version_id=version_id,
        base_model=reg.base_model,
        base_model_sha256=reg.base_model_sha256,
        label_names=reg.label_names,
        purposes=reg.purposes,
        dataset_versions=reg.dataset_versions,
        private=reg.private,
        privacy=reg.privacy,
        training=reg.training,
        metrics=reg.metrics,
        lineage=lineage,
    )
    return render_card(meta, metrics=reg.metrics)


# --- reads -----------------------------------------------------------------------------------


def list_models(session: Session, *, project_id: str) -> Sequence[Model]:
    return session.exec(
        select(Model).where(Model.project_id == project_id).order_by(col(Model.name))
    ).all()


def get_model(session: Session, *, project_id: str, model_id: str) -> Model:
    return get_in_project(session, Model, model_id, project_id=project_id, what="model")


def list_versions(session: Session, *, model_id: str) -> Sequence[ModelVersion]:
    return session.exec(
        select(ModelVersion)
        .where(ModelVersion.model_id == model_id)
        .order_by(col(ModelVersion.number))
    ).all()


def get_version(session: Session, *, project_id: str, version_id: str) -> ModelVersion:
    """The version, or NotFoundError when it is not in `project_id`."""
    return get_in_project(
        session, ModelVersion, version_id, project_id=project_id, what="model version"
    )


def version_for_job(session: Session, *, job_id: str) -> ModelVersion | None:
    return session.exec(select(ModelVersion).where(ModelVersion.job_id == job_id)).first()


def lock_version(session: Session, version: ModelVersion) -> ModelVersion:
    """The version's row, locked for this transaction and re-read (state changes)."""
    return session.exec(
        select(ModelVersion)
        .where(ModelVersion.id == version.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()


def version_attributes(version: ModelVersion) -> dict[str, Any]:
    """The ModelVersion entity's attributes for the policy engine."""
    return {
        "project": version.project_id,
        "state": version.state,
        "submitted_by": version.submitted_by,
        "purposes": set(version.purposes),
    }


def approval_attributes(session: Session, version: ModelVersion) -> dict[str, Any]:
    """The ModelVersion's attributes for approving or resuming it: with the accountable
    human of the job's submitter, which ``model.segregation-of-duties`` compares with the
    caller's (left out when unknown, and the policy then refuses)."""
    attrs = version_attributes(version)
    accountable = auth_service.accountable_human_of_ref(session, ref=version.submitted_by)
    if accountable is not None:
        attrs["submitted_by_accountable"] = accountable
    return attrs


def model_name_of(session: Session, version: ModelVersion) -> str:
    model = session.get(Model, version.model_id)
    return model.name if model else ""


def version_public(session: Session, version: ModelVersion) -> ModelVersionPublic:
    data = version.model_dump()
    data["model_name"] = model_name_of(session, version)
    return ModelVersionPublic.model_validate(data)


def version_detail(session: Session, version: ModelVersion) -> ModelVersionDetail:
    data = version.model_dump()
    data["model_name"] = model_name_of(session, version)
    data["erasure_flags"] = [
        ErasureFlagPublic.model_validate(f, from_attributes=True)
        for f in erasure_flags(session, model_version_id=version.id)
    ]
    return ModelVersionDetail.model_validate(data)


def model_detail(session: Session, model: Model) -> ModelDetail:
    versions = [version_public(session, v) for v in list_versions(session, model_id=model.id)]
    return ModelDetail(**ModelPublic.model_validate(model).model_dump(), versions=versions)


# --- erasure flags ---------------------------------------------------------------------------


def erasure_flags(
    session: Session, *, model_version_id: str, state: FlagState | None = None
) -> Sequence[ModelVersionFlag]:
    query = select(ModelVersionFlag).where(ModelVersionFlag.model_version_id == model_version_id)
    if state is not None:
        query = query.where(ModelVersionFlag.state == state.value)
    return session.exec(
        query.order_by(col(ModelVersionFlag.created_at), col(ModelVersionFlag.id))
    ).all()


def flags_public(session: Session, version: ModelVersion) -> ErasureFlagsPublic:
    return ErasureFlagsPublic(
        model_version_id=version.id,
        state=version.state,
        erasure_flags=[
            ErasureFlagPublic.model_validate(f, from_attributes=True)
            for f in erasure_flags(session, model_version_id=version.id)
        ],
    )


def flag_erasure(
    session: Session,
    *,
    version: ModelVersion,
    source: FlagSource,
    dataset_version_ids: Sequence[str],
    remedy: str,
    remedy_rule: str,
    justification: str,
    actor: str | None,
    request_id: str | None = None,
    retrain_job_id: str | None = None,
) -> ModelVersionFlag:
    """Record that `version` was trained on rows an erasure removed. The flag is open: the
    version cannot be approved until the remedy is applied (``resolve_erasure_flags``).
    The sentence (`justification`) stays on the flag; the ledger gets the rule's code."""
    flag = ModelVersionFlag(
        id=new_id(FLAG_ID_PREFIX),
        request_id=request_id,
        model_version_id=version.id,
        project_id=version.project_id,
        dataset_version_ids=sorted(dataset_version_ids),
        remedy=remedy,
        justification=justification[:2000],
        retrain_job_id=retrain_job_id,
        created_at=utcnow(),
        source=source.value,
        state=FlagState.open.value,
    )
    session.add(flag)
    objects = {"model_version": version.id, "model": version.model_id}
    if request_id:
        objects["data_subject_request"] = request_id
    if retrain_job_id:
        objects["training_job"] = retrain_job_id
    ledger.emit(
        session,
        type="model_version.erasure_flagged",
        actor=actor,
        project=version.project_id,
        objects=objects,
        details={
            "source": source.value,
            "remedy": remedy,
            "remedy_rule": remedy_rule,
            "dataset_versions": flag.dataset_version_ids,
        },
    )
    session.flush()
    return flag


def resolve_erasure_flags(
    session: Session, *, version: ModelVersion, resolution: str, justification: str, actor: str
) -> list[ModelVersionFlag]:
    """Clear the version's open erasure flags, recording who applied which remedy (the
    caller has checked that the erasure policy allows it). ConflictError if none is open."""
    locked = lock_version(session, version)
    flags = list(erasure_flags(session, model_version_id=locked.id, state=FlagState.open))
    if not flags:
        raise ConflictError(f"model version {locked.id} has no open erasure flag")
    now = utcnow()
    for flag in flags:
        flag.state = FlagState.resolved.value
        flag.resolution = resolution
        flag.resolved_by = actor
        flag.resolved_at = now
        session.add(flag)
    ledger.emit(
        session,
        type="model_version.erasure_resolved",
        actor=actor,
        project=locked.project_id,
        objects={"model_version": locked.id, "model": locked.model_id},
        details={
            "resolution": resolution,
            "flags": [f.id for f in flags],
        },
    )
    session.flush()
    return flags


def check_no_open_erasure_flag(session: Session, *, version: ModelVersion) -> None:
    """Rule `model.erasure-flag-unresolved`: a version trained on rows that an erasure
    removed is not approved (nor resumed) until the remedy is applied."""
    flags = erasure_flags(session, model_version_id=version.id, state=FlagState.open)
    if not flags:
        return
    erased = sorted({d for f in flags for d in f.dataset_version_ids})
    raise ErasureFlagOpenError(
        f"refused by {ERASURE_FLAG_RULE}: model version {version.id} was trained on dataset "
        f"version(s) {', '.join(erased)}, from which an erasure removed data subjects "
        f"({len(flags)} open flag(s); suggested remedy: {flags[-1].remedy}). Retrain on the "
        "dataset's current version and approve that version instead (then retire this one), "
        "or — if the erasure policy allows keeping a DP-trained model — have a data steward "
        "record that remedy with POST .../model-versions/"
        f"{version.id}:resolve-erasure-flags, then approve",
        rule=ERASURE_FLAG_RULE,
        model_version_id=version.id,
        flags=[f.id for f in flags],
        dataset_version_ids=erased,
    )
