"""Distillation: a job that trains a student from an approved DP teacher of its project.

Admission finds the teacher (`find_teacher`: another project's version is answered as
unknown), refuses texts not declared non-personal (`check_data`) and a teacher that is not
approved, carries an open erasure flag, serves other purposes or would train on Ray
(`check_teacher`); the caller's right to read it is the policy's (`model_version.read`,
decided by `privet.jobs.admission.admit`). The worker decrypts the teacher as inference
does, labels the texts with its soft labels and trains the student
(`privet.training.distill`). The student's lineage names the teacher, its dataset
versions and their ε; the student's own ε is the teacher's (post-processing) and no
budget is charged (docs/PRIVACY.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

from sqlmodel import Session

from privet.crypto.context import SealedStorage
from privet.jobs.schemas import TrainingJobCreate
from privet.jobs.sources import DatasetFacts, DatasetSource, DatasetSplits
from privet.jobs.tables import TrainingJob
from privet.jobs.warmstart import (
    check_approved_unflagged,
    check_purpose_and_executor,
    find_own_version,
    own_datasets,
    own_epsilon,
    parent_record,
)
from privet.kit.errors import ConflictError, InvalidInputError, NotFoundError
from privet.models import weights as models_weights
from privet.models.tables import ModelVersion

if TYPE_CHECKING:  # torch loads in the worker only, never in the gateway
    from privet.training import TrainingConfig, TrainingResult
    from privet.training.data import LabelledTexts
    from privet.training.progress import CancelCheck, ProgressCallback
    from privet.training.warmstart import WarmStart
    from privet.training.world import World

RULE_SAME_PROJECT = "jobs.distill.same-project"
RULE_APPROVED = "jobs.distill.approved-only"
RULE_NON_PERSONAL = "jobs.distill.non-personal-data"
RULE_PURPOSE = "jobs.distill.same-purpose"
RULE_PRIVATE_TEACHER = "jobs.distill.dp-teacher"
RULE_EXECUTOR = "jobs.distill.local-executor"
RULE_UNLABELLED = "jobs.unlabelled.distillation-only"


class TeacherNotFoundError(NotFoundError):
    slug = "distill-teacher-not-found"
    title = "Distillation from an unknown model version"


class TeacherNotApprovedError(ConflictError):
    slug = "distill-teacher-not-approved"
    title = "Distillation from a model version that is not approved"


class DistillRefusedError(InvalidInputError):
    slug = "distill-refused"
    title = "Distillation refused"


class UnlabelledTrainingError(InvalidInputError):
    slug = "unlabelled-distillation-only"
    title = "Unlabelled texts serve only as distillation input"


def check_labelled(facts: DatasetFacts, data: TrainingJobCreate) -> None:
    """Refuse any job but a distillation on an unlabelled version: it has no labels to
    learn from, only texts a teacher can label."""
    if facts.unlabelled and data.distill_from_model_version_id is None:
        raise UnlabelledTrainingError(
            f"refused by {RULE_UNLABELLED}: dataset version {facts.version_id} is declared "
            "unlabelled; it can only be the input of a distillation "
            "(distill_from_model_version_id: an approved DP teacher labels its texts)",
            rule=RULE_UNLABELLED,
            field="dataset_version_id",
        )


def find_teacher(
    session: Session, *, project_id: str, data: TrainingJobCreate
) -> ModelVersion | None:
    """The teacher the request distils (None: no distillation); one of another project
    is answered as one that does not exist."""
    return find_own_version(
        session,
        project_id=project_id,
        field="distill_from_model_version_id",
        version_id=data.distill_from_model_version_id,
        error=TeacherNotFoundError,
        rule=RULE_SAME_PROJECT,
        only="a student distils only a version of its own project",
    )


def check_data(facts: DatasetFacts) -> None:
    """The texts must be declared non-personal: the student trains on them without DP,
    so personal texts would need a DP guarantee of their own."""
    if facts.contains_personal_data:
        raise DistillRefusedError(
            f"refused by {RULE_NON_PERSONAL}: dataset version {facts.version_id} is declared "
            "as containing personal data; distillation trains the student on its texts "
            "without differential privacy, so they must be declared non-personal "
            "(contains_personal_data: false)",
            rule=RULE_NON_PERSONAL,
            field="dataset_version_id",
        )


def check_teacher(session: Session, teacher: ModelVersion, *, purpose: str) -> None:
    """Refuse a teacher that is not approved or carries an open erasure flag, was not
    trained with DP, serves other purposes than the job's, or a distillation on Ray."""
    check_approved_unflagged(
        session,
        teacher,
        error=TeacherNotApprovedError,
        rule=RULE_APPROVED,
        only="a student distils only an approved version",
        before="distilling it",
    )
    if not teacher.private or not (teacher.privacy or {}).get("epsilon"):
        raise DistillRefusedError(
            f"refused by {RULE_PRIVATE_TEACHER}: model version {teacher.id} was not trained "
            "with differential privacy; the student inherits the teacher's ε, so the "
            "teacher must have one",
            rule=RULE_PRIVATE_TEACHER,
        )
    check_purpose_and_executor(
        teacher,
        purpose=purpose,
        error=DistillRefusedError,
        rules=(RULE_PURPOSE, RULE_EXECUTOR),
        what="distillation",
    )


