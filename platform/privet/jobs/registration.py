"""Registering a finished job's model version: lineage, dataset usage, erasure flags.

The worker calls `register` in the transaction that marks its job succeeded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlmodel import Session

from privet.crypto.context import SealedStorage
from privet.jobs import distill, warmstart
from privet.jobs.sources import DatasetFacts, DatasetSource
from privet.jobs.tables import TrainingJob
from privet.models import service as models_service
from privet.models.tables import FlagSource, ModelVersion

if TYPE_CHECKING:
    from privet.training import TrainingResult


def register(
    session: Session,
    *,
    runtime: SealedStorage,
    policy_version: str | None,
    source: DatasetSource,
    job: TrainingJob,
    result: TrainingResult,
    facts: DatasetFacts,
    privacy: dict[str, Any] | None,
    metrics: dict[str, Any],
    training: dict[str, Any],
    parent: dict[str, Any] | None,
    teacher: dict[str, Any] | None,
) -> str:
    """Register the trained model version and its dataset usage (a warm start's also
    its parent's, a student's its teacher's dataset versions, so their erasures find
    it); flag it at once when
    its source version was erased while the job ran. Returns the version id."""
    # Lock the source version before registering: an erasure that shredded it
    # while the job ran flags the new version (one that shreds it after this
    # commits finds the model version among its usages and flags it itself).
    erased = source.lock_erased(session, version_id=facts.version_id)
    own = {
        "id": facts.version_id,
        "dataset_id": facts.dataset_id,
        "name": facts.name,
        "digest": facts.digest,
        "rows": facts.row_count,
        **({"unlabelled": True} if facts.unlabelled else {}),
    }
    datasets, privacy = warmstart.with_parent([own], privacy, job_id=job.id, parent=parent)
    private = result.private
    if teacher is not None:  # a student: the teacher's ε by post-processing
        datasets, privacy = distill.with_teacher([own], job_id=job.id, teacher=teacher)
        private = True
    version = models_service.register_version(
        session,
        runtime=runtime,
        reg=models_service.Registration(
            project_id=job.project_id,
            model_name=job.model_name,
            job_id=job.id,
            submitted_by=job.submitted_by,
            base_model=result.base_model,
            base_model_sha256=result.base_model_sha256,
            label_names=list(result.label_names),
            purposes=[job.purpose],
            dataset_versions=datasets,
            private=private,
            privacy=privacy,
            metrics=metrics,
            training=training,
            weights=result.weights,
            policy_version=policy_version,
            parent=None if parent is None else parent["lineage"],
            teacher=None if teacher is None else distill.lineage_entry(teacher),
        ),
    )
    for dataset_version in datasets:
        source.record_usage(
            session,
            version_id=dataset_version["id"],
            kind="model_version",
            used_by_id=version.id,
        )
    if erased:
        _flag_erased_during_job(session, version, facts.version_id)
    return version.id


def _flag_erased_during_job(session: Session, version: ModelVersion, version_id: str) -> None:
    """Flag a new model version whose source dataset version was erased while it trained."""
    models_service.flag_erasure(
        session,
        version=version,
        source=FlagSource.registration,
        dataset_version_ids=[version_id],
        remedy="retrain",
        remedy_rule="erased_during_job",
        justification=(
            f"dataset version {version_id} was erased while this job ran: "
            "the model was trained on rows of data subjects that an erasure "
            "removed. Retrain on the dataset's current version, or keep this "
            "one only where the erasure policy allows keeping a DP-trained model "
            "(resolve-erasure-flags)"
        ),
        actor=None,
    )
