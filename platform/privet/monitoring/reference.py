"""Drift references built from a model version's own evaluation data.

When a version is approved (``request_reference`` in the approval's transaction, then
``reference_flow.build_after_approval`` once it committed) the platform classifies, in
memory, the rows of the dataset split that evaluation used at training
(``training.evaluated_on`` of the version: the dataset's recorded test split, else its
validation split), decrypted in memory like the training worker reads them, at most
``reference_max_rows`` of them (a larger split is sampled with a fixed seed). Only the
aggregates (label counts, confidence and length histograms, embedding moments) and the
quality there are stored, with a ``monitoring.reference_set`` ledger event in the same
transaction; never a text.

A build holds no database transaction while it classifies: it reads its inputs in a
snapshot (``read_inputs``), runs the forward passes with none open (``classify_inputs``),
then writes in one short transaction that re-reads the version (``store_reference``): a
version retired meanwhile gets ``model-version-not-serving`` and nothing is written.

A build that fails leaves the approval in place: the row says ``failed`` and why, a
``monitoring.reference_failed`` event records it, and ``POST
.../models/{m}/versions/{v}:monitoring-reference`` (``privet monitor reference``) runs it
again.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlmodel import Session

from privet import ledger
from privet.crypto.context import ServiceRuntime
from privet.inference.versions import VersionInfo, VersionNotServingError, lookup_version
from privet.kit.errors import ConflictError, PrivetError
from privet.kit.ids import utcnow
from privet.models.tables import Model, ModelVersion, ModelVersionState
from privet.monitoring.schemas import ReferenceStatus
from privet.monitoring.settings import MonitoringSettings
from privet.monitoring.stats import Agg, quality, text_length
from privet.monitoring.tables import (
    REFERENCE_FAILED,
    REFERENCE_PENDING,
    REFERENCE_READY,
    MonitoringReference,
)

SAMPLE_SEED = 1729
"""Seed of the sample of a split larger than ``reference_max_rows``: a rebuild of the same
version classifies the same rows (the split's order is recomputed from its own seed)."""

PPM = 1_000_000

SERVING_STATES = (ModelVersionState.approved.value, ModelVersionState.suspended.value)


class ReferenceBuildError(ConflictError):
    """A version's reference could not be built (its approval stands)."""

    slug = "monitoring-reference-failed"
    title = "Monitoring reference not built"


def _ppm(x: float) -> int:
    return round(float(x) * PPM)


@dataclass
class ComputedReference:
    """Aggregates of classified texts, their quality, and where they came from (no text)."""

    agg: Agg
    quality: dict[str, Any]
    source: str
    meta: dict[str, Any] = field(default_factory=dict)


# --- classifying in memory ---------------------------------------------------------------------


def classify_aggregates(
    classifier: Any,
    *,
    label_names: Sequence[str],
    texts: Sequence[str],
    labels: Sequence[str] | None,
    cfg: MonitoringSettings,
    batch_size: int = 64,
) -> tuple[Agg, dict[str, Any]]:
    """The aggregates of ``texts`` as the prediction-time hook keeps them (and, with
    labels, accuracy, macro-F1 and calibration error). The embedding moments are dropped
    when fewer than ``min_sketch_count`` texts made them, as at prediction time."""
    agg = Agg()
    captured: list[Any] = []
    head = getattr(classifier.model, "classifier", None)
    handle = (
        head.register_forward_pre_hook(lambda _m, args: captured.append(args[0].detach()))
        if head is not None
        else None
    )
    rows: list[tuple[str, str, float]] = []
    names = list(label_names)
    try:
        for start in range(0, len(texts), batch_size):
            chunk = list(texts[start : start + batch_size])
            captured.clear()
            probs = classifier.forward(classifier.encode(chunk)).tolist()
            for k, (text, p) in enumerate(zip(chunk, probs, strict=True)):
                best = max(range(len(p)), key=p.__getitem__)
                agg.add_prediction(names[best], p[best], text_length(text))
                if labels is not None:
                    rows.append((labels[start + k], names[best], p[best]))
            for pooled in captured:
                x = pooled.float().reshape(pooled.shape[0], -1)[:, : cfg.sketch_dims]
                agg.add_embeddings(
                    int(x.shape[0]), x.sum(dim=0).tolist(), (x * x).sum(dim=0).tolist()
                )
    finally:
        if handle is not None:
            handle.remove()
    if agg.emb_n < cfg.min_sketch_count:
        agg.emb_n, agg.emb_sum, agg.emb_sq = 0, [], []
    return agg, (dict(quality(rows, names)) if labels is not None else {})


def sample_rows(n: int, cap: int, seed: int = SAMPLE_SEED) -> list[int]:
    """Positions of at most ``cap`` of ``n`` rows: all of them, or a fixed-seed sample
    (in their original order)."""
    if n <= cap:
        return list(range(n))
    return sorted(random.Random(seed).sample(range(n), cap))  # noqa: S311 - a sample, not a secret


# --- the version's evaluation split ---------------------------------------------------------


def evaluation_split(version: ModelVersion) -> str:
    """The dataset split evaluation used at training (recorded by the worker)."""
    split = (version.training or {}).get("evaluated_on")
    return str(split) if split in ("train", "validation", "test") else "validation"


@dataclass(frozen=True)
class ReferenceInputs:
    """What a build classifies, read in a snapshot that has ended by the time it does: the
    version, and the sampled rows of its evaluation split (in memory only)."""

    info: VersionInfo
    texts: list[str]
    labels: list[str] | None
    split: str
    meta: dict[str, Any]


def read_inputs(
    session: Session, *, runtime: ServiceRuntime, version: ModelVersion, cfg: MonitoringSettings
) -> ReferenceInputs:
    """Decrypt the version's evaluation split in memory and sample it (reads only). Raises
    ``VersionNotServingError`` for a version that does not serve, ``ReferenceBuildError``
    when there is nothing to build from."""
    from privet.jobs.sources import get_dataset_source

    if version.state not in SERVING_STATES:
        raise not_serving(version, while_building=False)
    datasets = [d for d in version.dataset_versions or [] if d.get("id")]
    if not datasets:
        raise ReferenceBuildError(
            f"model version {version.id} records no dataset version in its lineage, so "
            "there is no evaluation split to build its reference from",
            reason="no-dataset-version",
        )
    dataset_version_id = str(datasets[0]["id"])
    split = evaluation_split(version)
    source = get_dataset_source()
    facts = source.facts(session, project_id=version.project_id, version_id=dataset_version_id)
    splits = source.load(session, runtime, facts=facts)
    data = {"train": splits.train, "validation": splits.validation, "test": splits.test}[split]
    del splits
    if data is None or len(data.texts) == 0:
        raise ReferenceBuildError(
            f"dataset version {dataset_version_id} has no {split} rows to build model "
            f"version {version.id}'s reference from",
            reason="no-evaluation-split",
        )
    available = len(data.texts)
    keep = sample_rows(available, cfg.reference_max_rows)
    texts = [data.texts[i] for i in keep]
    # an unlabelled version (distillation input) has no labels to measure quality against
    labels = None if facts.unlabelled else [str(data.labels[i]) for i in keep]
    del data
    info = lookup_version(
        session, project_id=version.project_id, model=version.model_id, version=version.id
    )
    meta = {
        "dataset_version_id": dataset_version_id,
        "split": split,
        "rows_available": available,
        "rows_used": len(keep),
        "max_rows": cfg.reference_max_rows,
        "sampled": len(keep) < available,
        "sample_seed": SAMPLE_SEED if len(keep) < available else None,
    }
    return ReferenceInputs(
        info=info,
        texts=texts,
        labels=labels,
        split=split,
        meta=meta,
    )


def classify_inputs(
    service: Any, inputs: ReferenceInputs, cfg: MonitoringSettings
) -> ComputedReference:
    """Classify the inputs with the version's own weights and aggregate them. Call it with
    no database transaction open: it runs the forward passes (the weights load, if they
    are not in memory yet, in a snapshot of their own)."""
    classifier = service.served(inputs.info).classifier
    agg, q = classify_aggregates(
        classifier,
        label_names=inputs.info.label_names,
        texts=inputs.texts,
        labels=inputs.labels,
        cfg=cfg,
    )
    return ComputedReference(agg=agg, quality=q, source=inputs.split, meta=dict(inputs.meta))


def not_serving(version: ModelVersion, *, while_building: bool) -> ConflictError:
    """The refusal for a version that does not serve (then, or any more once built)."""
    state = (
        f"became {version.state} while its reference was being built: nothing was recorded"
        if while_building
        else f"is {version.state}"
    )
    return VersionNotServingError(
        f"model version {version.id} {state}; a monitoring reference is built for approved "
        "(or suspended) versions",
        model_version=version.id,
        state=version.state,
    )


def lock_serving_version(session: Session, version_id: str) -> ModelVersion:
    """The version, re-read and locked in ``session``'s transaction, if it still serves;
    else ``VersionNotServingError`` (retired, or back to candidate, while the reference was
    being built): the caller writes nothing."""
    version = session.get(ModelVersion, version_id, with_for_update=True, populate_existing=True)
    if version is None:  # pragma: no cover - versions are never deleted
        raise ConflictError(f"model version {version_id} is gone")
    if version.state not in SERVING_STATES:
        raise not_serving(version, while_building=True)
    return version


# --- rows and events ----------------------------------------------------------------------------


def _row_for_update(session: Session, version_id: str) -> MonitoringReference | None:
    return session.get(
        MonitoringReference, version_id, with_for_update=True, populate_existing=True
    )


def store_reference(
    session: Session,
    *,
    version_id: str,
    computed: ComputedReference,
    actor: str | None,
    trigger: str,
) -> MonitoringReference:
    """Write (or replace) the version's ready reference and its ``monitoring.reference_set``
    event, in ``session``'s transaction, if the version still serves (re-read and locked
    here: ``VersionNotServingError`` otherwise, nothing written)."""
    project_id = lock_serving_version(session, version_id).project_id
    agg, q = computed.agg, computed.quality
    row = _row_for_update(session, version_id)
    if row is None:
        row = MonitoringReference(
            model_version_id=version_id,
            count=agg.count,
            data=agg.to_json(),
            quality=dict(q),
            source=computed.source,
            created_at=utcnow(),
        )
    row.count, row.data, row.quality = agg.count, agg.to_json(), dict(q)
    row.source = computed.source
    row.status, row.detail, row.meta = REFERENCE_READY, None, dict(computed.meta) or None
    row.created_at = utcnow()
    session.add(row)
    meta = computed.meta
    accuracy = q.get("accuracy")
    objects = {"model_version": version_id}
    if meta.get("dataset_version_id"):
        objects["dataset_version"] = str(meta["dataset_version_id"])
    ledger.emit(
        session,
        type="monitoring.reference_set",
        actor=actor,
        project=project_id,
        objects=objects,
        details={
            "source": computed.source,
            "examples": agg.count,
            "embeddings": agg.emb_n,
            "trigger": trigger,
            **({"accuracy_ppm": _ppm(accuracy)} if isinstance(accuracy, float) else {}),
            **{
                k: meta[k]
                for k in ("split", "rows_available", "rows_used", "max_rows", "sample_seed")
                if meta.get(k) is not None
            },
        },
    )
    session.flush()
    return row


def _empty_row(version_id: str, status: str) -> MonitoringReference:
    """A reference row with no aggregates yet."""
    return MonitoringReference(
        model_version_id=version_id,
        count=0,
        data={},
        quality={},
        source="none",
        status=status,
        created_at=utcnow(),
    )


def request_reference(session: Session, *, version: ModelVersion, actor: str | None) -> None:
    """In the approval's transaction: the version's reference is due (a ``pending`` row
    and a ``monitoring.reference_requested`` event); ``build_after_approval`` builds it."""
    row = _row_for_update(session, version.id)
    if row is not None and row.status == REFERENCE_READY:
        return
    if row is None:
        row = _empty_row(version.id, REFERENCE_PENDING)
    row.status, row.detail, row.created_at = REFERENCE_PENDING, None, utcnow()
    session.add(row)
    ledger.emit(
        session,
        type="monitoring.reference_requested",
        actor=actor,
        project=version.project_id,
        objects={"model_version": version.id, "model": version.model_id},
        details={"trigger": "approval"},
    )
    session.flush()


def failure_reason(exc: BaseException) -> tuple[str, str]:
    """(reason slug, detail) of a failed build; never the message of an unexpected error
    (it could quote data), only its type."""
    if isinstance(exc, PrivetError):
        reason = exc.extensions.get("reason") or exc.slug
        return str(reason), exc.detail[:500]
    return "error", (
        f"{type(exc).__name__} while building the reference (see the server log); "
        "re-run it with POST ...:monitoring-reference"
    )


def record_failure(
    session: Session,
    *,
    version: ModelVersion,
    exc: BaseException,
    actor: str | None,
    trigger: str,
) -> tuple[str, str]:
    """Record a failed build: a ``monitoring.reference_failed`` event, and the row's status
    ``failed`` unless a ready reference exists (a failed rebuild keeps the last good one)."""
    reason, detail = failure_reason(exc)
    row = _row_for_update(session, version.id)
    if row is None:
        row = _empty_row(version.id, REFERENCE_FAILED)
    if row.status != REFERENCE_READY:
        row.status, row.detail = REFERENCE_FAILED, detail
        row.meta = {"reason": reason}
        row.created_at = utcnow()
        session.add(row)
    ledger.emit(
        session,
        type="monitoring.reference_failed",
        actor=actor,
        project=version.project_id,
        objects={"model_version": version.id, "model": version.model_id},
        outcome="error",
        details={"reason": reason, "trigger": trigger},
    )
    session.flush()
    return reason, detail


def rebuild_path(session: Session, version: ModelVersion) -> str:
    model = session.get(Model, version.model_id)
    name = model.name if model is not None else version.model_id
    return (
        f"/v1/projects/{version.project_id}/models/{name}/versions/{version.number}"
        ":monitoring-reference"
    )


def reference_status(session: Session, version: ModelVersion) -> ReferenceStatus:
    row = session.get(MonitoringReference, version.id)
    rebuild = rebuild_path(session, version)
    if row is None:
        return ReferenceStatus(model_version_id=version.id, status="none", rebuild=rebuild)
    meta = dict(row.meta or {})
    ready = row.status == REFERENCE_READY
    return ReferenceStatus(
        model_version_id=version.id,
        status=row.status,
        source=row.source if ready else None,
        examples=row.count if ready else 0,
        rows_available=meta.get("rows_available"),
        split=meta.get("split"),
        dataset_version_id=meta.get("dataset_version_id"),
        detail=row.detail,
        reason=meta.get("reason"),
        updated_at=row.created_at,
        rebuild=rebuild,
    )
