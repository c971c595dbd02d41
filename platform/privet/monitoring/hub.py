"""The prediction-time hook: decision rules, drift aggregates and drift alerts.

``MonitorSlot.observe`` is the inference service's ``PredictionObserver`` (the runtime
wires it in):
it is called once per predict request with the request's rows, events and responses
before they are written. It

1. evaluates the decision rules (``rules.py``) per prediction and writes their status
   and rule ids into the prediction's ledger event and response; a non-final prediction
   enters the review queue (``prediction_decisions``) with its input text sealed beside
   it (``prediction_cases``, ``privet.inference.cases``), the one text kept;
2. adds the predictions to in-memory aggregates per (model version, time window):
   predicted-label counts, confidence and input-length histograms, and (from a forward
   hook on the classifier head, in the micro-batcher thread) the per-dimension sum and
   sum of squares of the model's sentence embedding. Never a text, a token or an id;
3. every ``flush_every`` predictions (or ``flush_interval_s``) writes the aggregates as
   one append-only delta row per window in the request's transaction, scores the
   window's drift against the validation-time reference, updates the Prometheus gauges,
   and records an alert (row + ``monitoring.threshold_crossed`` ledger event) the first
   time a feature crosses its threshold in a window.

One ``Monitor`` per runtime (``MonitorSlot``, made with the runtime's policy engine); the
gateway attaches it with its metrics registry first.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
import weakref
from collections.abc import Callable
from datetime import datetime
from typing import Any

from prometheus_client import CollectorRegistry
from sqlalchemy import insert
from sqlmodel import Session

from privet.crypto import KeyProvider
from privet.inference import cases
from privet.inference.observer import ObservedService, PredictionBatch
from privet.kit.ids import new_id, utcnow
from privet.monitoring import drift
from privet.monitoring.metrics import MonitoringMetrics
from privet.monitoring.rules import DecisionRules, RuleDecision
from privet.monitoring.settings import MonitoringSettings, get_monitoring_settings
from privet.monitoring.stats import Agg, text_length, window_start
from privet.monitoring.tables import (
    AGGREGATE_ID_PREFIX,
    FINAL,
    MonitoringAggregate,
    PredictionDecision,
)

log = logging.getLogger("privet.monitoring")

BATCHER_THREAD_PREFIX = "privet-batcher"
_HOOKED = "_privet_monitoring_hook"


class Monitor:
    """Per-process monitoring state for one database (thread-safe)."""

    def __init__(
        self,
        *,
        policy_engine: Any,
        registry: CollectorRegistry | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.rules = DecisionRules(policy_engine)
        self.metrics = MonitoringMetrics(registry if registry is not None else CollectorRegistry())
        self.clock = clock
        self._lock = threading.Lock()
        self._pending: dict[tuple[str, datetime], Agg] = {}
        self._pending_count = 0
        self._last_flush = time.monotonic()
        self._last_judged: dict[str, float] = {}

    # --- settings --------------------------------------------------------------------------

    @property
    def config(self) -> MonitoringSettings:
        return get_monitoring_settings()

    # --- the embedding sketch ----------------------------------------------------------------

    def ensure_embedding_hook(self, classifier: Any, version_id: str) -> None:
        """A forward pre-hook on the classification head: its input is the model's pooled
        sentence embedding. Counted only in the micro-batcher thread (predictions), not
        for explanations or reference building (they run elsewhere)."""
        model = getattr(classifier, "model", None)
        head = getattr(model, "classifier", None)
        if head is None or getattr(classifier, _HOOKED, False):
            return
        monitor = weakref.ref(self)

        def pre_hook(_module: Any, args: tuple[Any, ...]) -> None:
            if not threading.current_thread().name.startswith(BATCHER_THREAD_PREFIX):
                return
            live = monitor()
            if live is None or not args:
                return
            live.add_embeddings(version_id, args[0])

        head.register_forward_pre_hook(pre_hook)
        setattr(classifier, _HOOKED, True)

    def add_embeddings(self, version_id: str, pooled: Any) -> None:
        cfg = self.config
        if not cfg.enabled:
            return
        x = pooled.detach().float().reshape(pooled.shape[0], -1)[:, : cfg.sketch_dims]
        sums = x.sum(dim=0).tolist()
        squares = (x * x).sum(dim=0).tolist()
        key = (version_id, window_start(self.clock(), cfg.window_s))
        with self._lock:
            self._pending.setdefault(key, Agg()).add_embeddings(int(x.shape[0]), sums, squares)

    # --- the hook ----------------------------------------------------------------------------

    def observe(self, service: ObservedService, session: Session, batch: PredictionBatch) -> None:
        """The hook (see the module docstring): decide, aggregate, flush when due."""
        cfg = self.config
        if not (cfg.enabled or cfg.decision_rules):
            return
        info = batch.info
        if cfg.enabled:
            try:
                served = service.served(info)
                self.ensure_embedding_hook(served.classifier, info.id)
            except Exception:  # pragma: no cover - the sketch is best effort
                log.exception("embedding sketch unavailable", extra={"model_version": info.id})
        if cfg.decision_rules:
            self.decide(session, batch, provider=service.key_provider)
        if not cfg.enabled:
            return
        agg = Agg()
        for item, score, row in zip(batch.items, batch.scores, batch.rows, strict=True):
            agg.add_prediction(
                row["label"], score.probabilities[score.best], text_length(item.text)
            )
        key = (info.id, window_start(self.clock(), cfg.window_s))
        with self._lock:
            self._pending.setdefault(key, Agg()).merge(agg)
            self._pending_count += agg.count
            due = (
                self._pending_count >= cfg.flush_every
                or time.monotonic() - self._last_flush >= cfg.flush_interval_s
            )
        if due:
            self.flush(session)

    def decide(self, session: Session, batch: PredictionBatch, *, provider: KeyProvider) -> None:
        """The decision rules per prediction: status and rule ids into its ledger event
        and response; a non-final prediction enters the review queue with its text sealed
        (``privet.inference.cases``: the reviewer reads the case)."""
        info = batch.info
        queue: list[dict[str, Any]] = []
        texts: list[tuple[str, str]] = []
        statuses: dict[str, int] = {}
        for i, score in enumerate(batch.scores):
            row = batch.rows[i]
            decision = self.rules.decide(
                project_id=info.project_id,
                model_version_id=info.id,
                model=info.model_name,
                purpose=batch.purpose,
                label=row["label"],
                score=score.probabilities[score.best],
            )
            statuses[decision.status] = statuses.get(decision.status, 0) + 1
            spec = batch.events[i]
            batch.events[i] = dataclasses.replace(
                spec,
                details={
                    **dict(spec.details or {}),
                    "decision": decision.status,
                    "decision_rules": list(decision.rules),
                    **({} if decision.final else {"case_text": "sealed"}),
                },
            )
            if not decision.final:
                texts.append((row["id"], batch.items[i].text))
                batch.out[i] = batch.out[i].model_copy(
                    update={"decision": decision.status, "decision_rules": list(decision.rules)}
                )
                queue.append(_queue_row(batch, row, decision))
            elif decision.rules:
                batch.out[i] = batch.out[i].model_copy(
                    update={"decision_rules": list(decision.rules)}
                )
        if queue:
            session.execute(insert(PredictionDecision.__table__), queue)  # type: ignore[attr-defined]
            cases.seal_cases(
                session,
                provider=provider,
                project_id=info.project_id,
                cases=texts,
                created_at=queue[0]["created_at"],
            )
            cases.sweep_case_retention(session, limit=100)
        for status, n in statuses.items():
            self.metrics.decisions.labels(info.id, status).inc(n)

    # --- flushing and judging ------------------------------------------------------------------

    def take_pending(self) -> dict[tuple[str, datetime], Agg]:
        with self._lock:
            pending, self._pending = self._pending, {}
            self._pending_count = 0
            self._last_flush = time.monotonic()
        return pending

    def flush(self, session: Session) -> list[tuple[str, datetime]]:
        """Write the pending aggregates (one delta row per version and window) and judge
        the drift of each window they touched."""
        pending = self.take_pending()
        now = utcnow()
        cfg = self.config
        current = window_start(self.clock(), cfg.window_s)
        for (version_id, start), agg in pending.items():
            if 0 < agg.emb_n < cfg.min_sketch_count:
                # Too few embeddings to write their moments: keep them for this window's
                # next flush (or drop them once the window is over).
                if start == current:
                    carry = Agg()
                    carry.add_embeddings(agg.emb_n, agg.emb_sum, agg.emb_sq)
                    with self._lock:
                        self._pending.setdefault((version_id, start), Agg()).merge(carry)
                agg.emb_n, agg.emb_sum, agg.emb_sq = 0, [], []
        rows = [
            {
                "id": new_id(AGGREGATE_ID_PREFIX),
                "model_version_id": version_id,
                "window_start": start,
                "count": agg.count,
                "data": agg.to_json(),
                "created_at": now,
            }
            for (version_id, start), agg in pending.items()
            if not agg.empty
        ]
        if rows:
            session.execute(insert(MonitoringAggregate.__table__), rows)  # type: ignore[attr-defined]
        for version_id, start in pending:
            tick = time.monotonic()
            if tick - self._last_judged.get(version_id, -1e18) < cfg.judge_interval_s:
                continue
            self._last_judged[version_id] = tick
            try:
                # In a savepoint: a failed judgement never fails (or aborts) the request.
                with session.begin_nested():
                    drift.judge_drift(
                        session, monitor=self, model_version_id=version_id, window=start
                    )
            except Exception:  # pragma: no cover - judging never fails a prediction
                log.exception("drift judgement failed", extra={"model_version": version_id})
        return list(pending)


def _queue_row(
    batch: PredictionBatch, row: dict[str, Any], decision: RuleDecision
) -> dict[str, Any]:
    """The review-queue entry (``prediction_decisions``) of a non-final prediction."""
    return {
        "prediction_id": row["id"],
        "project_id": batch.info.project_id,
        "model_version_id": batch.info.id,
        "status": decision.status,
        "rules": list(decision.rules),
        "label": row["label"],
        "score_ppm": row["score_ppm"],
        "purpose": batch.purpose,
        "created_at": row["created_at"],
    }


# --- one monitor per runtime ---------------------------------------------------------------


class MonitorSlot:
    """The monitor of one runtime, made on first use.

    ``privet.runtime`` keeps one per Runtime and gives its ``observe`` to the inference
    service as the ``PredictionObserver``. The gateway makes the monitor first
    (``attach``), so that its metrics land in the gateway's registry (``/metrics``)."""

    def __init__(self, policy_engine: Any) -> None:
        self._policy_engine = policy_engine
        self._monitor: Monitor | None = None
        self._lock = threading.Lock()

    def attach(self, registry: CollectorRegistry | None = None) -> Monitor:
        """The monitor; made now, with ``registry`` for its metrics, if there is none."""
        found = self._monitor
        if found is not None:
            return found
        with self._lock:
            if self._monitor is None:
                self._monitor = Monitor(policy_engine=self._policy_engine, registry=registry)
            return self._monitor

    @property
    def monitor(self) -> Monitor:
        return self.attach()

    def observe(self, service: ObservedService, session: Session, batch: PredictionBatch) -> None:
        """The ``PredictionObserver`` (see ``Monitor.observe``)."""
        cfg = get_monitoring_settings()
        if not (cfg.enabled or cfg.decision_rules):
            return
        self.attach().observe(service, session, batch)


__all__ = [
    "FINAL",
    "Monitor",
    "MonitorSlot",
    "window_start",
]
