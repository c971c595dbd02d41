"""A bank's audit traffic over a year, as the events the platform itself emits.

One project scores applications all day: almost every request is a prediction (its
authorization decision, then ``prediction.made``), with outcomes recorded later, a few
reads by reviewers and auditors, refusals, and now and then a data-subject request, a
new dataset version or a training job that ends in a registered, approved model version.
The events have the shapes the services give them (types, objects, digests, details), so
queries, reports and proofs see what they would see in production. Everything is drawn
from one seeded generator: the same seed, size and start give the same events.
"""

from __future__ import annotations

import base64
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from privet.ledger.emit import EventSpec

__all__ = ["DEFAULT_START", "YEAR", "Actors", "BankTraffic"]

DEFAULT_START = datetime(2026, 1, 1, tzinfo=UTC)
YEAR = timedelta(days=365)

#: (episode, weight): how often each kind of request happens (per request, not event).
_EPISODES: tuple[tuple[str, float], ...] = (
    ("predict", 0.885),
    ("predict_denied", 0.006),
    ("read", 0.07),
    ("outcome", 0.03),
    ("contest", 0.002),
    ("dsr", 0.004),
    ("dataset_version", 0.0006),
    ("training", 0.0012),
    ("audit", 0.0012),
)
_READS = (
    ("model_version.read", "model_version"),
    ("dataset.read", "dataset"),
    ("training_job.read", "training_job"),
    ("review_queue.read", "project"),
    ("monitoring.read", "model_version"),
    ("report.access_log.read", "project"),
    ("report.model_lineage.read", "model_version"),
)
_PURPOSES = ("credit_decision", "fraud_screening")
_LABELS = ("approve", "refer", "decline")


def _token(rng: random.Random, prefix: str) -> str:
    """An id shaped like ``privet.kit.ids.new_id``'s (16 URL-safe characters)."""
    return f"{prefix}_{base64.urlsafe_b64encode(rng.randbytes(12)).decode()}"


def _digest(rng: random.Random, kind: str = "sha256") -> str:
    return f"{kind}:{rng.randbytes(32).hex()}"


@dataclass
class Actors:
    """The people and applications of the bank's project, and what they work on."""

    project: str
    predictors: list[str]
    engineers: list[str]
    stewards: list[str]
    approvers: list[str]
    auditors: list[str]
    datasets: list[str]
    dataset_versions: list[str] = field(default_factory=list)
    model: str = ""
    model_versions: list[str] = field(default_factory=list)
    jobs: list[str] = field(default_factory=list)
    predictions: list[str] = field(default_factory=list)
    policy_version: str = ""
    #: datasets whose ``dataset.created`` event was written
    created: set[str] = field(default_factory=set)

    @classmethod
    def draw(cls, rng: random.Random) -> Actors:
        def many(prefix: str, n: int) -> list[str]:
            return [_token(rng, prefix) for _ in range(n)]

        actors = cls(
            project=_token(rng, "prj"),
            predictors=many("sa", 4),
            engineers=many("usr", 6),
            stewards=many("usr", 3),
            approvers=many("usr", 2),
            auditors=many("usr", 2),
            datasets=many("ds", 3),
            model=_token(rng, "mdl"),
            policy_version=rng.randbytes(8).hex(),
        )
        return actors


