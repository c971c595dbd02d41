"""What the jobs layer needs from the datasets domain, as a small port.

`DatasetSource` is the whole contract: a dataset version's declarations (for policy and
the budget), its rows decrypted *in memory* with their recorded split (for the worker),
and recording that a job or model version used it (for erasure reports). The default
implementation adapts `privet.datasets`; tests may install another.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from sqlmodel import Session, select

from privet.crypto.context import SealedStorage
from privet.db import get_in_project
from privet.kit.errors import NotFoundError
from privet.kit.process_state import ProcessRegistry

if TYPE_CHECKING:
    from privet.training.data import LabelledTexts


@dataclass(frozen=True)
class DatasetFacts:
    """A dataset version's declarations and identity, as admission and lineage need them."""

    version_id: str
    dataset_id: str
    project_id: str
    digest: str
    row_count: int
    contains_personal_data: bool
    categories: tuple[str, ...]
    purposes: tuple[str, ...]
    epsilon_total: float
    """The dataset's privacy budget: the smallest total any of its versions declared (the
    budget belongs to the dataset, not to this version)."""
    delta: float
    """This version's declared δ (each job's δ is at most this)."""
    active: bool = True
    name: str = ""
    train_rows: int | None = None
    """Rows in the recorded training split (δ must stay below 1/train_rows)."""
    train_label_counts: dict[str, int] | None = None
    """Training rows per label (the split record's, public metadata): the recipe's input."""
    validation_rows: int | None = None
    """Rows in the recorded validation split (model selection needs some)."""
    unlabelled: bool = False
    """Declared unlabelled: texts without labels, usable only as distillation input."""


@dataclass(frozen=True)
class DatasetSplits:
    """Decrypted rows of one version by their recorded split (kept in memory only); an
    unlabelled version's labels are all ``privet.datasets.split.NO_LABEL`` (empty)."""

    train: LabelledTexts
    validation: LabelledTexts | None
    test: LabelledTexts | None


class DatasetSource(Protocol):
    def facts(self, session: Session, *, project_id: str, version_id: str) -> DatasetFacts:
        """The version's facts, or NotFoundError when it is not in `project_id`."""
        ...

    def load(
        self, session: Session, runtime: SealedStorage, *, facts: DatasetFacts
    ) -> DatasetSplits:
        """The version's rows, decrypted in memory, by split."""
        ...

    def record_usage(
        self, session: Session, *, version_id: str, kind: str, used_by_id: str
    ) -> None:
        """Record that `kind`/`used_by_id` (a training job, a model version) used the version."""
        ...

    def lock_erased(self, session: Session, *, version_id: str) -> bool:
        """Lock the version's row for this transaction and say whether an erasure has
        shredded it (its rows, which a job may hold in memory, lost data subjects)."""
        ...


def _train_label_counts(split: Any, label_counts: Any) -> dict[str, int] | None:
    """Per-label training rows from the split record, else the version's label counts."""
    try:
        return {str(k): int(v["train"]) for k, v in split["label_counts"].items()}
    except (KeyError, TypeError, ValueError, AttributeError):
        pass
    try:
        return {str(k): int(v) for k, v in dict(label_counts).items()} or None
    except (TypeError, ValueError):
        return None


def _split_rows(split: Any, name: str = "train") -> int | None:
    try:
        return int(split["counts"][name])
    except (KeyError, TypeError, ValueError):
        return None


class PlatformDatasetSource:
    """`DatasetSource` over privet.datasets (tables and service)."""

    def facts(self, session: Session, *, project_id: str, version_id: str) -> DatasetFacts:
        from privet.datasets.tables import Dataset, DatasetVersion

        version = get_in_project(
            session, DatasetVersion, version_id, project_id=project_id, what="dataset version"
        )
        dataset = session.get(Dataset, version.dataset_id)
        decl: dict[str, Any] = dict(version.declarations or {})
        totals = session.exec(
            select(DatasetVersion.epsilon_total).where(
                DatasetVersion.dataset_id == version.dataset_id
            )
        ).all()
        return DatasetFacts(
            version_id=version.id,
            dataset_id=version.dataset_id,
            project_id=version.project_id,
            digest=version.digest,
            row_count=version.row_count,
            contains_personal_data=bool(decl.get("contains_personal_data", True)),
            categories=tuple(decl.get("data_categories", ())),
            purposes=tuple(decl.get("purposes", ())),
            epsilon_total=float(min([version.epsilon_total, *totals])),
            delta=float(version.delta),
            active=version.state == "active",
            name=dataset.name if dataset is not None else "",
            train_rows=_split_rows(version.split),
            validation_rows=_split_rows(version.split, "validation"),
            train_label_counts=_train_label_counts(version.split, version.label_counts),
            unlabelled=bool(decl.get("unlabelled", False)),
        )

    def load(
        self, session: Session, runtime: SealedStorage, *, facts: DatasetFacts
    ) -> DatasetSplits:
        from privet.datasets.rows import load_version_rows

        rows = load_version_rows(
            session,
            provider=runtime.key_provider,
            store=runtime.blobs,
            version_id=facts.version_id,
            project_id=facts.project_id,
        )

        from privet.training.data import LabelledTexts

        def part(name: str) -> LabelledTexts | None:
            idx = rows.indices(name)
            if not idx:
                return None
            return LabelledTexts([rows.texts[i] for i in idx], [rows.labels[i] for i in idx])

        train = part("train")
        if train is None:
            raise NotFoundError(f"dataset version {facts.version_id!r} has no training rows")
        return DatasetSplits(train=train, validation=part("validation"), test=part("test"))

    def record_usage(
        self, session: Session, *, version_id: str, kind: str, used_by_id: str
    ) -> None:
        from privet.datasets import usage

        usage.record_usage(
            session, dataset_version_id=version_id, used_by_kind=kind, used_by_id=used_by_id
        )

    def lock_erased(self, session: Session, *, version_id: str) -> bool:
        from privet.datasets import usage

        return usage.lock_erased(session, dataset_version_id=version_id)


_installed: ProcessRegistry[str, DatasetSource] = ProcessRegistry(
    "jobs.dataset_source",
    why="a test installs another dataset source for the whole process: admission, the "
    "worker and reference building each ask for it, some with no Runtime at hand",
)


def get_dataset_source() -> DatasetSource:
    installed = _installed.get("source")
    return installed if installed is not None else PlatformDatasetSource()


def set_dataset_source(source: DatasetSource | None) -> None:
    """Install another source (tests); None restores the platform's."""
    if source is None:
        _installed.pop("source")
    else:
        _installed.set("source", source)
