"""The domain rows of the seeded year: what the services would have written beside the
traffic's ledger events, with the same ids, digests, numbers and times.

The episodes of ``privet.devdata.traffic`` add rows here as they draw their events (a
dataset and its versions, training jobs and the model versions they registered, every
prediction, contests, data-subject requests); ``seed_ledger`` flushes them in the
transaction of the events that name them, a few statements per batch (one
``INSERT … SELECT FROM unnest`` or executemany per table), so the reports that read these
tables (model lineage, dsr-log) see the rows their events cite.

What is not there: no blob (a version's ``blob_key`` names none, so a seeded model cannot
serve and a seeded dataset cannot be read), no sealed subject id (requests look as after
their retention sweep), no privacy-budget rows, no erasure flags, no decision queue.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, update

from privet.compliance.deadlines import deadlines
from privet.compliance.tables import DataSubjectRequest
from privet.datasets.tables import Dataset, DatasetVersion, DatasetVersionUsage
from privet.inference.tables import Prediction, PredictionReview
from privet.jobs.tables import TrainingJob
from privet.ledger.emit import driver_insert_columns
from privet.models.tables import Model, ModelVersion

__all__ = ["MODEL_NAME", "DomainRows"]

MODEL_NAME = "credit-scoring"
LABELS = ["approve", "refer", "decline"]
_NO_BLOB = "seed:none"
#: tables in the order their foreign keys need
_ORDER: tuple[Any, ...] = (
    Dataset,
    DatasetVersion,
    Model,
    TrainingJob,
    ModelVersion,
    DatasetVersionUsage,
    Prediction,
    PredictionReview,
    DataSubjectRequest,
)
#: tables written column-wise through the driver (many rows, no JSON column)
_BULK = frozenset({"predictions"})
Row = dict[str, Any]


class DomainRows:
    """Rows waiting for the transaction of their events (``flush``)."""

    def __init__(self) -> None:
        self.pending: dict[str, list[Row]] = {t.__tablename__: [] for t in _ORDER}
        self.written: dict[str, int] = dict.fromkeys(self.pending, 0)
        self._latest: dict[str, tuple[Any, int]] = {}  # dataset or model id: (table, n)
        self._changed: set[str] = set()
        #: dataset version id: (dataset id, content digest, rows) for its jobs
        self.versions: dict[str, tuple[str, str, int]] = {}

    def _add(self, table: Any, row: Row) -> None:
        self.pending[table.__tablename__].append(row)

    def _bump(self, table: Any, ident: str) -> int:
        n = self._latest.get(ident, (table, 0))[1] + 1
        self._latest[ident] = (table, n)
        self._changed.add(ident)
        return n

    def dataset(self, *, ident: str, project: str, who: str, at: datetime) -> None:
        self._add(
            Dataset,
            {
                "id": ident,
                "project_id": project,
                "name": f"applications-{sum(t is Dataset for t, _n in self._latest.values()) + 1}",
                "description": "Credit applications with their decisions (seeded)",
                "created_at": at,
                "created_by": who,
                "latest_version": 0,
            },
        )
        self._latest[ident] = (Dataset, 0)

    def dataset_version(
        self,
        *,
        ident: str,
        dataset: str,
        project: str,
        who: str,
        at: datetime,
        digests: dict[str, str],
        details: dict[str, Any],
    ) -> int:
        """A version of ``dataset`` as its ``dataset.version.created`` event describes it;
        its number in the dataset."""
        number = self._bump(Dataset, dataset)
        rows, keep = int(details["row_count"]), int(details["retention_days"])
        counts = {"approve": rows * 7 // 10, "refer": rows // 5}
        counts["decline"] = rows - sum(counts.values())
        self.versions[ident] = (dataset, digests["content"], rows)
        declarations = {
            k: details[k]
            for k in ("contains_personal_data", "data_categories", "purposes", "legal_basis")
        }
        self._add(
            DatasetVersion,
            {
                "id": ident,
                "dataset_id": dataset,
                "project_id": project,
                "number": number,
                "format": details["format"],
                "digest": digests["content"],
                "source_sha256": digests["source"],
                "source_bytes": rows * 180,
                "row_count": rows,
                "label_counts": counts,
                "split": {"seed": 0, "validation": 0.1, "test": 0.1},
                "declarations": {
                    **declarations,
                    "retention_days": keep,
                    "privacy_budget": {"epsilon_total": 10.0, "delta": None},
                },
                "pii_scan": {"suspected": details["pii_suspected"], "columns": {}},
                "epsilon_total": 10.0,
                "delta": 1.0 / (10 * rows),
                "state": "active",
                "parent_version_id": None,
                "created_by": who,
                "blob_key": _NO_BLOB,
                "blob_sha256": digests["content"],
                "blob_bytes": rows * 190,
                "data_key_id": "",
                "created_at": at,
                "retention_until": at + timedelta(days=keep),
            },
        )
        return number

    def model(self, *, ident: str, project: str, who: str, at: datetime) -> None:
        self._add(
            Model,
            {
                "id": ident,
                "project_id": project,
                "name": MODEL_NAME,
                "created_at": at,
                "created_by": who,
                "latest_version": 0,
            },
        )
        self._latest[ident] = (Model, 0)

    def training(self, job: Row, version: Row) -> int:
        """A succeeded job and the version it registered (``job``: the job's own fields,
        ``version``: the version's), with the usage record of its dataset version; the
        version's number."""
        dsv = job["dataset_version_id"]
        dataset, digest, rows = self.versions[dsv]
        self._add(
            TrainingJob,
            {
                **job,
                "dataset_id": dataset,
                "dataset_digest": digest,
                "model_name": MODEL_NAME,
                "delta": 1.0 / (10 * rows),
                "params": {"epochs": 3, "batch_size": 256, "max_grad_norm": 1.0},
                "state": "succeeded",
                "submitted_by": f"User:{job['submitted_by_id']}",
                "progress": {},
                "result": {"model_version_id": version["id"]},
                "worker_id": "worker-1",
                "heartbeat_at": job["finished_at"],
                "model_version_id": version["id"],
            },
        )
        number = self._bump(Model, version["model_id"])
        lineage = {
            "training_job": job["id"],
            "dataset_versions": [dsv],
            "code_version": "seed",
            "policy_version": version.pop("policy_version"),
            "ledger_entry_id": None,
            "weights_sha256": version["weights_sha256"],
        }
        self._add(
            ModelVersion,
            {
                **version,
                "number": number,
                "state": "approved",
                "job_id": job["id"],
                "submitted_by": f"User:{job['submitted_by_id']}",
                "base_model": job["base_model"],
                "base_model_sha256": "0" * 64,
                "label_names": LABELS,
                "purposes": ["credit_decision", "fraud_screening"],
                "dataset_versions": [
                    {"id": dsv, "dataset_id": dataset, "digest": digest, "rows": rows}
                ],
                "private": True,
                "privacy": {"epsilon": float(job["target_epsilon"]), "delta": 1.0 / (10 * rows)},
                "metrics": {},
                "training": {"epochs": 3},
                "lineage": lineage,
                "weights_bytes": 90_000_000,
                "card": f"# {MODEL_NAME} v{number}\n\nSeeded development data.\n",
                "blob_key": _NO_BLOB,
                "data_key_id": "",
                "retired_at": None,
                "retired_by": None,
                "retire_reason": None,
            },
        )
        self._add(
            DatasetVersionUsage,
            {
                "dataset_version_id": dsv,
                "used_by_kind": "model_version",
                "used_by_id": version["id"],
                "created_at": version["created_at"],
            },
        )
        return number

    def prediction(self, row: Row) -> None:
        self._add(Prediction, row)

    def contest(self, *, ident: str, prediction: str, project: str, who: str, at: datetime) -> None:
        self._add(
            PredictionReview,
            {
                "id": ident,
                "prediction_id": prediction,
                "project_id": project,
                "kind": "contest",
                "decision": "pending",
                "label": None,
                "reason_sealed": None,
                "reason_shredded_at": None,
                "reviewer": who,
                "created_at": at,
            },
        )

    def dsr(self, *, row: Row, received: date, times: Sequence[datetime]) -> Row:
        """A request logged at ``times[0]`` (received on ``received``), acknowledged at
        ``times[1]`` and completed at ``times[2]``; its deadlines (the service's rules)."""
        ack_due, due = deadlines(row["regime"], received)
        received_at = datetime.combine(received, datetime.min.time(), tzinfo=times[0].tzinfo)
        full = {
            **row,
            "state": "completed",
            "sealed": None,
            "data_key_id": None,
            "purposes": [],
            "received_at": received_at,
            "acknowledge_due": ack_due,
            "acknowledged_at": times[1],
            "due_at": due,
            "completed_at": times[2],
            "retain_until": received_at + timedelta(days=730),
            "created_at": times[0],
        }
        self._add(DataSubjectRequest, full)
        return full

    def flush(self, conn: Connection) -> None:
        """Insert what is pending in ``conn``'s transaction (a few statements a table)."""
        for table in _ORDER:
            name = table.__tablename__
            rows = self.pending[name]
            if not rows:
                continue
            core = table.__table__
            if name in _BULK:
                driver_insert_columns(conn, core, {k: [r[k] for r in rows] for k in rows[0]})
            else:
                conn.execute(core.insert(), rows)
            self.written[name] += len(rows)
            rows.clear()
        for ident in sorted(self._changed):
            table, n = self._latest[ident]
            core = table.__table__
            conn.execute(update(core).where(core.c.id == ident).values(latest_version=n))
        self._changed.clear()
