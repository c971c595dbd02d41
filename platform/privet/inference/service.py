"""Audited inference: predict a batch, record one ledger event per prediction, record
human reviews and contests, and explain a prediction whose input is resubmitted.

Everything a prediction leaves behind is ids, keyed digests and the output: the
``predictions`` row and the ``prediction.made`` event hold the HMAC digest of the input
text, never the text; a subject id appears only as its pseudonym. Events are added with
one ``emit_many`` (one multi-row insert) in the request's transaction, which commits
before the response is sent: a returned prediction is a durable event.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry
from sqlalchemy import Engine, insert, select, update
from sqlmodel import Session

from privet import ledger, monitoring
from privet.auth import service as auth_service
from privet.config import Settings
from privet.crypto import KeyProvider
from privet.crypto.blobs import BlobStore
from privet.inference import reasons
from privet.inference.batcher import BatcherClosedError, MicroBatcher
from privet.inference.cache import ModelCache, inference_metrics
from privet.inference.digests import Digester
from privet.inference.settings import InferenceSettings, get_inference_settings
from privet.inference.tables import (
    PREDICTION_ID_PREFIX,
    REVIEW_ID_PREFIX,
    ExplanationOut,
    Prediction,
    PredictionOut,
    PredictionReview,
    PredictItem,
    ReviewCreate,
    ReviewDecision,
    ReviewKind,
    ReviewPublic,
    TokenAttribution,
)
from privet.inference.versions import (
    VersionDirectory,
    VersionInfo,
    load_weights,
)
from privet.kit.errors import InvalidInputError, NotFoundError
from privet.kit.ids import new_id, utcnow
from privet.models.tables import ModelVersion

if TYPE_CHECKING:  # torch and transformers load on the first prediction, not at import
    from privet.inference.classifier import Classifier, Scores

log = logging.getLogger("privet.inference")

PPM = 1_000_000


def to_ppm(p: float) -> int:
    """A probability as integer parts per million (events refuse floats)."""
    value: int = round(float(p) * PPM)
    return max(0, min(PPM, value))


@dataclass
class ServedModel:
    """A cached version: its classifier and the micro-batcher feeding it."""

    classifier: Classifier
    batcher: MicroBatcher[str, Scores]

    @property
    def nbytes(self) -> int:
        return self.classifier.nbytes

    def close(self) -> None:
        self.batcher.close(wait=False)


class InferenceService:
    """One per process (the gateway keeps it on ``app.state``)."""

    def __init__(
        self,
        *,
        settings: Settings,
        engine: Engine,
        key_provider: KeyProvider,
        blobs: BlobStore,
        registry: CollectorRegistry | None = None,
        config: InferenceSettings | None = None,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.key_provider = key_provider
        self.blobs = blobs
        self.config = config or get_inference_settings()
        self.digester = Digester.from_settings(settings)
        self.directory = VersionDirectory(self.config.state_ttl_s)
        self.metrics = inference_metrics(registry)
        self.cache: ModelCache[ServedModel] = ModelCache(
            max_models=self.config.cache_max_models,
            max_bytes=self.config.cache_max_bytes,
            metrics=self.metrics,
        )

    @classmethod
    def from_runtime(
        cls, runtime: Any, *, registry: CollectorRegistry | None = None
    ) -> InferenceService:
        return cls(
            settings=runtime.settings,
            engine=runtime.engine,
            key_provider=runtime.key_provider,
            blobs=runtime.blobs,
            registry=registry,
        )

    # --- versions and the cache ------------------------------------------------------------

    def version(
        self, session: Session, *, project_id: str, model: str, version: str
    ) -> VersionInfo:
        """The version a request names (state read at most ``state_ttl_s`` ago)."""
        info = self.directory.get(session, project_id=project_id, model=model, version=version)
        if not info.serving:
            # Free the memory of a version that stopped serving (retired, suspended).
            self.cache.evict(info.id)
        return info

    def served(self, session: Session, info: VersionInfo) -> ServedModel:
        def load() -> ServedModel:
            from privet.inference.classifier import Classifier, set_threads

            set_threads(self.config.torch_threads)
            loaded = load_weights(session=session, runtime=self, info=info)
            classifier = Classifier.from_weights(
                loaded.weights,
                base_model=info.base_model,
                label_names=info.label_names,
                max_length=min(self.config.max_length, loaded.max_length),
                version_id=info.id,
            )
            del loaded
            log.info(
                "model version loaded",
                extra={"model_version": info.id, "bytes": classifier.nbytes},
            )

            def on_batch(requests: int, items: int) -> None:
                self.metrics.batch_requests.observe(requests)
                self.metrics.batch_items.observe(items)

            batcher: MicroBatcher[str, Scores] = MicroBatcher(
                classifier.predict,
                max_items=self.config.batch_max_items,
                max_wait_s=self.config.batch_max_wait_ms / 1000.0,
                name=f"privet-batcher-{info.id}",
                on_batch=on_batch,
            )
            return ServedModel(classifier, batcher)

        return self.cache.get(info.id, load)

    def scores(self, session: Session, info: VersionInfo, texts: Sequence[str]) -> list[Scores]:
        """Class probabilities through the micro-batcher (reloads once if evicted meanwhile)."""
        for attempt in range(3):
            served = self.served(session, info)
            try:
                return served.batcher.submit(texts)
            except BatcherClosedError:
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    # --- predict ---------------------------------------------------------------------------

    def check_texts(self, items: Sequence[PredictItem]) -> None:
        if len(items) > self.config.max_items:
            raise InvalidInputError(
                f"at most {self.config.max_items} texts per request (got {len(items)}): "
                "split the batch",
                max_items=self.config.max_items,
            )
        for i, item in enumerate(items):
            if len(item.text) > self.config.max_text_chars:
                raise InvalidInputError(
                    f"items[{i}].text is longer than {self.config.max_text_chars} characters"
                )

    def predict(
        self,
        session: Session,
        *,
        info: VersionInfo,
        items: Sequence[PredictItem],
        purpose: str,
        caller: str,
    ) -> list[PredictionOut]:
        """Classify ``items`` with an authorized, serving version and record each
        prediction (row + ledger event) in ``session``'s transaction."""
        self.check_texts(items)
        scores = self.scores(session, info, [item.text for item in items])
        now = utcnow()
        rows: list[dict[str, Any]] = []
        events: list[ledger.EventSpec] = []
        out: list[PredictionOut] = []
        labels = info.label_names
        for item, score in zip(items, scores, strict=True):
            best = score.best
            label = labels[best]
            ppm = to_ppm(score.probabilities[best])
            pid = new_id(PREDICTION_ID_PREFIX)
            text_digest = self.digester.text(item.text)
            subject = self.digester.subject(item.subject_id)
            rows.append(
                {
                    "id": pid,
                    "project_id": info.project_id,
                    "model_id": info.model_id,
                    "model_version_id": info.id,
                    "version_number": info.number,
                    "caller": caller,
                    "purpose": purpose,
                    "input_digest": text_digest,
                    "subject_digest": subject,
                    "label": label,
                    "score_ppm": ppm,
                    "human_reviewed": False,
                    "created_at": now,
                }
            )
            digests = {"input": text_digest}
            if subject is not None:
                digests["subject"] = subject
            events.append(
                ledger.EventSpec(
                    type="prediction.made",
                    actor=caller,
                    project=info.project_id,
                    objects={"prediction": pid, "model_version": info.id, "model": info.model_id},
                    digests=digests,
                    details={
                        "purpose": purpose,
                        "label": label,
                        "score_ppm": ppm,
                        "model_version": info.number,
                        "human_reviewed": False,
                    },
                )
            )
            out.append(
                PredictionOut(
                    prediction_id=pid,
                    label=label,
                    score=round(score.probabilities[best], 6),
                    probabilities={
                        name: round(p, 6)
                        for name, p in zip(labels, score.probabilities, strict=True)
                    },
                    model_id=info.model_id,
                    model_version_id=info.id,
                    model_version=info.number,
                    purpose=purpose,
                )
            )
        # Decision rules and drift aggregates (privet.monitoring): marks non-final decisions
        # in ``events``/``out`` and queues them for review; keeps no text.
        monitoring.observe(
            self,
            session,
            info=info,
            items=items,
            scores=scores,
            rows=rows,
            events=events,
            out=out,
            purpose=purpose,
            caller=caller,
        )
        session.execute(insert(Prediction.__table__), rows)  # type: ignore[attr-defined]
        ledger.emit_many(session, events)
        return out

    def record_refusal(
        self, session: Session, *, info: VersionInfo, caller: str, purpose: str, items: int
    ) -> None:
        """A request refused because the version does not serve (beside the policy's own
        deny decision): which version, in which state, for how many texts."""
        ledger.emit(
            session,
            type="prediction.refused",
            actor=caller,
            project=info.project_id,
            objects={"model_version": info.id, "model": info.model_id},
            outcome="deny",
            details={
                "reason": "version-not-serving",
                "state": info.state,
                "purpose": purpose,
                "items": items,
            },
        )

    def subject_digests(self, items: Sequence[PredictItem]) -> list[str | None]:
        """Each item's subject pseudonym (None without a subject id)."""
        return [self.digester.subject(item.subject_id) for item in items]

    def record_objection_refusal(
        self,
        session: Session,
        *,
        info: VersionInfo,
        caller: str,
        purpose: str,
        items: int,
        objected: dict[str, int],
    ) -> None:
        """A request refused because subjects it names objected (GDPR Art. 21): one event
        per objecting subject, by pseudonym, with how many of the items were theirs."""
        ledger.emit_many(
            session,
            [
                ledger.EventSpec(
                    type="prediction.refused",
                    actor=caller,
                    project=info.project_id,
                    objects={"model_version": info.id, "model": info.model_id},
                    digests={"subject": digest},
                    outcome="deny",
                    details={
                        "reason": "subject-objected",
                        "purpose": purpose,
                        "items": items,
                        "subject_items": count,
                    },
                )
                for digest, count in sorted(objected.items())
            ],
        )

    # --- predictions: lookup, review, explain ------------------------------------------------

    def get_prediction(
        self, session: Session, *, project_id: str, prediction_id: str
    ) -> Prediction:
        row = session.get(Prediction, prediction_id)
        if row is None or row.project_id != project_id:
            raise NotFoundError(
                f"prediction {prediction_id!r} does not exist in project {project_id!r}"
            )
        return row

    def _version_row(self, session: Session, prediction: Prediction) -> ModelVersion:
        row = session.get(ModelVersion, prediction.model_version_id)
        if row is None:  # pragma: no cover - versions are never deleted
            raise NotFoundError(f"model version {prediction.model_version_id!r} is gone")
        return row

    def review(
        self, session: Session, *, prediction: Prediction, body: ReviewCreate, reviewer: str
    ) -> ReviewPublic:
        """Record a human review (confirmed/overturned) or a contest of a prediction."""
        version = self._version_row(session, prediction)
        if body.label is not None and body.label not in version.label_names:
            raise InvalidInputError(
                f"label {body.label!r} is not one of the model's labels {version.label_names}"
            )
        decision = body.decision or ReviewDecision.pending
        review = PredictionReview(
            id=new_id(REVIEW_ID_PREFIX),
            prediction_id=prediction.id,
            project_id=prediction.project_id,
            kind=body.kind.value,
            decision=decision.value,
            label=body.label,
            reviewer=reviewer,
            created_at=utcnow(),
        )
        reasons.seal_reason(session, provider=self.key_provider, review=review, reason=body.reason)
        session.add(review)
        reviewed = prediction.human_reviewed or body.kind == ReviewKind.review
        if reviewed and not prediction.human_reviewed:
            session.execute(
                update(Prediction.__table__)  # type: ignore[attr-defined]
                .where(Prediction.__table__.c.id == prediction.id)  # type: ignore[attr-defined]
                .values(human_reviewed=True)
            )
        digests = {"reason": self.digester.text(body.reason)} if body.reason else None
        details: dict[str, Any] = {
            "kind": body.kind.value,
            "decision": decision.value,
            "original_label": prediction.label,
            "human_reviewed": reviewed,
        }
        if body.label is not None:
            details["label"] = body.label
        ledger.emit(
            session,
            type="prediction.contested"
            if body.kind == ReviewKind.contest
            else "prediction.reviewed",
            actor=reviewer,
            project=prediction.project_id,
            objects={
                "prediction": prediction.id,
                "model_version": prediction.model_version_id,
                "review": review.id,
            },
            digests=digests,
            details=details,
        )
        session.flush()
        return ReviewPublic(
            id=review.id,
            prediction_id=prediction.id,
            kind=review.kind,
            decision=review.decision,
            label=review.label,
            reason=body.reason,
            reviewer=reviewer,
            created_at=review.created_at,
            human_reviewed=reviewed,
        )

    def review_attributes(self, session: Session, *, prediction: Prediction) -> dict[str, Any]:
        """The Prediction's attributes for ``prediction.review``: the accountable human of
        the application that made it, and the people who already decided a review of it
        (policies/human_review.cedar compares the reviewer's accountable human with both)."""
        attrs: dict[str, Any] = {"project": prediction.project_id}
        caller = auth_service.accountable_human(session, principal_id=prediction.caller)
        if caller is not None:
            attrs["caller_accountable"] = caller
        decided: set[str] = set()
        for review in self.review_rows(session, prediction=prediction):
            if review.kind != ReviewKind.review.value:
                continue
            decided.add(review.reviewer)
            human = auth_service.accountable_human(session, principal_id=review.reviewer)
            if human is not None:
                decided.add(human)
        attrs["decided_by"] = decided
        return attrs

    def review_rows(self, session: Session, *, prediction: Prediction) -> list[PredictionReview]:
        """The prediction's review rows, oldest first (reasons still sealed)."""
        return list(
            session.execute(
                select(PredictionReview)
                .where(PredictionReview.prediction_id == prediction.id)  # type: ignore[arg-type]
                .order_by(PredictionReview.created_at, PredictionReview.id)  # type: ignore[arg-type]
            ).scalars()
        )

    def reviews(self, session: Session, *, prediction: Prediction) -> list[ReviewPublic]:
        """The prediction's reviews and contests, oldest first, reasons unsealed."""
        rows = self.review_rows(session, prediction=prediction)
        out: list[ReviewPublic] = []
        reviewed = False
        for row in rows:
            reviewed = reviewed or row.kind == ReviewKind.review.value
            out.append(
                ReviewPublic(
                    id=row.id,
                    prediction_id=row.prediction_id,
                    kind=row.kind,
                    decision=row.decision,
                    label=row.label,
                    reason=reasons.read_reason(session, provider=self.key_provider, review=row),
                    reason_shredded=row.reason_shredded_at is not None,
                    reviewer=row.reviewer,
                    created_at=row.created_at,
                    human_reviewed=reviewed,
                )
            )
        return out

    def input_matches(self, prediction: Prediction, text: str) -> bool:
        return self.digester.matches(text, prediction.input_digest)

    def record_explain_refusal(
        self, session: Session, *, prediction: Prediction, caller: str, text: str
    ) -> None:
        ledger.emit(
            session,
            type="prediction.explanation_refused",
            actor=caller,
            project=prediction.project_id,
            objects={"prediction": prediction.id, "model_version": prediction.model_version_id},
            digests={"submitted": self.digester.text(text)},
            outcome="deny",
            details={"reason": "input-digest-mismatch"},
        )

    def explain(
        self, session: Session, *, prediction: Prediction, text: str, caller: str
    ) -> ExplanationOut:
        """Occlusion attributions for the prediction's label, recomputed with that exact
        model version (whatever its state now: a retired version still explains its past
        decisions). The caller must have checked ``input_matches`` first."""
        version = self._version_row(session, prediction)
        info = self.directory.get(
            session,
            project_id=prediction.project_id,
            model=version.model_id,
            version=version.id,
        )
        served = self.served(session, info)
        label_index = list(info.label_names).index(prediction.label)
        score, tokens = served.classifier.occlusion(
            text, label_index, max_tokens=self.config.explain_max_tokens
        )
        ledger.emit(
            session,
            type="prediction.explained",
            actor=caller,
            project=prediction.project_id,
            objects={"prediction": prediction.id, "model_version": prediction.model_version_id},
            digests={"input": prediction.input_digest},
            details={"method": "occlusion", "tokens": len(tokens)},
        )
        return ExplanationOut(
            prediction_id=prediction.id,
            model_version_id=info.id,
            model_version=info.number,
            label=prediction.label,
            score=round(score, 6),
            method="occlusion",
            baseline="mask token",
            tokens=[
                TokenAttribution(token=t, start=s, end=e, attribution=round(a, 6))
                for t, s, e, a in tokens
            ],
        )
