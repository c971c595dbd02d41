"""Monitoring's Prometheus metrics, and what judging needs of a monitor.

Drift and quality judgement (``drift``, ``quality``) update these metrics and read the
settings through ``Monitored``, so they need no import of ``hub`` (which calls them).
"""

from __future__ import annotations

from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge

from privet.monitoring.settings import MonitoringSettings


class Monitored(Protocol):
    """What judging needs of a ``hub.Monitor``: its settings and its metrics."""

    @property
    def config(self) -> MonitoringSettings: ...

    @property
    def metrics(self) -> MonitoringMetrics: ...


class MonitoringMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.decisions = Counter(
            "privet_monitoring_decisions",
            "Predictions by decision status (final, pending_review, refer).",
            ["model_version", "status"],
            registry=registry,
        )
        self.drift = Gauge(
            "privet_monitoring_drift_score",
            "Drift of the latest judged window against the validation-time reference "
            "(label_js: Jensen-Shannon; *_psi: population stability index; "
            "embedding_shift: mean standardised shift).",
            ["model_version", "feature"],
            registry=registry,
        )
        self.threshold = Gauge(
            "privet_monitoring_drift_threshold",
            "The threshold each drift feature is judged against.",
            ["feature"],
            registry=registry,
        )
        self.quality = Gauge(
            "privet_monitoring_quality",
            "Live quality of the latest window with outcomes (accuracy, macro_f1, ece).",
            ["model_version", "metric"],
            registry=registry,
        )
        self.reference_quality = Gauge(
            "privet_monitoring_reference_quality",
            "Quality of the version at approval (validation).",
            ["model_version", "metric"],
            registry=registry,
        )
        self.alerts = Counter(
            "privet_monitoring_alerts",
            "Thresholds crossed (drift or quality), once per version, window and feature.",
            ["model_version", "feature"],
            registry=registry,
        )
        self.suspensions = Counter(
            "privet_monitoring_suspensions",
            "Versions suspended automatically for low live quality.",
            ["model_version"],
            registry=registry,
        )
        self.outcomes = Counter(
            "privet_monitoring_outcomes",
            "Outcomes (true labels) recorded, by whether the prediction was right.",
            ["model_version", "correct"],
            registry=registry,
        )
