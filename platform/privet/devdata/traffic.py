"""A bank's audit traffic over a year, as the events the platform itself emits.

One project scores applications all day: almost every request is a prediction (its
authorization decision, then ``prediction.made``), with outcomes recorded later, a few
reads by reviewers and auditors, refusals, and now and then a data-subject request, a
new dataset version or a training job that ends in a registered, approved model version.
The events have the shapes the services give them (types, objects, digests, details), so
queries, reports and proofs see what they would see in production, and each episode adds
the domain rows the services would have written with its events (``privet.devdata.rows``:
same ids, digests and times). An episode is never cut short: near the end of the stream
one that does not fit is replaced by a one-event audit read. Everything is drawn from one
seeded generator: the same seed, size and start give the same events.
"""

from __future__ import annotations

import base64
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from privet.devdata.rows import DomainRows
from privet.ledger.emit import EventSpec

__all__ = ["DEFAULT_START", "RETRAIN_EVERY", "YEAR", "Actors", "BankTraffic"]

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
#: events per episode at most (an episode that does not fit the rest of the stream is not
#: started)
_LENGTH = {
    "predict": 2,
    "predict_denied": 1,
    "read": 1,
    "outcome": 2,
    "contest": 2,
    "dsr": 4,
    "dataset_version": 3,
    "training": 10,
    "audit": 1,
}
_PURPOSES = ("credit_decision", "fraud_screening")
#: how often the model is retrained (and a new version approved) in a large seed
RETRAIN_EVERY = timedelta(days=30)
#: how requests arrive (``privet.compliance.tables.Channel``)
_CHANNELS = ("email", "web_form", "letter")
_STEP = timedelta(milliseconds=3)
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
        self,
        *,
        total: int,
        seed: int = 0,
        start: datetime = DEFAULT_START,
        span: timedelta = YEAR,
        run: int = 0,
    ) -> None:
        """``run``: how many seeds the database already holds; a later run draws other
        ids (its rows must not collide with the earlier ones')."""
        self.total, self.start, self.span = total, start, span
        # made-up data, reproducible by design
        self.rng = random.Random(f"{seed}:{run}" if run else seed)  # noqa: S311
        self.actors = Actors.draw(self.rng)
        self.rows = DomainRows()
        self._at = start
        names, weights = zip(*_EPISODES, strict=True)
        self._names, self._cum = list(names), _cumulative(weights)

    def events(self) -> Iterator[tuple[datetime, EventSpec]]:
        """The year opens with a dataset version, the training and approval of the model
        that serves, and a data-subject request (so even a small seed has every kind of
        event); then requests come as the weights say, and the model is retrained on a
        calendar (``RETRAIN_EVERY``; less often in a small seed, so that training stays
        under ~1 % of its events): each version serves until the next is approved."""
        done, step = 0, self.span / max(self.total, 1)
        opening = ["dataset_version", "training", "dsr"]
        every = max(RETRAIN_EVERY, step * 1000)
        retrain = self.start + every
        while done < self.total:
            self._at = at = self.start + step * done
            if opening:
                episode = opening.pop(0)
            elif at >= retrain:
                episode, retrain = "training", retrain + every
            else:
                episode = self.rng.choices(self._names, cum_weights=self._cum)[0]
            if not self._fits(episode, self.total - done):
                episode = "audit"
            for k, spec in enumerate(getattr(self, f"_{episode}")()):
                yield at + _STEP * k, spec
                done += 1

    def _fits(self, episode: str, left: int) -> bool:
        """Whether ``episode`` fits in ``left`` events and has what it acts on."""
        a = self.actors
        if _LENGTH[episode] > left:
            return False
        if episode == "training":
            return bool(a.dataset_versions)
        return episode in ("dataset_version", "dsr", "audit") or bool(a.model_versions)

    def _time(self, k: int) -> datetime:
        """The time of the episode's ``k``-th event."""
        return self._at + _STEP * k

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
        self.rows.prediction(
            {
                "id": pid,
                "project_id": a.project,
                "model_id": a.model,
                "model_version_id": mv,
                "version_number": details["model_version"],
                "caller": caller,
                "purpose": details["purpose"],
                "input_digest": digests["input"],
                "subject_digest": digests.get("subject"),
                "label": details["label"],
                "score_ppm": details["score_ppm"],
                "human_reviewed": False,
                "created_at": self._time(1),
            }
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
        a = self.actors
        events = self._about_prediction(
            a.approvers,
            "prediction.review",
            "prediction.contested",
            {"channel": "customer_service"},
            digests={"reason": _digest(self.rng)},
        )
        if events[-1].type == "prediction.contested":
            self.rows.contest(
                ident=_token(self.rng, "prv"),
                prediction=(events[-1].objects or {})["prediction"],
                project=a.project,
                who=str(events[-1].actor),
                at=self._time(1),
            )
        return events

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
        """A request logged by a steward (received up to a few days before, now and then
        weeks before: late), acknowledged and answered in the same visit, as
        ``compliance.flows.carry_out`` does."""
        a, rng = self.actors, self.rng
        rid, who = _token(rng, "dsr"), rng.choice(a.stewards)
        kind = rng.choices(("access", "erasure", "objection"), weights=(6, 3, 1))[0]
        regime = rng.choice(("gdpr", "ccpa"))
        subject = {"subject": _digest(rng, "hmac-sha256")}
        waited = rng.randrange(0, 5) if rng.random() < 0.97 else rng.randrange(50, 70)
        times = [self._time(k) for k in (1, 2, 3)]
        row = self.rows.dsr(
            row={
                "id": rid,
                "type": kind,
                "regime": regime,
                "channel": rng.choice(_CHANNELS),
                "subject_digest": subject["subject"],
                "submitted_by": who,
                "outcome": f"{kind} request answered (seeded)",
                "result": {},
            },
            received=(times[0] - timedelta(days=waited)).date(),
            times=times,
        )

        def event(type_: str, **details: Any) -> EventSpec:
            return EventSpec(
                type=type_,
                actor=who,
                objects={"data_subject_request": rid},
                digests=subject,
                details={"request_type": kind, "regime": regime, **details},
            )

        due, ack_due = row["due_at"], row["acknowledge_due"]
        return [
            self._decision(who, "dsr.submit", "project", a.project),
            event(
                "dsr.received",
                channel=row["channel"],
                received_at=row["received_at"].isoformat(),
                due_at=due.isoformat(),
                acknowledge_due=ack_due.isoformat() if ack_due else None,
            ),
            event("dsr.acknowledged"),
            event("dsr.completed", on_time=times[2] <= due, summary={}),
        ]

    def _dataset_version(self) -> list[EventSpec]:
        a, rng = self.actors, self.rng
        ds, who, dsv = rng.choice(a.datasets), rng.choice(a.stewards), _token(rng, "dsv")
        first = ds not in a.created
        if first:
            a.created.add(ds)
            self.rows.dataset(ident=ds, project=a.project, who=who, at=self._time(1))
        a.dataset_versions.append(dsv)
        digests = {"content": _digest(rng), "source": _digest(rng)}
        details: dict[str, Any] = {
            "format": "csv",
            "row_count": rng.randrange(50_000, 2_000_000),
            "label_count": 3,
            "contains_personal_data": True,
            "pii_suspected": False,
            "data_categories": ["financial", "contact"],
            "purposes": list(_PURPOSES),
            "legal_basis": "contract",
            "retention_days": 2555,
        }
        details["number"] = self.rows.dataset_version(
            ident=dsv,
            dataset=ds,
            project=a.project,
            who=who,
            at=self._time(2 if first else 1),
            digests=digests,
            details=details,
        )
        created = EventSpec(
            type="dataset.version.created",
            actor=who,
            project=a.project,
            objects={"dataset": ds, "dataset_version": dsv},
            digests=digests,
            details=details,
        )
        if not first:
            return [self._decision(who, "dataset.new_version", "dataset", ds), created]
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
        weights = rng.randbytes(32).hex()
        if not a.model_versions:
            self.rows.model(ident=a.model, project=a.project, who=who, at=self._time(7))
        a.model_versions.append(mv)
        number = self.rows.training(
            {
                "id": job,
                "project_id": a.project,
                "dataset_version_id": dsv,
                "base_model": "minilm-l6",
                "purpose": _PURPOSES[0],
                "private": True,
                "target_epsilon": float(eps),
                "epsilon_reserved": float(eps),
                "submitted_by_id": who,
                "created_at": self._time(1),
                "started_at": self._time(4),
                "finished_at": self._time(6),
            },
            {
                "id": mv,
                "model_id": a.model,
                "project_id": a.project,
                "weights_sha256": weights,
                "created_at": self._time(7),
                "approved_at": self._time(9),
                "approved_by": approver,
                "policy_version": a.policy_version,
            },
        )
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
                digests={"weights": f"sha256:{weights}"},
                details={
                    "number": number,
                    "private": True,
                    "epsilon": eps,
                    "dataset_versions": [dsv],
                },
            ),
            self._decision(approver, "model_version.approve", "model_version", mv),
            EventSpec(
                type="model_version.approved",
                actor=approver,
                project=a.project,
                objects={"model": a.model, "model_version": mv},
                digests={"weights": f"sha256:{weights}"},
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
