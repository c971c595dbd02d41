"""The data-key registry: one random data key per object, stored only wrapped.

Rows hold the wrapped key and which master key version wrapped it, never a plaintext key.
Rotation rewraps rows without touching blobs; shredding deletes the wrapped key, which
makes every copy of the object's blobs (replicas, backups) undecryptable.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from sqlalchemy import func, update
from sqlmodel import Session, col, select

from privet.crypto.errors import (
    DataKeyDestroyedError,
    DataKeyExistsError,
    DataKeyNotFoundError,
    KeyUnavailableError,
    KeyVersionInUseError,
)
from privet.crypto.providers import KekVersion, KeyProvider, WrappedKey
from privet.crypto.refs import ObjectRef
from privet.crypto.stream import DATA_KEY_SIZE
from privet.crypto.tables import DataKey
from privet.kit.errors import ConflictError
from privet.kit.ids import new_id, utcnow

Progress = Callable[[int, int], None]
"""Called as progress(done, total) during long operations."""

_REPORT_LIMIT = 100


@dataclass(frozen=True, slots=True)
class DataKeyHandle:
    """A plaintext data key in memory, for one encryption or decryption; never stored."""

    key_id: str
    ref: ObjectRef
    key: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class RewrapFailure:
    ref: ObjectRef
    kek_id: str
    kek_version: int
    reason: str


@dataclass(frozen=True, slots=True)
class RewrapReport:
    """What a rotation did; `failed` lists data keys left as they were (never dropped)."""

    kek_id: str
    to_version: int
    rewrapped: int
    already_current: int
    failed: list[RewrapFailure]


@dataclass(frozen=True, slots=True)
class RetireReport:
    version: int
    retired: bool
    unreadable: list[ObjectRef]
    unreadable_count: int


@dataclass(frozen=True, slots=True)
class VersionUsage:
    version: int
    state: str
    data_keys: int
    objects: list[ObjectRef]


@dataclass(frozen=True, slots=True)
class KeyStatus:
    """Which master key versions exist and which objects' data keys each one wraps."""

    kek_id: str
    current_version: int
    versions: list[VersionUsage]
    unreadable: list[RewrapFailure]
    destroyed: int
    foreign_keks: dict[str, int]


_BATCH = 500
"""Objects per statement of `data_keys_of` (bound parameters stay well under any limit)."""


def _row(session: Session, ref: ObjectRef) -> DataKey:
    row = session.exec(
        select(DataKey).where(DataKey.object_kind == ref.kind, DataKey.object_id == ref.object_id)
    ).first()
    return _checked(row, ref)


def _checked(row: DataKey | None, ref: ObjectRef) -> DataKey:
    """``row`` when it is ``ref``'s data key; DataKeyNotFoundError otherwise."""
    if row is None:
        raise DataKeyNotFoundError(
            f"no data key for {ref.kind} {ref.object_id}", kind=ref.kind, object_id=ref.object_id
        )
    if row.project_id != ref.project_id:
        raise DataKeyNotFoundError(
            f"no data key for {ref.kind} {ref.object_id} in project {ref.project_id}",
            kind=ref.kind,
            object_id=ref.object_id,
        )
    return row


def create_data_key(*, session: Session, provider: KeyProvider, ref: ObjectRef) -> DataKeyHandle:
    """Generate the object's data key, store it wrapped, return it for encrypting now.

    The row is flushed in the caller's transaction: if that transaction rolls back, the
    key is gone and whatever was encrypted with it is unreadable, never half-registered.
    """
    exists = session.exec(
        select(DataKey.id).where(
            DataKey.object_kind == ref.kind, DataKey.object_id == ref.object_id
        )
    ).first()
    if exists is not None:
        raise DataKeyExistsError(
            f"{ref.kind} {ref.object_id} already has a data key", key_id=exists
        )
    key = os.urandom(DATA_KEY_SIZE)
    wrapped = provider.wrap(key)
    row = DataKey(
        id=new_id("dk"),
        object_kind=ref.kind,
        object_id=ref.object_id,
        project_id=ref.project_id,
        wrapped_key=wrapped.wrapped,
        kek_id=wrapped.kek_id,
        kek_version=wrapped.kek_version,
        created_at=utcnow(),
    )
    session.add(row)
    session.flush()
    return DataKeyHandle(key_id=row.id, ref=ref, key=key)


def get_data_key(*, session: Session, ref: ObjectRef) -> DataKey:
    """The registry row of an object's data key (wrapped; safe to show)."""
    return _row(session, ref)


