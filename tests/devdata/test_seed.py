"""`privet dev seed` writes a year of a bank's traffic through the real ledger path: the
live-database verifier (what `privet audit verify` runs) passes on the result, every kind
of event is there with its object index, and a database holding anything but seed data is
refused unless forced."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select
from sqlmodel import Session
from sqlmodel import select as sqlselect
from typer.testing import CliRunner

from privet import ledger
from privet.compliance.tables import DataSubjectRequest
from privet.config import clear_settings_caches
from privet.datasets.tables import DatasetVersion
from privet.db import create_db_engine, session_scope
from privet.devdata import SeedError, seed_ledger
from privet.inference.tables import Prediction
from privet.jobs.tables import TrainingJob
from privet.ledger.tables import LedgerCheckpoint, LedgerEntry, LedgerLeaf, LedgerLeafObject
from privet.ledger.verify import verify_ledger
from privet.models.tables import ModelVersion
from privet.reports.kinds.dsr_log import build_dsr_log
from privet.reports.kinds.model_lineage import build_model_lineage

SETUP = ("principal.created", "project.created", "member.added")
KINDS = {
    "auth.decision",
    "prediction.made",
    "dataset.created",
    "dataset.version.created",
    "training_job.submitted",
    "training_job.succeeded",
    "privacy_budget.charged",
    "model_version.registered",
    "model_version.approved",
    "dsr.received",
    "dsr.completed",
}


@pytest.fixture
def engine(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    monkeypatch.setenv("PRIVET_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PRIVET_DATABASE_URL", db_url)
    clear_settings_caches()
    eng = create_db_engine(db_url)
    yield eng
    eng.dispose()


def _verified(engine: Engine) -> int:
    with Session(engine) as session:
        report = verify_ledger(session=session)
    assert report.ok, report.message
    return report.entries_verified


def test_a_seeded_ledger_verifies_and_holds_a_banks_mix(engine: Engine) -> None:
    result = seed_ledger(engine=engine, events=300, batch=70)
    people = sum(result.by_type[t] for t in SETUP)
    assert people > 20  # the project, its people and their roles, made by the auth services
    assert result.events == 300 + 2 + people  # the traffic, the two brackets, the setup
    assert result.tree_size == result.checkpoint_size == result.events
    assert KINDS <= set(result.by_type)
    routine = result.by_type["auth.decision"] + result.by_type["prediction.made"]
    assert routine > 0.8 * result.events
    assert _verified(engine) == result.events
    leaves = LedgerLeaf.__table__  # type: ignore[attr-defined]
    objects = LedgerLeafObject.__table__  # type: ignore[attr-defined]
    with engine.connect() as conn:
        types = {
            str(t): int(n)
            for t, n in conn.execute(select(leaves.c.type, func.count()).group_by(leaves.c.type))
        }
        first, last = conn.execute(
            select(func.min(leaves.c.event_time), func.max(leaves.c.event_time)).where(
                leaves.c.type.not_like("dev.%")
            )
        ).one()
        kinds = set(conn.execute(select(objects.c.kind).distinct()).scalars())
        checkpoints = conn.execute(select(func.count()).select_from(LedgerCheckpoint)).scalar()
    assert types == result.by_type  # leaves indexed by the types the events carry
    assert last - first > timedelta(days=360)  # spread over the year, not stamped now
    assert {"prediction", "model_version", "data_subject_request", "training_job"} <= kinds
    assert checkpoints and checkpoints >= 1


def test_the_same_seed_writes_the_same_traffic(engine: Engine, tmp_path: Path) -> None:
    other = create_db_engine(f"sqlite:///{tmp_path / 'other.db'}")

    def traffic(eng: Engine) -> list[tuple[object, ...]]:
        """What the generator drew (the project's and people's ids are the services')."""
        entries = LedgerEntry.__table__  # type: ignore[attr-defined]
        with eng.connect() as conn:
            rows = conn.execute(select(entries.c.event).order_by(entries.c.id)).scalars()
            events = [json.loads(bytes(e)) for e in rows]
        return [
            (e["type"], e["time"], e["outcome"], e["objects"].get("prediction"), e["digests"])
            for e in events
            if e["type"] not in SETUP and not e["type"].startswith("dev.")
        ]

    try:
        seed_ledger(engine=engine, events=120, seed=7)
        seed_ledger(engine=other, events=120, seed=7)
        assert len(traffic(engine)) == 120
        assert traffic(engine) == traffic(other)
    finally:
        other.dispose()


def test_seeding_refuses_other_data_unless_forced(engine: Engine) -> None:
    first = seed_ledger(engine=engine, events=40)
    again = seed_ledger(engine=engine, events=40)  # seed data only: may be seeded again
    with session_scope(engine) as session:
        ledger.emit(session, type="project.created", actor="usr_someone", project="prj_real")
    with pytest.raises(SeedError, match=r"--force.*project\.created|project\.created.*--force"):
        seed_ledger(engine=engine, events=40)
    forced = seed_ledger(engine=engine, events=40, force=True)
    assert forced.tree_size == first.events + again.events + 1 + forced.events
    assert _verified(engine) == forced.tree_size


def test_privet_dev_seed_command(engine: Engine, db_url: str) -> None:
    from privet.cli import app

    runner = CliRunner()
    done = runner.invoke(app, ["dev", "seed", "--events", "60", "--database-url", db_url])
    assert done.exit_code == 0, done.output
    assert "events in" in done.output and "prediction.made" in done.output
    with session_scope(engine) as session:
        ledger.emit(session, type="project.created", actor="usr_someone", project="prj_real")
    refused = runner.invoke(app, ["dev", "seed", "--events", "60", "--database-url", db_url])
    assert refused.exit_code == 1
    assert "refusing to seed" in refused.output and "--force" in refused.output
    bad = runner.invoke(app, ["dev", "seed", "--events", "0", "--database-url", db_url])
    assert bad.exit_code == 1 and "events must be between 1" in bad.output


def _events(engine: Engine) -> list[dict[str, Any]]:
    entries = LedgerEntry.__table__  # type: ignore[attr-defined]
    with engine.connect() as conn:
        rows = conn.execute(select(entries.c.event).order_by(entries.c.id)).scalars()
        return [json.loads(bytes(e)) for e in rows]


def test_the_seed_writes_the_domain_rows_its_events_name(engine: Engine) -> None:
    """Every prediction, job, model version, dataset version and request the log names
    has its row, with the event's ids, digests and times; the reports that read those
    tables agree with the log."""
    result = seed_ledger(engine=engine, events=900, batch=130)
    events = _events(engine)

    def of(kind: str) -> list[dict[str, Any]]:
        return [e for e in events if e["type"] == kind]

    with Session(engine) as session:
        predictions = {p.id: p for p in session.exec(sqlselect(Prediction)).all()}
        versions = {v.id: v for v in session.exec(sqlselect(ModelVersion)).all()}
        jobs = {j.id: j for j in session.exec(sqlselect(TrainingJob)).all()}
        requests = {r.id: r for r in session.exec(sqlselect(DataSubjectRequest)).all()}
        datasets = {d.id: d for d in session.exec(sqlselect(DatasetVersion)).all()}
        made = of("prediction.made")
        assert len(predictions) == len(made) == result.rows["predictions"] > 300
        for e in made:
            p = predictions[e["objects"]["prediction"]]
            assert (p.model_version_id, p.input_digest, p.subject_digest, p.label) == (
                e["objects"]["model_version"],
                e["digests"]["input"],
                e["digests"].get("subject"),
                e["details"]["label"],
            )
            assert p.created_at.isoformat().replace("+00:00", "Z").startswith(e["time"][:19])
        registered = of("model_version.registered")
        assert len(versions) == len(jobs) == len(registered) >= 1
        for e in registered:
            v = versions[e["objects"]["model_version"]]
            assert f"sha256:{v.weights_sha256}" == e["digests"]["weights"]
            assert v.number == e["details"]["number"] and v.state == "approved"
            assert jobs[v.job_id].model_version_id == v.id
            assert jobs[v.job_id].dataset_version_id in datasets
        received = of("dsr.received")
        assert len(requests) == len(received) >= 1
        for e in received:
            r = requests[e["objects"]["data_subject_request"]]
            assert r.due_at.isoformat() == e["details"]["due_at"]
            assert r.subject_digest == e["digests"]["subject"]
        for e in of("dataset.version.created"):
            d = datasets[e["objects"]["dataset_version"]]
            assert (d.digest, d.number) == (e["digests"]["content"], e["details"]["number"])
        log = build_dsr_log(session, None, actor="usr_auditor")  # type: ignore[arg-type]
        assert dict(log.facts)["Requests"] == len(received)
        busiest = max(versions, key=lambda v: sum(e["objects"]["model_version"] == v for e in made))
        lineage = build_model_lineage(
            session,
            None,  # type: ignore[arg-type]
            actor="usr_auditor",
            model_version_id=busiest,
        )
        served = sum(e["objects"]["model_version"] == busiest for e in made)
        assert dict(lineage.facts)["Predictions served"] == served > 0
    assert _verified(engine) == result.events
