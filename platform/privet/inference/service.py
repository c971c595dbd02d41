"""Audited inference: predict a batch, record one ledger event per prediction, record
human reviews and contests, and explain a prediction whose input is resubmitted.

Everything a prediction leaves behind is ids, keyed digests and the output: the
``predictions`` row and the ``prediction.made`` event hold the HMAC digest of the input
text, never the text; a subject id appears only as its pseudonym.

A prediction is made in three steps, and no database transaction is open during the
forward pass: the caller authorizes and resolves the version in a short read-only
transaction; ``classify`` runs the model (through the micro-batcher, so concurrent
requests share forward passes, on SQLite too: no request holds the write lock meanwhile);
``record`` writes the rows and their events (one ``emit_many``, one multi-row insert) in
one short writing transaction, which commits before the response is sent: a returned
prediction is a durable event. ``record`` re-reads the version's state in that
transaction and writes nothing for a version that stopped serving meanwhile.

The parts: ``served`` (a version in memory), ``records`` (what a prediction leaves
behind), ``reviews`` (human reviews and contests), ``observer`` (the seam monitoring
plugs into; this package never imports monitoring).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry
from sqlalchemy import Engine, insert
from sqlmodel import Session

from privet import ledger
from privet.config import Settings
from privet.crypto import KeyProvider
from privet.crypto.blobs import BlobStore
from privet.inference import records, reviews
from privet.inference.batcher import BatcherClosedError
from privet.inference.cache import ModelCache, inference_metrics
from privet.inference.digests import Digester
from privet.inference.observer import ObservedRuntime, PredictionObserver
from privet.inference.records import prediction_batch
from privet.inference.schemas import (
    ExplanationOut,
    PredictionOut,
    PredictItem,
    ReviewCreate,
    ReviewPublic,
    TokenAttribution,
)
from privet.inference.served import ServedModel, load_served
from privet.inference.settings import (
    SERVING_PRECISIONS,
    InferenceSettings,
    get_inference_settings,
)
from privet.inference.tables import Prediction
from privet.inference.versions import (
    VersionChangedError,
    VersionDirectory,
    VersionInfo,
    state_of,
)
from privet.kit.errors import InvalidInputError
from privet.kit.ids import utcnow

if TYPE_CHECKING:  # torch and transformers load on the first prediction, not at import
    from privet.inference.classifier import Scores


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
        observer: PredictionObserver | None = None,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.key_provider = key_provider
        self.blobs = blobs
        self.config = config or get_inference_settings()
        self.observer = observer
        self.digester = Digester.from_settings(settings)
        self.directory = VersionDirectory(self.config.state_ttl_s)
        self.metrics = inference_metrics(registry)
        for precision in SERVING_PRECISIONS:
            self.metrics.precision.labels(precision).set(precision == self.config.precision)
        self.cache: ModelCache[ServedModel] = ModelCache(
            max_models=self.config.cache_max_models,
            max_bytes=self.config.cache_max_bytes,
            max_device_bytes=self.config.cache_max_device_bytes,
            metrics=self.metrics,
        )

    @classmethod
    def from_runtime(
        cls, runtime: ObservedRuntime, *, registry: CollectorRegistry | None = None
    ) -> InferenceService:
        return cls(
            settings=runtime.settings,
            engine=runtime.engine,
            key_provider=runtime.key_provider,
            blobs=runtime.blobs,
            registry=registry,
            observer=runtime.prediction_observer,
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

    def served(self, info: VersionInfo) -> ServedModel:
        """The version in memory, loaded on first use (in a read-only snapshot of its own)."""
        return self.cache.get(
            info.id,
            lambda: load_served(
                self.engine, runtime=self, info=info, config=self.config, metrics=self.metrics
            ),
        )

    def scores(self, info: VersionInfo, texts: Sequence[str]) -> list[Scores]:
        """Class probabilities through the micro-batcher (reloads once if evicted meanwhile)."""
        for attempt in range(3):
            served = self.served(info)
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

    def classify(self, *, info: VersionInfo, items: Sequence[PredictItem]) -> list[Scores]:
        """Class probabilities of ``items`` with an authorized, serving version. Call it
        with no database transaction open: it waits for the forward pass."""
        self.check_texts(items)
        return self.scores(info, [item.text for item in items])

    def record(
        self,
        session: Session,
        *,
        info: VersionInfo,
        items: Sequence[PredictItem],
        scores: Sequence[Scores],
        purpose: str,
        caller: str,
    ) -> list[PredictionOut]:
        """Record each prediction (row + ledger event) in ``session``'s transaction, which
        the caller commits at once. Raises ``VersionChangedError`` (nothing written) if the
        version stopped serving since it was authorized: its state is re-read here, in
        the transaction that writes."""
        current = replace(info, state=state_of(session, info.id) or "deleted")
        if not current.serving:
            self.cache.evict(info.id)
            self.directory.forget()
            raise VersionChangedError(current)
        batch = prediction_batch(
            info=info,
            items=items,
            scores=scores,
            digester=self.digester,
            purpose=purpose,
            caller=caller,
            now=utcnow(),
            precision=self.config.precision,
        )
        if self.observer is not None:
            # Decision rules and drift aggregates (privet.monitoring, wired in by the
            # runtime): marks non-final decisions in the batch's events and responses and
            # queues them for review; keeps no text.
            self.observer(self, session, batch)
        session.execute(insert(Prediction.__table__), batch.rows)  # type: ignore[attr-defined]
        ledger.emit_many(session, batch.events)
        return batch.out

    def record_refusal(
        self,
        session: Session,
        *,
        info: VersionInfo,
        caller: str,
        purpose: str,
        items: int,
        after_decision: bool = False,
    ) -> None:
        """A request refused because the version does not serve (beside the policy's own
        deny decision, or after its allow when the version stopped serving while the texts
        were classified: ``after_decision``): which version, in which state, for how many
        texts."""
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
                **({"after_decision": True} if after_decision else {}),
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
        return records.get_prediction(session, project_id=project_id, prediction_id=prediction_id)

    def review(
        self, session: Session, *, prediction: Prediction, body: ReviewCreate, reviewer: str
    ) -> ReviewPublic:
        """Record a human review (confirmed/overturned) or a contest of a prediction."""
        return reviews.record_review(
            session,
            provider=self.key_provider,
            digester=self.digester,
            prediction=prediction,
            body=body,
            reviewer=reviewer,
        )

    def review_attributes(self, session: Session, *, prediction: Prediction) -> dict[str, Any]:
        """The Prediction's attributes for the ``prediction.review`` policy."""
        return reviews.review_attributes(session, prediction=prediction)

    def reviews(self, session: Session, *, prediction: Prediction) -> list[ReviewPublic]:
        """The prediction's reviews and contests, oldest first, reasons unsealed."""
        return reviews.list_reviews(session, provider=self.key_provider, prediction=prediction)

    def input_matches(self, prediction: Prediction, text: str) -> bool:
        return self.digester.matches(text, prediction.input_digest)

    def record_explain_refusal(
        self, session: Session, *, prediction: Prediction, caller: str, text: str
    ) -> None:
        _explanation_event(
            session,
            prediction,
            type="prediction.explanation_refused",
            caller=caller,
            digests={"submitted": self.digester.text(text)},
            outcome="deny",
            details={"reason": "input-digest-mismatch"},
        )

    def explained_version(self, session: Session, *, prediction: Prediction) -> VersionInfo:
        """The version that made ``prediction``, whatever its state now (a retired version
        still explains its past decisions)."""
        version = reviews.version_row(session, prediction)
        return self.directory.get(
            session,
            project_id=prediction.project_id,
            model=version.model_id,
            version=version.id,
        )

    def explain(self, *, info: VersionInfo, prediction: Prediction, text: str) -> ExplanationOut:
        """Occlusion attributions for the prediction's label, recomputed with that exact
        model version (``explained_version``). The caller must have checked
        ``input_matches`` first, and holds no database transaction: this runs the model."""
        served = self.served(info)
        label_index = list(info.label_names).index(prediction.label)
        score, tokens = served.classifier.occlusion(
            text, label_index, max_tokens=self.config.explain_max_tokens
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

    def record_explanation(
        self, session: Session, *, prediction: Prediction, explanation: ExplanationOut, caller: str
    ) -> None:
        _explanation_event(
            session,
            prediction,
            type="prediction.explained",
            caller=caller,
            digests={"input": prediction.input_digest},
            details={"method": explanation.method, "tokens": len(explanation.tokens)},
        )


def _explanation_event(
    session: Session,
    prediction: Prediction,
    *,
    type: str,
    caller: str,
    digests: dict[str, str],
    details: dict[str, Any],
    outcome: str = "ok",
) -> None:
    """One ledger event about an explanation of `prediction` (made or refused): the
    prediction and the version that made it are its objects."""
    ledger.emit(
        session,
        type=type,
        actor=caller,
        project=prediction.project_id,
        objects={"prediction": prediction.id, "model_version": prediction.model_version_id},
        digests=digests,
        outcome=outcome,
        details=details,
    )
