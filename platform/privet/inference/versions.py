"""Which model version a request means, whether it may serve now, and its weights.

Reads the registry's tables (``privet.models.tables``) directly: inference needs only a
few immutable facts of a version plus its current state. Lookups are cached per process
for at most ``state_ttl_s`` (≤ 2 s), so a version retired on one replica stops serving on
every replica within that time while a busy server asks the database about once a second
per version instead of once per request.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import or_
from sqlmodel import Session, col, select

from privet.crypto.context import SealedStorage
from privet.kit.errors import ConflictError, NotFoundError
from privet.kit.numbers import ascii_number
from privet.models.tables import Model, ModelVersion, ModelVersionState
from privet.models.weights import LoadedVersion, load_version


class VersionNotServingError(ConflictError):
    """The version exists but is not approved (candidate, retired, suspended)."""

    slug = "model-version-not-serving"
    title = "Model version not serving"


class VersionChangedError(VersionNotServingError):
    """The version stopped serving (retired, suspended) after the request was authorized,
    while its texts were being classified: nothing of the prediction was written."""

    def __init__(self, info: VersionInfo) -> None:
        super().__init__(
            f"model version {info.number} of {info.model_name!r} became {info.state} while "
            "the request was being classified: nothing was recorded; only approved "
            "versions serve",
            model_version=info.id,
            state=info.state,
        )
        self.info = info


@dataclass(frozen=True, slots=True)
class VersionInfo:
    """What inference needs to know about one model version (state as last read)."""

    id: str
    model_id: str
    model_name: str
    project_id: str
    number: int
    state: str
    submitted_by: str
    purposes: tuple[str, ...]
    label_names: tuple[str, ...]
    base_model: str
    weights_sha256: str
    weights_bytes: int

    @property
    def serving(self) -> bool:
        return self.state == ModelVersionState.approved.value


def _info(version: ModelVersion, model: Model) -> VersionInfo:
    return VersionInfo(
        id=version.id,
        model_id=model.id,
        model_name=model.name,
        project_id=version.project_id,
        number=version.number,
        state=version.state,
        submitted_by=version.submitted_by,
        purposes=tuple(version.purposes),
        label_names=tuple(version.label_names),
        base_model=version.base_model,
        weights_sha256=version.weights_sha256,
        weights_bytes=version.weights_bytes,
    )


SERVING = "serving"
"""The ``version`` key meaning "the version this model serves now" (newest approved)."""


def lookup_version(session: Session, *, project_id: str, model: str, version: str) -> VersionInfo:
    """Resolve ``model`` (name or id) and ``version`` (number, id, or ``SERVING``) in a
    project; NotFound for anything outside it (cross-project objects do not exist)."""
    model_row = session.exec(
        select(Model).where(
            col(Model.project_id) == project_id,
            or_(col(Model.name) == model, col(Model.id) == model),
        )
    ).first()
    if model_row is None:
        raise NotFoundError(f"model {model!r} does not exist in project {project_id!r}")
    query = select(ModelVersion).where(col(ModelVersion.model_id) == model_row.id)
    newest = col(ModelVersion.number).desc()
    if version == SERVING:
        # The newest approved version; without one, the newest version of any state, so
        # that the policy refuses it (and the refusal is logged) rather than a bare 409.
        approved = col(ModelVersion.state) == ModelVersionState.approved.value
        row = session.exec(query.where(approved).order_by(newest).limit(1)).first()
        if row is None:
            row = session.exec(query.order_by(newest).limit(1)).first()
    elif (number := ascii_number(version)) is not None:
        row = session.exec(query.where(col(ModelVersion.number) == number)).first()
    else:
        row = session.exec(query.where(col(ModelVersion.id) == version)).first()
    if row is None:
        raise NotFoundError(f"model {model_row.name!r} has no version {version!r}")
    return _info(row, model_row)


def state_of(session: Session, version_id: str) -> str | None:
    """The version's state now, read in ``session``'s transaction and held there: on
    PostgreSQL the row is share-locked (``FOR SHARE``) until it ends, so a concurrent
    retirement or suspension commits either before this read (and is seen) or after the
    transaction; SQLite's writing transactions hold the database's write lock already."""
    return session.exec(
        select(ModelVersion.state)
        .where(col(ModelVersion.id) == version_id)
        .with_for_update(read=True)
    ).first()


class VersionDirectory:
    """A per-process, briefly cached view of ``lookup_version`` (thread-safe)."""

    def __init__(self, ttl_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s = ttl_s
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: dict[tuple[str, str, str], tuple[float, VersionInfo]] = {}

    def get(self, session: Session, *, project_id: str, model: str, version: str) -> VersionInfo:
        key = (project_id, model, version)
        now = self._clock()
        with self._lock:
            hit = self._entries.get(key)
        if hit is not None and now - hit[0] < self.ttl_s:
            return hit[1]
        info = lookup_version(session, project_id=project_id, model=model, version=version)
        with self._lock:
            if len(self._entries) > 10_000:
                self._entries.clear()
            self._entries[key] = (now, info)
        return info

    def forget(self) -> None:
        with self._lock:
            self._entries.clear()


def load_weights(*, session: Session, runtime: SealedStorage, info: VersionInfo) -> LoadedVersion:
    """Decrypt a version's weights into memory (the registry checks their SHA-256).

    Any state loads: the caller has decided that this version may run (an approved one
    predicts; any version explains its own past predictions)."""
    return load_version(
        session,
        runtime=runtime,
        project_id=info.project_id,
        version_id=info.id,
        require_approved=False,
    )