def data_keys_of(session: Session, *, refs: Sequence[ObjectRef]) -> dict[ObjectRef, DataKey]:
    """The registry rows of many objects' data keys, one statement per 500 objects: a
    caller opening many objects (discovery scans every dataset version) reads their keys
    together, not one round trip each. Keyed by each row's own reference: an object
    without a key, or named with another project than its key's, is left out."""
    wanted = set(refs)
    found: dict[ObjectRef, DataKey] = {}
    for kind in sorted({r.kind for r in wanted}):
        ids = sorted({r.object_id for r in wanted if r.kind == kind})
        for start in range(0, len(ids), _BATCH):
            rows = session.exec(
                select(DataKey).where(
                    DataKey.object_kind == kind,
                    col(DataKey.object_id).in_(ids[start : start + _BATCH]),
                )
            ).all()
            found.update({row.ref: row for row in rows if row.ref in wanted})
    return found


def unwrap_data_key(*, session: Session, provider: KeyProvider, ref: ObjectRef) -> DataKeyHandle:
    """The object's plaintext data key; raises if shredded or its master key is retired."""
    return unwrap_key_row(provider=provider, ref=ref, row=_row(session, ref))


def unwrap_key_row(*, provider: KeyProvider, ref: ObjectRef, row: DataKey | None) -> DataKeyHandle:
    """`unwrap_data_key` of a row the caller read (`data_keys_of`; None: it has none), with
    the same checks and errors."""
    row = _checked(row, ref)
    if row.destroyed_at is not None or row.wrapped_key is None:
        raise DataKeyDestroyedError(
            f"{ref.kind} {ref.object_id} was erased (data key destroyed at "
            f"{row.destroyed_at.isoformat() if row.destroyed_at else 'unknown time'})",
            kind=ref.kind,
            object_id=ref.object_id,
        )
    key = provider.unwrap(WrappedKey(row.kek_id, row.kek_version, row.wrapped_key))
    return DataKeyHandle(key_id=row.id, ref=ref, key=key)


def shred(*, session: Session, ref: ObjectRef) -> DataKey:
    """Destroy the object's data key (crypto-shredding); idempotent.

    Copies of the wrapped key in database backups stay openable until the master key
    version that wrapped them is retired: rotate and retire to close that window.
    """
    row = _row(session, ref)
    if row.destroyed_at is not None:
        return row
    if session.get_bind().dialect.name == "sqlite":
        # Overwrite freed cells with zeros so the wrapped key does not linger in free pages.
        session.connection().exec_driver_sql("PRAGMA secure_delete=ON")
    row.wrapped_key = None
    row.destroyed_at = utcnow()
    session.add(row)
    session.flush()
    return row


def _versions(provider: KeyProvider) -> dict[int, KekVersion]:
    return {v.version: v for v in provider.list_versions()}


def rewrap(
    *,
    session: Session,
    provider: KeyProvider,
    to_version: int | None = None,
    batch_size: int = 500,
    progress: Progress | None = None,
) -> RewrapReport:
    """Rewrap every live data key under `to_version` (default: current) without touching data.

    Keys that cannot be unwrapped (their version retired, or another master key) are left
    exactly as they were and reported in `failed`. Each update is compare-and-set, so a
    key shredded meanwhile is never brought back.
    """
    target = to_version if to_version is not None else provider.current_version()
    live = col(DataKey.destroyed_at).is_(None)
    stale = live & ((DataKey.kek_id != provider.key_id) | (DataKey.kek_version != target))
    total = session.exec(select(func.count()).select_from(DataKey).where(stale)).one()
    current = session.exec(
        select(func.count())
        .select_from(DataKey)
        .where(live)
        .where(DataKey.kek_id == provider.key_id, DataKey.kek_version == target)
    ).one()
    done = rewrapped = 0
    failed: list[RewrapFailure] = []
    last_id = ""
    while True:
        rows = session.exec(
            select(DataKey)
            .where(stale, DataKey.id > last_id)
            .order_by(col(DataKey.id))
            .limit(batch_size)
        ).all()
        if not rows:
            break
        for row in rows:
            key_id, kek_id, kek_version, wrapped_key = (
                row.id,
                row.kek_id,
                row.kek_version,
                row.wrapped_key,
            )
            last_id = key_id
            ref = row.ref
            try:
                plain = provider.unwrap(WrappedKey(kek_id, kek_version, wrapped_key or b""))
                new = provider.wrap(plain, version=target)
            except KeyUnavailableError as exc:
                failed.append(RewrapFailure(ref, kek_id, kek_version, exc.detail))
            else:
                result = session.connection().execute(
                    update(DataKey)
                    .where(
                        col(DataKey.id) == key_id,
                        col(DataKey.destroyed_at).is_(None),
                        col(DataKey.kek_id) == kek_id,
                        col(DataKey.kek_version) == kek_version,
                    )
                    .values(wrapped_key=new.wrapped, kek_id=new.kek_id, kek_version=new.kek_version)
                )
                rewrapped += result.rowcount
            done += 1
            if progress is not None:
                progress(done, total)
        session.flush()
    session.expire_all()
    return RewrapReport(provider.key_id, target, rewrapped, current, failed)


