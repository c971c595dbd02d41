"""Warm start: a job that trains from an approved model version of its own project.

Admission finds the version (`find_parent`), lets it choose the base model when the
request names none, and refuses what cannot be started from (`check_compatible`); the
caller's right to read the version is the policy's (`model_version.read`, decided by
`privet.jobs.admission.admit`). The worker decrypts the weights as inference does
(`load_init`); registration records the parent in the new version's lineage, with the ε
each dataset's budget paid (`epsilon_by_dataset`). Starting from released DP weights is
post-processing: the parent's datasets are not charged again (docs/PRIVACY.md).

Distillation (`privet.jobs.distill`) learns from a version too, and shares the checks on
it written here: `find_own_version`, `check_approved_unflagged`,
`check_purpose_and_executor`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlmodel import Session

from privet.crypto.context import SealedStorage
from privet.executors.settings import get_executor_settings
from privet.jobs.catalog import ensure_catalog
from privet.jobs.schemas import TrainingJobCreate
from privet.jobs.sources import DatasetFacts
from privet.jobs.tables import TrainingJob
from privet.kit.errors import ConflictError, InvalidInputError, NotFoundError
from privet.models import service as models_service
from privet.models import weights as models_weights
from privet.models.tables import ERASURE_FLAG_RULE, FlagState, ModelVersion, ModelVersionState
from privet.training.catalog import CatalogError

if TYPE_CHECKING:  # torch loads in the worker only, never in the gateway
    from privet.training.warmstart import WarmStart

RULE_SAME_PROJECT = "jobs.warm-start.same-project"
RULE_APPROVED = "jobs.warm-start.approved-only"
RULE_BASE_MODEL = "jobs.warm-start.same-base-model"
RULE_LABELS = "jobs.warm-start.same-labels"
RULE_PURPOSE = "jobs.warm-start.same-purpose"
RULE_EXECUTOR = "jobs.warm-start.local-executor"


class WarmStartNotFoundError(NotFoundError):
    slug = "warm-start-version-not-found"
    title = "Warm start from an unknown model version"


class WarmStartNotApprovedError(ConflictError):
    slug = "warm-start-version-not-approved"
    title = "Warm start from a model version that is not approved"


class WarmStartIncompatibleError(InvalidInputError):
    slug = "warm-start-incompatible"
    title = "Warm start from an incompatible model version"


def find_parent(
    session: Session, *, project_id: str, data: TrainingJobCreate
) -> ModelVersion | None:
    """The version the request starts from (None: no warm start)."""
    return find_own_version(
        session,
        project_id=project_id,
        field="init_from_model_version_id",
        version_id=data.init_from_model_version_id,
        error=WarmStartNotFoundError,
        rule=RULE_SAME_PROJECT,
        only="a job starts only from a version of its own project",
    )


def find_own_version(
    session: Session,
    *,
    project_id: str,
    field: str,
    version_id: str | None,
    error: type[NotFoundError],
    rule: str,
    only: str,
) -> ModelVersion | None:
    """The version a job learns from (a warm start's parent, a teacher), named by the
    request's `field` (None: it names none). One of another project is answered as one
    that does not exist, so no project learns of another's versions."""
    if version_id is None:
        return None
    try:
        return models_service.get_version(session, project_id=project_id, version_id=version_id)
    except NotFoundError:
        raise error(
            f"refused by {rule}: model version {version_id!r} does not exist in "
            f"project {project_id}; {only}",
            rule=rule,
            **{field: version_id},
        ) from None


def inherit_base_model(data: TrainingJobCreate, parent: ModelVersion) -> TrainingJobCreate:
    """The request with the parent's base model when it names none."""
    if "base_model" in data.model_fields_set:
        return data
    return data.model_copy(update={"base_model": parent.base_model})


def check_approved_unflagged(
    session: Session,
    version: ModelVersion,
    *,
    error: type[ConflictError],
    rule: str,
    only: str,
    before: str,
) -> None:
    """Refuse a version a job learns from (a warm start's parent, a teacher) unless it is
    approved and carries no open erasure flag: `rule` names the first refusal, `only` and
    `before` finish the sentences that say why."""
    if version.state != ModelVersionState.approved.value:
        raise error(
            f"refused by {rule}: model version {version.id} is {version.state}; {only}",
            rule=rule,
            state=version.state,
        )
    if models_service.erasure_flags(session, model_version_id=version.id, state=FlagState.open):
        raise error(
            f"refused by {ERASURE_FLAG_RULE}: model version {version.id} has an open erasure "
            f"flag; apply its remedy before {before}",
            rule=ERASURE_FLAG_RULE,
            state=version.state,
        )


def check_compatible(
    session: Session,
    parent: ModelVersion,
    *,
    data: TrainingJobCreate,
    facts: DatasetFacts,
    purpose: str,
) -> None:
    """Refuse a parent that is not approved (or carries an open erasure flag), was trained
    on another base model (or on other files under its name), knows other labels than the
    dataset version's training split, or serves other purposes than the job's (its data
    was declared for those); and a warm start the Ray executor would run."""
    check_approved_unflagged(
        session,
        parent,
        error=WarmStartNotApprovedError,
        rule=RULE_APPROVED,
        only="a job starts only from an approved version",
        before="training from it",
    )
    _check_base_model(parent, data)
    _check_labels(parent, facts)
    check_purpose_and_executor(
        parent,
        purpose=purpose,
        error=WarmStartIncompatibleError,
        rules=(RULE_PURPOSE, RULE_EXECUTOR),
        what="warm start",
    )


def check_purpose_and_executor(
    version: ModelVersion,
    *,
    purpose: str,
    error: type[InvalidInputError],
    rules: tuple[str, str],
    what: str,
) -> None:
    """Refuse a version a job learns from that was trained for other purposes than the
    job's (its data was declared for those), and `what` (a warm start, a distillation)
    on Ray: it trains in the worker's process. `rules`: (purpose rule, executor rule)."""
    rule_purpose, rule_executor = rules
    if purpose not in version.purposes:
        raise error(
            f"refused by {rule_purpose}: model version {version.id} was trained for "
            f"{sorted(version.purposes)}, not {purpose!r}: what it learnt from its data may "
            "serve only the purposes that data was declared for",
            rule=rule_purpose,
            field="purpose",
        )
    if get_executor_settings().effective_executor != "local":
        raise error(
            f"refused by {rule_executor}: {what} runs on the local executor only (this "
            "deployment trains on Ray)",
            rule=rule_executor,
        )


def _check_base_model(parent: ModelVersion, data: TrainingJobCreate) -> None:
    if data.base_model != parent.base_model:
        raise WarmStartIncompatibleError(
            f"refused by {RULE_BASE_MODEL}: model version {parent.id} was fine-tuned from "
            f"{parent.base_model!r}, not {data.base_model!r}",
            rule=RULE_BASE_MODEL,
            field="base_model",
        )
    try:
        pinned = ensure_catalog().get(parent.base_model).weights_sha256
    except CatalogError:
        return  # the request's own check says the base model is not allow-listed
    if pinned != parent.base_model_sha256:
        raise WarmStartIncompatibleError(
            f"refused by {RULE_BASE_MODEL}: base model {parent.base_model!r} is now pinned to "
            f"other weights (sha256 {pinned[:16]}…) than model version {parent.id} was "
            f"trained on ({parent.base_model_sha256[:16]}…)",
            rule=RULE_BASE_MODEL,
            field="base_model",
        )


def _check_labels(parent: ModelVersion, facts: DatasetFacts) -> None:
    """The dataset version's training labels must be the parent's: the head keeps its
    rows (in the parent's order); a new label would have none, a missing one would be
    kept untrained."""
    if facts.train_label_counts is None:
        return  # no split record: the trainer refuses labels the parent does not know
    own, theirs = set(facts.train_label_counts), set(parent.label_names)
    if own != theirs:
        raise WarmStartIncompatibleError(
            f"refused by {RULE_LABELS}: model version {parent.id} classifies "
            f"{sorted(theirs)}, dataset version {facts.version_id} is labelled {sorted(own)} "
            f"(missing: {sorted(theirs - own)}, new: {sorted(own - theirs)}); a warm start "
            "needs the same label set",
            rule=RULE_LABELS,
            labels=sorted(theirs),
            dataset_labels=sorted(own),
        )


def load_init(session: Session, runtime: SealedStorage, job: TrainingJob) -> WarmStart | None:
    """The job's initial weights, decrypted in memory and checked against their digest as
    inference loads them (admission checked the version was approved)."""
    from privet.training.warmstart import WarmStart

    if job.init_from_model_version_id is None:
        return None
    loaded = models_weights.load_version(
        session,
        runtime=runtime,
        project_id=job.project_id,
        version_id=job.init_from_model_version_id,
        require_approved=False,
    )
    return WarmStart(
        source=loaded.version_id, label_names=loaded.label_names, weights=loaded.weights
    )


def own_epsilon(
    privacy: dict[str, Any] | None, dataset_versions: list[dict[str, Any]], job_id: str
) -> dict[str, Any]:
    """This job's spend, as one entry of `epsilon_by_dataset`."""
    return {
        "dataset_id": dataset_versions[0].get("dataset_id") if dataset_versions else None,
        "dataset_version_ids": [d["id"] for d in dataset_versions],
        "epsilon": None if privacy is None else privacy.get("epsilon"),
        "delta": None if privacy is None else privacy.get("delta"),
        "training_job": job_id,
    }


def parent_record(parent: ModelVersion) -> dict[str, Any]:
    """What the new version records of the version it started from (plain data, read in
    the worker's session): its lineage entry, its dataset versions (its own and its
    ancestors', marked as reached through it) and the ε each of their budgets paid."""
    inherited = (parent.privacy or {}).get("epsilon_by_dataset") or [
        own_epsilon(parent.privacy, own_datasets(parent), parent.job_id)
    ]
    return {
        "lineage": {
            "id": parent.id,
            "model_id": parent.model_id,
            "number": parent.number,
            "weights_sha256": parent.weights_sha256,
            "training_job": parent.job_id,
            "dataset_versions": [d["id"] for d in parent.dataset_versions],
        },
        "dataset_versions": [
            {**d, "via_model_version": d.get("via_model_version") or parent.id}
            for d in parent.dataset_versions
        ],
        "epsilon_by_dataset": list(inherited),
    }


def own_datasets(version: ModelVersion) -> list[dict[str, Any]]:
    """The dataset versions its own job read (not those it inherited from a parent)."""
    return [d for d in version.dataset_versions if not d.get("via_model_version")]


def with_parent(
    own_datasets: list[dict[str, Any]],
    privacy: dict[str, Any] | None,
    *,
    job_id: str,
    parent: dict[str, Any] | None,
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """A warm-started version's dataset versions (this job's first, then the parent's)
    and privacy record, whose `epsilon_by_dataset` says which budget paid which ε; as
    they are without a parent."""
    if parent is None:
        return own_datasets, privacy
    datasets = [*own_datasets, *parent["dataset_versions"]]
    if privacy is None:
        return datasets, None
    spent = [*parent["epsilon_by_dataset"], own_epsilon(privacy, own_datasets, job_id)]
    return datasets, {**privacy, "epsilon_by_dataset": spent}