@dataclass
class Teacher:
    """What a distillation job's worker holds of its teacher (weights in memory only)."""

    weights: WarmStart
    base_model: str
    max_length: int
    temperature: float
    record: dict[str, Any]
    """The teacher's lineage entry, dataset versions, ε and δ (`_record`)."""
    test: LabelledTexts | None
    """The teacher's own test split, to evaluate the student on (None: not available)."""


def load_teacher(
    session: Session, runtime: SealedStorage, source: DatasetSource, job: TrainingJob
) -> Teacher | None:
    """The job's teacher, decrypted in memory and checked against its digest (None: not a
    distillation); with its test split when its dataset version is still active."""
    from privet.training.distill import DEFAULT_TEMPERATURE
    from privet.training.warmstart import WarmStart

    version_id = job.params.get("distill_from_model_version_id")
    if version_id is None:
        return None
    loaded = models_weights.load_version(
        session, runtime=runtime, project_id=job.project_id, version_id=version_id,
        require_approved=False,
    )  # fmt: skip
    version = session.get(ModelVersion, version_id)
    assert version is not None
    temperature = float(job.params.get("distill_temperature") or DEFAULT_TEMPERATURE)
    return Teacher(
        weights=WarmStart(
            source=version_id, label_names=loaded.label_names, weights=loaded.weights
        ),
        base_model=loaded.base_model,
        max_length=loaded.max_length,
        temperature=temperature,
        record=_record(version, temperature),
        test=_teacher_test(session, runtime, source, version),
    )


def _teacher_test(
    session: Session, runtime: SealedStorage, source: DatasetSource, version: ModelVersion
) -> LabelledTexts | None:
    own = [d["id"] for d in own_datasets(version)]
    if not own:
        return None
    try:
        facts = source.facts(session, project_id=version.project_id, version_id=own[0])
    except NotFoundError:
        return None
    if not facts.active:
        return None
    return source.load(session, runtime, facts=facts).test


def eval_set(
    teacher: Teacher, own_test: LabelledTexts | None, teacher_labels: LabelledTexts
) -> tuple[str, LabelledTexts]:
    """(name, data) the student is evaluated on: the teacher's test split, else the job's
    own test split when labelled with the teacher's labels, else agreement with the
    teacher's hard labels (`teacher_labels`, over held-out texts where there are some)."""
    if teacher.test is not None:
        return "teacher_test", teacher.test
    known = set(teacher.weights.label_names)
    if own_test is not None and {str(label) for label in own_test.labels} <= known:
        return "test", own_test
    return "teacher_agreement", teacher_labels


def with_teacher(
    own_datasets: list[dict[str, Any]], *, job_id: str, teacher: dict[str, Any]
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """A student's dataset versions (its texts first, then the teacher's) and privacy
    record: the teacher's ε and δ, by post-processing, with what each budget paid; its
    own texts paid nothing."""
    datasets = [*own_datasets, *teacher["dataset_versions"]]
    spent = list(teacher["epsilon_by_dataset"])
    lineage = teacher["lineage"]
    own = {**own_epsilon(None, own_datasets, job_id), "epsilon": 0.0, "delta": 0.0}
    privacy = {
        "epsilon": teacher["epsilon"],
        "delta": teacher["delta"],
        "accountant": teacher.get("accountant"),
        "post_processing_of": lineage["id"],
        "mechanism": "distillation: post-processing of the teacher's DP release",
        "epsilon_by_dataset": [*spent, own],
    }
    return datasets, privacy


def _record(version: ModelVersion, temperature: float) -> dict[str, Any]:
    """What registration needs of the teacher (plain data): its `parent_record`, its ε,
    δ and accountant, and the temperature the student learnt at."""
    privacy = version.privacy or {}
    return {
        **parent_record(version),
        "epsilon": privacy.get("epsilon"),
        "delta": privacy.get("delta"),
        "accountant": privacy.get("accountant"),
        "temperature": temperature,
    }


def train(
    teacher: Teacher,
    splits: DatasetSplits,
    config: TrainingConfig,
    *,
    progress: ProgressCallback,
    should_cancel: CancelCheck,
    world: World,
) -> tuple[TrainingResult, str]:
    """Label the job's training and validation texts with the teacher's soft labels
    (their own labels are ignored) and train the student on them; (result, name of
    what it was evaluated on)."""
    from privet.training.data import LabelledTexts
    from privet.training.distill import hard_labels, soft_labels, train_student

    texts = [*splits.train.texts, *(splits.validation.texts if splits.validation else [])]
    label = partial(
        soft_labels,
        teacher.weights,
        base_model=teacher.base_model,
        temperature=teacher.temperature,
        max_length=teacher.max_length,
    )
    targets = label(texts)
    names = list(teacher.weights.label_names)
    held_out = splits.test.texts if splits.test is not None else texts
    agreement = LabelledTexts(list(held_out), hard_labels(label(held_out), names))
    eval_name, eval_data = eval_set(teacher, splits.test, agreement)
    result = train_student(
        config,
        texts,
        targets,
        eval_data,
        label_names=names,
        progress=progress,
        should_cancel=should_cancel,
        world=world,
    )
    return result, eval_name


def lineage_entry(teacher: dict[str, Any]) -> dict[str, Any]:
    """The student's lineage entry of its teacher: the version, its dataset versions and
    ε, and the temperature."""
    return {
        **teacher["lineage"],
        "epsilon": teacher["epsilon"],
        "delta": teacher["delta"],
        "temperature": teacher["temperature"],
    }