def rotate(
    *, session: Session, provider: KeyProvider, progress: Progress | None = None
) -> RewrapReport:
    """Create a new master key version and rewrap every data key under it."""
    version = provider.create_version()
    return rewrap(session=session, provider=provider, to_version=version, progress=progress)


def _live_refs(session: Session, kek_id: str, version: int, limit: int) -> list[ObjectRef]:
    rows = session.exec(
        select(DataKey.object_kind, DataKey.object_id, DataKey.project_id)
        .where(col(DataKey.destroyed_at).is_(None))
        .where(DataKey.kek_id == kek_id, DataKey.kek_version == version)
        .order_by(col(DataKey.object_kind), col(DataKey.object_id))
        .limit(limit)
    ).all()
    return [ObjectRef(k, o, p) for k, o, p in rows]


def _live_count(session: Session, kek_id: str, version: int) -> int:
    return session.exec(
        select(func.count())
        .select_from(DataKey)
        .where(col(DataKey.destroyed_at).is_(None))
        .where(DataKey.kek_id == kek_id, DataKey.kek_version == version)
    ).one()


def retire(
    *, session: Session, provider: KeyProvider, version: int, force: bool = False
) -> RetireReport:
    """Retire (destroy) a master key version.

    Refused while live data keys are still wrapped by it, listing them; `force` retires
    anyway and reports the objects that thereby become unreadable.
    """
    if version == provider.current_version():
        raise ConflictError(
            f"version {version} is the current master key: rotate before retiring it",
            version=version,
        )
    count = _live_count(session, provider.key_id, version)
    refs = _live_refs(session, provider.key_id, version, _REPORT_LIMIT)
    if count and not force:
        raise KeyVersionInUseError(
            f"{count} data key(s) are still wrapped by master key version {version}: run "
            "`privet keys rotate` (or rewrap) first, or retire with --force to make those "
            "objects unreadable",
            version=version,
            count=count,
            objects=[f"{r.kind}/{r.object_id}@{r.project_id}" for r in refs],
        )
    provider.retire_version(version)
    return RetireReport(version=version, retired=True, unreadable=refs, unreadable_count=count)


def key_status(
    *, session: Session, provider: KeyProvider, objects_per_version: int = _REPORT_LIMIT
) -> KeyStatus:
    """Every master key version with the objects whose data keys it wraps.

    `unreadable` lists live data keys whose version is retired or unknown: objects that
    can no longer be decrypted, surfaced rather than silently lost.
    """
    versions = _versions(provider)
    counts = {
        (kek_id, version): n
        for kek_id, version, n in session.exec(
            select(DataKey.kek_id, DataKey.kek_version, func.count())
            .where(col(DataKey.destroyed_at).is_(None))
            .group_by(col(DataKey.kek_id), col(DataKey.kek_version))
        ).all()
    }
    destroyed = session.exec(
        select(func.count()).select_from(DataKey).where(col(DataKey.destroyed_at).isnot(None))
    ).one()
    usage: list[VersionUsage] = []
    unreadable: list[RewrapFailure] = []
    ours = sorted(set(versions) | {v for k, v in counts if k == provider.key_id})
    for version in ours:
        info = versions.get(version)
        state = info.state if info else "unknown"
        n = counts.get((provider.key_id, version), 0)
        refs = _live_refs(session, provider.key_id, version, objects_per_version) if n else []
        usage.append(VersionUsage(version, state, n, refs))
        if n and state != "active":
            unreadable.extend(
                RewrapFailure(r, provider.key_id, version, f"master key version {state}")
                for r in refs
            )
    foreign: dict[str, int] = {}
    for (kek_id, _version), n in counts.items():
        if kek_id != provider.key_id:
            foreign[kek_id] = foreign.get(kek_id, 0) + n
    active = [v for v, info in versions.items() if info.state == "active"]
    return KeyStatus(
        kek_id=provider.key_id,
        current_version=max(active) if active else 0,
        versions=usage,
        unreadable=unreadable,
        destroyed=destroyed,
        foreign_keks=foreign,
    )