class BankTraffic:
    """``events()``: exactly ``total`` (time, event) pairs, in time order over ``span``."""

    def __init__(
        self, *, total: int, seed: int = 0, start: datetime = DEFAULT_START, span: timedelta = YEAR
    ) -> None:
        self.total, self.start, self.span = total, start, span
        self.rng = random.Random(seed)  # noqa: S311 -- made-up data, reproducible by design
        self.actors = Actors.draw(self.rng)
        names, weights = zip(*_EPISODES, strict=True)
        self._names, self._cum = list(names), _cumulative(weights)

    def events(self) -> Iterator[tuple[datetime, EventSpec]]:
        """The year opens with a dataset version, the training and approval of the model
        that serves, and a data-subject request (so even a small seed has every kind of
        event); then requests come as the weights say."""
        done, step = 0, self.span / max(self.total, 1)
        opening = ["dataset_version", "training", "dsr"]
        while done < self.total:
            at = self.start + step * done
            episode = (
                opening.pop(0)
                if opening
                else self.rng.choices(self._names, cum_weights=self._cum)[0]
            )
            for k, spec in enumerate(getattr(self, f"_{episode}")()):
                if done == self.total:
                    return
                yield at + timedelta(milliseconds=3 * k), spec
                done += 1

    # -- episodes: the events one request (or one piece of work) leaves ------------------

    def _decision(
        self, actor: str, action: str, kind: str, obj: str, allow: bool = True
    ) -> EventSpec:
        a = self.actors
        return EventSpec(
            type="auth.decision",
            actor=actor,
            project=a.project,
            objects={kind: obj},
            outcome="allow" if allow else "deny",
            details={
                "action": action,
                "policies": [f"role.{action.split('.')[0]}"] if allow else [],
                "policy_version": a.policy_version,
            },
        )

    def _predict(self) -> list[EventSpec]:
        a, rng = self.actors, self.rng
        caller, mv = rng.choice(a.predictors), a.model_versions[-1]
        pid = _token(rng, "prd")
        a.predictions.append(pid)
        if len(a.predictions) > 4096:  # outcomes and contests name recent predictions
            del a.predictions[:2048]
        digests = {"input": _digest(rng, "hmac-sha256")}
        if rng.random() < 0.8:
            digests["subject"] = _digest(rng, "hmac-sha256")
        details: dict[str, Any] = {
            "purpose": rng.choice(_PURPOSES),
            "label": rng.choices(_LABELS, weights=(70, 20, 10))[0],
            "score_ppm": rng.randrange(500_000, 1_000_000),
            "model_version": len(a.model_versions),
            "human_reviewed": False,
        }
        made = EventSpec(
            type="prediction.made",
            actor=caller,
            project=a.project,
            objects={"prediction": pid, "model_version": mv, "model": a.model},
            digests=digests,
            details=details,
        )
        return [self._decision(caller, "model_version.predict", "model_version", mv), made]

    def _predict_denied(self) -> list[EventSpec]:
        a = self.actors
        who = self.rng.choice(a.predictors + a.engineers)
        mv = a.model_versions[-1]
        return [self._decision(who, "model_version.predict", "model_version", mv, allow=False)]

    def _read(self) -> list[EventSpec]:
        a, rng = self.actors, self.rng
        action, kind = rng.choice(_READS)
        obj = {
            "model_version": a.model_versions[-1],
            "dataset": rng.choice(a.datasets),
            "training_job": a.jobs[-1],
            "project": a.project,
        }[kind]
        who = rng.choice(a.engineers + a.approvers + a.auditors)
        return [self._decision(who, action, kind, obj, allow=rng.random() > 0.02)]

    def _outcome(self) -> list[EventSpec]:
        rng = self.rng
        details = {"outcome": rng.choice(_LABELS), "matches": rng.random() < 0.9}
        return self._about_prediction(
            self.actors.predictors, "prediction.outcome", "prediction.outcome_recorded", details
        )

    def _contest(self) -> list[EventSpec]:
        return self._about_prediction(
            self.actors.approvers,
            "prediction.review",
            "prediction.contested",
            {"channel": "customer_service"},
            digests={"reason": _digest(self.rng)},
        )

    def _about_prediction(
        self,
        people: list[str],
        action: str,
        type_: str,
        details: dict[str, Any],
        digests: dict[str, str] | None = None,
    ) -> list[EventSpec]:
        """A later request about a recent prediction: its decision, then its event."""
        a, rng = self.actors, self.rng
        if not a.predictions:
            return self._predict()
        pid, who = rng.choice(a.predictions), rng.choice(people)
        on = {"prediction": pid, "model_version": a.model_versions[-1]}
        return [
            self._decision(who, action, "prediction", pid),
            EventSpec(type_, who, a.project, on, digests, details=details),
        ]

    def _dsr(self) -> list[EventSpec]:
        a, rng = self.actors, self.rng
        rid, who = _token(rng, "dsr"), rng.choice(a.stewards)
        kind = rng.choices(("access", "erasure", "objection"), weights=(6, 3, 1))[0]
        regime = rng.choice(("gdpr", "ccpa"))
        subject = {"subject": _digest(rng, "hmac-sha256")}

        def event(type_: str, **details: Any) -> EventSpec:
            return EventSpec(
                type=type_,
                actor=who,
                objects={"data_subject_request": rid},
                digests=subject,
                details={"request_type": kind, "regime": regime, **details},
            )

        return [
            self._decision(who, "dsr.submit", "project", a.project),
            event("dsr.received", channel=rng.choice(("email", "web", "post"))),
            event("dsr.acknowledged"),
            event("dsr.completed", on_time=rng.random() < 0.97),
        ]

    def _dataset_version(self) -> list[EventSpec]:
        a, rng = self.actors, self.rng
        ds, who, dsv = rng.choice(a.datasets), rng.choice(a.stewards), _token(rng, "dsv")
        a.dataset_versions.append(dsv)
        created = EventSpec(
            type="dataset.version.created",
            actor=who,
            project=a.project,
            objects={"dataset": ds, "dataset_version": dsv},
            digests={"content": _digest(rng), "source": _digest(rng)},
            details={
                "number": len(a.dataset_versions),
                "format": "csv",
                "row_count": rng.randrange(50_000, 2_000_000),
                "label_count": 3,
                "contains_personal_data": True,
                "pii_suspected": False,
                "data_categories": ["financial", "contact"],
                "purposes": list(_PURPOSES),
                "legal_basis": "contract",
                "retention_days": 2555,
            },
        )
        if ds in a.created:
            return [self._decision(who, "dataset.new_version", "dataset", ds), created]
        a.created.add(ds)
        return [
            self._decision(who, "dataset.upload", "project", a.project),
            EventSpec("dataset.created", who, a.project, {"dataset": ds}),
            created,
        ]

    def _training(self) -> list[EventSpec]:
        a, rng = self.actors, self.rng
        job, dsv, who = _token(rng, "job"), a.dataset_versions[-1], rng.choice(a.engineers)
        a.jobs.append(job)
        eps = f"{rng.choice((1, 2, 3, 4))}"
        on = {"training_job": job, "dataset_version": dsv}

        def event(type_: str, actor: str | None = None, **details: Any) -> EventSpec:
            return EventSpec(type_, actor, a.project, on, details=details)

        mv, approver = _token(rng, "mv"), rng.choice(a.approvers)
        a.model_versions.append(mv)
        return [
            self._decision(who, "training_job.submit", "project", a.project),
            event("training_job.submitted", who, base_model="minilm-l6", target_epsilon=eps),
            event("privacy_budget.reserved", who, epsilon=eps),
            event("training_job.admitted", who),
            event("training_job.started", worker="worker-1", epsilon_charged=eps),
            event("privacy_budget.charged", epsilon=eps),
            event("training_job.succeeded", error=None),
            EventSpec(
                type="model_version.registered",
                actor=None,
                project=a.project,
                objects={"model": a.model, "model_version": mv, "training_job": job},
                digests={"weights": _digest(rng)},
                details={"number": len(a.model_versions), "private": True, "epsilon": eps},
            ),
            self._decision(approver, "model_version.approve", "model_version", mv),
            EventSpec(
                type="model_version.approved",
                actor=approver,
                project=a.project,
                objects={"model": a.model, "model_version": mv},
                digests={"weights": _digest(rng)},
            ),
        ]

    def _audit(self) -> list[EventSpec]:
        a, rng = self.actors, self.rng
        who = rng.choice(a.auditors)
        action = rng.choice(("audit.events.read", "audit.export", "report.dsr_log.read"))
        return [self._decision(who, action, "project", a.project)]


def _cumulative(weights: tuple[float, ...]) -> list[float]:
    out, total = [], 0.0
    for w in weights:
        total += w
        out.append(total)
    return out
