"""The sequencer: integrates committed ledger entries into the Merkle tree, one at a time.

Writers only insert rows into ``ledger_entries`` (in their own transactions). A
sequencer pass, run by whichever process gets the lock, does in ONE transaction:

1. take the sequencer lock: ``pg_advisory_xact_lock`` on PostgreSQL; on SQLite the
   database write lock that ``BEGIN IMMEDIATE`` takes;
2. read the latest tree state (size n, root, floor);
3. select committed entries above the floor (SQLite: ``id > floor``; PostgreSQL:
   ``xid >= floor_xid``) that have no leaf yet, in id order, at most ``batch_size``;
4. give them leaf indexes n, n+1, ... (dense), hash them, write leaves, the perfect-subtree
   nodes they complete and a new tree-state row;
5. sign a checkpoint if due (every N events or T seconds), after checking it is
   consistent with the previous checkpoint;
6. commit; then publish the checkpoint to the sinks.

Because the lock serializes passes and the leaf index is the primary key and the entry
id is unique in ``ledger_leaves``, two passes can never assign the same index (fork) or
integrate an entry twice; indexes are always n, n+1, ... (no gaps). An entry id that
commits late (lower than ids already integrated) is still picked up by step 3, which
looks at everything above the *floor*. The floor is the largest entry id below which
every id is integrated or will never exist:

- SQLite: writers hold the write lock for their whole transaction, so under the
  sequencer's own write lock every allocated id is committed or gone: floor = the last
  id integrated.
- PostgreSQL: ids come from a sequence outside transactions, so entry ids are not
  committed in id order, and a missing id may be a rollback (a permanent gap) or a
  transaction still running (a late commit). The floor is therefore not an entry id but a
  transaction id: migration 0002 stores in every entry the inserting transaction's
  top-level xid (``ledger_entries.xid``, xid8). A pass first reads the xmin X of a fresh
  snapshot (every transaction with an xid below X has ended: committed, hence visible to
  any later snapshot, or rolled back, hence never visible), then scans every entry with
  ``xid >= floor`` that has no leaf. After a pass that saw all of them, every entry with
  ``xid < X`` is integrated or will never exist: the floor moves to X. Entries of
  transactions still running have xids >= X, so they stay in the scan until they commit
  or roll back, whatever their entry ids. Integration never waits for the floor.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, insert, select, text

from privet.config import Settings, get_settings
from privet.db import is_sqlite
from privet.kit.ids import utcnow
from privet.ledger.emit import driver_insert_columns, ledger_write_lock, on_commit_with_events
from privet.ledger.settings import LedgerSettings, get_ledger_settings
from privet.ledger.signer import load_signer
from privet.ledger.sinks import CheckpointSink, FileCheckpointSink
from privet.ledger.tables import (
    LedgerCheckpoint,
    LedgerLeaf,
    LedgerLeafObject,
    LedgerNode,
    LedgerTreeState,
)
from privet_audit.checkpoint import (
    Checkpoint,
    NoteError,
    Signer,
    Verifier,
    open_checkpoint,
    sign_checkpoint,
)
from privet_audit.merkle import (
    EMPTY_ROOT,
    CompactRange,
    ConsistencyError,
    consistency_proof,
    verify_consistency,
)

__all__ = [
    "Ledger",
    "LedgerIntegrityError",
    "LedgerSequencer",
    "PassResult",
    "TreeHead",
    "get_ledger",
    "integrate_now",
    "start_sequencer",
    "stop_sequencer",
]

log = logging.getLogger(__name__)

_leaves = LedgerLeaf.__table__  # type: ignore[attr-defined]
_leaf_objects = LedgerLeafObject.__table__  # type: ignore[attr-defined]
_nodes = LedgerNode.__table__  # type: ignore[attr-defined]
_states = LedgerTreeState.__table__  # type: ignore[attr-defined]
_checkpoints = LedgerCheckpoint.__table__  # type: ignore[attr-defined]

#: pg_advisory_xact_lock key of the sequencer ("privet.l" as a big-endian int64).
SEQUENCER_LOCK_KEY = int.from_bytes(b"privet.l", "big") & 0x7FFF_FFFF_FFFF_FFFF

_PENDING_SQL = text(
    "SELECT e.id, e.event, e.created_at FROM ledger_entries e WHERE e.id > :floor "
    "AND NOT EXISTS (SELECT 1 FROM ledger_leaves l WHERE l.entry_id = e.id) "
    "ORDER BY e.id LIMIT :limit"
)

#: PostgreSQL: every transaction with an xid below this has ended (committed or rolled
#: back); a statement run after it sees every one of them that committed.
_XMIN_SQL = text("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint")

_PENDING_PG_SQL = text(
    "SELECT e.id, e.event, e.created_at FROM ledger_entries e "
    "WHERE e.xid >= CAST(CAST(:floor_xid AS text) AS xid8) "
    "AND NOT EXISTS (SELECT 1 FROM ledger_leaves l WHERE l.entry_id = e.id) "
    "ORDER BY e.id LIMIT :limit"
)

#: PostgreSQL: does any entry have an xid in [floor, xmin) (else moving the floor is moot)?
_WINDOW_PG_SQL = text(
    "SELECT EXISTS (SELECT 1 FROM ledger_entries e "
    "WHERE e.xid >= CAST(CAST(:lo AS text) AS xid8) AND e.xid < CAST(CAST(:hi AS text) AS xid8))"
)


class LedgerIntegrityError(RuntimeError):
    """The stored tree disagrees with itself or with the previous checkpoint: the
    sequencer refuses to extend or sign it. Needs an operator (run `privet audit verify`)."""


@dataclass(frozen=True)
class TreeHead:
    """The integrated tree: size and root, and the latest signed checkpoint."""

    size: int
    root: bytes
    checkpoint_size: int
    checkpoint_note: str | None


@dataclass
class PassResult:
    integrated: int = 0
    size: int = 0
    more: bool = False
    busy: bool = False
    checkpoint: tuple[int, str] | None = None


@dataclass
class _State:
    size: int
    root: bytes
    floor: int
    floor_xid: int


def _node_reader(
    conn: Connection, overlay: dict[tuple[int, int], bytes] | None = None
) -> Callable[[int, int], bytes]:
    """``node(level, index)`` over the stored tree (level 0: leaf hashes)."""

    def node(level: int, index: int) -> bytes:
        if overlay is not None:
            hit = overlay.get((level, index))
            if hit is not None:
                return hit
        if level == 0:
            value = conn.execute(
                select(_leaves.c.leaf_hash).where(_leaves.c.idx == index)
            ).scalar_one_or_none()
        else:
            value = conn.execute(
                select(_nodes.c.hash).where(_nodes.c.level == level, _nodes.c.idx == index)
            ).scalar_one_or_none()
        if value is None:
            raise LedgerIntegrityError(f"tree node (level {level}, index {index}) is missing")
        return bytes(value)

    return node


def _parse_time(value: Any, fallback: datetime) -> datetime:
    if isinstance(value, str):
        try:
            if len(value) == 27 and value[10] == "T" and value[19] == "." and value[-1] == "Z":
                # the canonical form (format_time): fromisoformat is ~30x faster than
                # strptime, and reads the "Z" as UTC itself (no replace)
                return datetime.fromisoformat(value)
            return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
        except ValueError:
            pass
    return fallback


_sha256 = hashlib.sha256
_json_decode = json.JSONDecoder().decode
_NOT_AN_OBJECT: dict[str, Any] = {}


def _decode_event(data: bytes) -> dict[str, Any]:
    """The entry's JSON object, or an empty dict if it is not one (what ``json.loads(data)``
    gives, without its encoding detection for the usual UTF-8 entry; anything else takes
    ``json.loads`` itself). Only read, never modified."""
    try:
        ev = _json_decode(data.decode("utf-8"))
    except ValueError:
        try:
            ev = json.loads(data)
        except ValueError:
            return _NOT_AN_OBJECT
    return ev if isinstance(ev, dict) else _NOT_AN_OBJECT


@dataclass
class Ledger:
    """Everything a sequencer pass needs: engine, settings, signer and sinks.

    Cheap to use repeatedly; keeps the compact range of the tree between passes.
    """

    engine: Engine
    settings: Settings = field(default_factory=get_settings)
    ledger_settings: LedgerSettings = field(default_factory=get_ledger_settings)
    sinks: list[CheckpointSink] | None = None
    _signer: Signer | None = field(default=None, init=False, repr=False)
    _range: CompactRange | None = field(default=None, init=False, repr=False)
    _range_root: bytes = field(default=b"", init=False, repr=False)
    _last_cp: tuple[int, bytes, datetime] | None = field(default=None, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.sinks is None:
            self.sinks = [FileCheckpointSink(self.checkpoint_log_path)]

    # -- configuration ---------------------------------------------------------------

    @property
    def origin(self) -> str:
        return self.ledger_settings.origin

    @property
    def checkpoint_log_path(self) -> Path:
        return self.settings.home / self.ledger_settings.checkpoint_log

    @property
    def signer(self) -> Signer:
        if self._signer is None:
            self._signer = load_signer(
                self.settings.secrets_dir, self.ledger_settings.signing_key_file, self.origin
            )
        return self._signer

    @property
    def verifier(self) -> Verifier:
        return self.signer.verifier

    @property
    def is_sqlite(self) -> bool:
        return is_sqlite(self.engine)

    # -- state -----------------------------------------------------------------------

    def _read_state(self, conn: Connection) -> _State:
        row = conn.execute(
            select(
                _states.c.tree_size,
                _states.c.root_hash,
                _states.c.floor_entry_id,
                _states.c.floor_xid,
            )
            .order_by(_states.c.id.desc())
            .limit(1)
        ).first()
        if row is None:
            return _State(0, EMPTY_ROOT, 0, 0)
        return _State(int(row[0]), bytes(row[1]), int(row[2]), int(row[3] or 0))

    def _compact_range(self, conn: Connection, state: _State) -> CompactRange:
        cached = self._range
        if cached is not None and cached.size == state.size and self._range_root == state.root:
            return CompactRange(size=cached.size, hashes=list(cached.hashes))
        rng = CompactRange.from_nodes(state.size, _node_reader(conn))
        if rng.root() != state.root:
            raise LedgerIntegrityError(
                f"stored tree nodes give root {rng.root().hex()} for size {state.size}, but "
                f"the tree state says {state.root.hex()}"
            )
        return rng

    def _last_checkpoint(self, conn: Connection) -> tuple[int, bytes, datetime, str | None]:
        row = conn.execute(
            select(_checkpoints.c.tree_size, _checkpoints.c.note, _checkpoints.c.created_at)
            .order_by(_checkpoints.c.tree_size.desc())
            .limit(1)
        ).first()
        if row is None:
            return 0, EMPTY_ROOT, datetime.fromtimestamp(0, UTC), None
        try:
            cp = open_checkpoint(row[1], self.verifier, origin=self.origin)
        except NoteError as exc:
            raise LedgerIntegrityError(
                f"the latest stored checkpoint (size {row[0]}) does not verify: {exc}"
            ) from exc
        if cp.size != int(row[0]):
            raise LedgerIntegrityError(
                f"checkpoint row says size {row[0]} but its note says {cp.size}"
            )
        created = row[2] if row[2].tzinfo else row[2].replace(tzinfo=UTC)
        return cp.size, cp.root, created, row[1]

    # -- the pass ----------------------------------------------------------------------

    def _lock_sequencer(self, conn: Connection, wait: bool) -> bool:
        if not self.is_sqlite:
            if wait:
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": SEQUENCER_LOCK_KEY})
                return True
            got = conn.execute(
                text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": SEQUENCER_LOCK_KEY}
            ).scalar_one()
            return bool(got)
        # SQLite: BEGIN IMMEDIATE (privet.db) already holds the database write lock.
        return True

    def integrate_pass(self, *, force_checkpoint: bool = False, wait: bool = True) -> PassResult:
        """One sequencer pass in one transaction (see the module docstring).

        With ``wait=False`` (the background integrator) a pass that finds another
        process's sequencer running returns at once with ``busy=True``.
        """
        with self._lock, ledger_write_lock(self.engine):
            try:
                return self._integrate_pass(force_checkpoint, wait)
            except BaseException:
                self._range = None
                self._last_cp = None
                raise

    def _integrate_pass(self, force_checkpoint: bool, wait: bool) -> PassResult:
        ls = self.ledger_settings
        result = PassResult()
        published: tuple[int, str] | None = None
        with self.engine.begin() as conn:
            if not self._lock_sequencer(conn, wait):
                result.busy = True
                return result
            state = self._read_state(conn)
            new_floor, new_floor_xid = state.floor, state.floor_xid
            if self.is_sqlite:
                rows = conn.execute(
                    _PENDING_SQL, {"floor": state.floor, "limit": ls.batch_size}
                ).all()
                if rows:
                    new_floor = int(rows[-1][0])
            else:
                # xmin FIRST, in its own statement: every transaction with an xid below it
                # has ended, so the scan below (a later snapshot) sees all of them that
                # committed. Only a pass that saw the whole scan may move the floor to it.
                xmin = int(conn.execute(_XMIN_SQL).scalar_one())
                rows = conn.execute(
                    _PENDING_PG_SQL, {"floor_xid": state.floor_xid, "limit": ls.batch_size}
                ).all()
                if (
                    len(rows) < ls.batch_size
                    and xmin > state.floor_xid
                    and (
                        rows
                        or conn.execute(
                            _WINDOW_PG_SQL, {"lo": state.floor_xid, "hi": xmin}
                        ).scalar_one()
                    )
                ):
                    new_floor_xid = xmin
            cut = len(rows) >= ls.batch_size
            rng = self._compact_range(conn, state)
            now = utcnow()
            overlay: dict[tuple[int, int], bytes] = {}
            if rows:
                leaf_cols, obj_cols, hashes = self._leaf_columns(rows, state.size, now)
                new_nodes = rng.extend(hashes)
                node_cols: dict[str, list[Any]] = {
                    "level": [n.level for n in new_nodes],
                    "idx": [n.index for n in new_nodes],
                    "hash": [n.hash for n in new_nodes],
                }
                for table, columns in (
                    (_leaves, leaf_cols),
                    (_leaf_objects, obj_cols),
                    (_nodes, node_cols),
                ):
                    # the same rows as insert(table), without SQLAlchemy's per-row cost
                    driver_insert_columns(conn, table, columns)
                overlay = {(n.level, n.index): n.hash for n in new_nodes}
                for i, h in enumerate(hashes):
                    overlay[(0, state.size + i)] = h
            root = rng.root()
            changed = bool(rows) or new_floor != state.floor or new_floor_xid != state.floor_xid
            if changed:
                conn.execute(
                    insert(_states),
                    {
                        "tree_size": rng.size,
                        "root_hash": root,
                        "floor_entry_id": new_floor,
                        "floor_xid": None if self.is_sqlite else new_floor_xid,
                        "created_at": now,
                    },
                )
            published = self._maybe_checkpoint(conn, rng, root, now, overlay, force_checkpoint)
        # committed
        self._range, self._range_root = rng, root
        result.integrated = len(rows)
        result.size = rng.size
        result.more = cut
        if published is not None:
            result.checkpoint = published
            self._publish(*published)
        return result

    def _leaf_columns(
        self, rows: Sequence[Any], start: int, now: datetime
    ) -> tuple[dict[str, list[Any]], dict[str, list[Any]], list[bytes]]:
        """The ``ledger_leaves`` and ``ledger_leaf_objects`` rows of ``rows`` (entry id,
        event, created_at), column by column for ``driver_insert_columns``, and the leaf
        hashes in order (``leaf_hash``, inlined)."""
        n = len(rows)
        sha = _sha256
        hashes: list[bytes] = []
        types: list[str] = []
        projects: list[str | None] = []
        actors: list[str | None] = []
        times: list[datetime] = []
        obj_ids: list[str] = []
        obj_leaves: list[int] = []
        obj_kinds: list[str] = []
        entry_ids: list[int] = []
        for i, (entry_id, event, created_at) in enumerate(rows):
            data = bytes(event)
            hashes.append(sha(b"\x00" + data).digest())
            entry_ids.append(int(entry_id))
            ev = _decode_event(data)
            t = ev.get("type")
            types.append((t[:64] if isinstance(t, str) else None) or "invalid")
            p = ev.get("project")
            projects.append(p[:128] if isinstance(p, str) else None)
            a = ev.get("actor")
            actors.append(a[:128] if isinstance(a, str) else None)
            times.append(_parse_time(ev.get("time"), created_at or now))
            objects = ev.get("objects")
            if isinstance(objects, dict) and objects:
                idx = start + i
                seen: set[str] = set()
                for kind, oid in objects.items():
                    if isinstance(oid, str) and oid not in seen:
                        seen.add(oid)
                        obj_ids.append(oid[:128])
                        obj_leaves.append(idx)
                        obj_kinds.append(str(kind)[:64])
        leaves: dict[str, list[Any]] = {
            "idx": list(range(start, start + n)),
            "entry_id": entry_ids,
            "leaf_hash": hashes,
            "type": types,
            "project": projects,
            "actor": actors,
            "event_time": times,
            "integrated_at": [now] * n,
        }
        objs: dict[str, list[Any]] = {
            "object_id": obj_ids,
            "leaf_idx": obj_leaves,
            "kind": obj_kinds,
        }
        return leaves, objs, hashes

    def _maybe_checkpoint(
        self,
        conn: Connection,
        rng: CompactRange,
        root: bytes,
        now: datetime,
        overlay: dict[tuple[int, int], bytes],
        force: bool,
    ) -> tuple[int, str] | None:
        ls = self.ledger_settings
        if force and rng.size == 0 and self._last_checkpoint(conn)[3] is None:
            # An empty log still gets a signed (size 0) checkpoint on request, so an
            # auditor can hold the log to it from the start.
            return self._sign(conn, rng, root, now)
        if self._last_cp is None:
            size, cp_root, at, _ = self._last_checkpoint(conn)
            self._last_cp = (size, cp_root, at)
        last_size, last_root, last_at = self._last_cp
        if rng.size <= last_size:
            if rng.size < last_size:
                raise LedgerIntegrityError(
                    f"the tree has {rng.size} leaves but a checkpoint of size {last_size} "
                    "exists: the log was truncated or rolled back"
                )
            return None
        due = (
            force
            or rng.size - last_size >= ls.checkpoint_every
            or (now - last_at).total_seconds() >= ls.checkpoint_interval_s
        )
        if not due:
            return None
        # Re-read the previous checkpoint from the database (another process may have
        # signed one since we cached it) and never sign anything inconsistent with it.
        last_size, last_root, last_at, _ = self._last_checkpoint(conn)
        self._last_cp = (last_size, last_root, last_at)
        if rng.size <= last_size:
            return None
        if not (
            force
            or rng.size - last_size >= ls.checkpoint_every
            or (now - last_at).total_seconds() >= ls.checkpoint_interval_s
        ):
            return None  # another process signed one meanwhile: not due any more
        proof = consistency_proof(last_size, rng.size, _node_reader(conn, overlay))
        try:
            verify_consistency(last_size, rng.size, proof, last_root, root)
        except ConsistencyError as exc:
            raise LedgerIntegrityError(
                f"refusing to sign size {rng.size}: not consistent with the checkpoint of "
                f"size {last_size}: {exc}"
            ) from exc
        return self._sign(conn, rng, root, now)

    def _sign(
        self, conn: Connection, rng: CompactRange, root: bytes, now: datetime
    ) -> tuple[int, str]:
        note = sign_checkpoint(Checkpoint(self.origin, rng.size, root), self.signer)
        conn.execute(
            insert(_checkpoints),
            {"tree_size": rng.size, "root_hash": root, "note": note, "created_at": now},
        )
        self._last_cp = (rng.size, root, now)
        return rng.size, note

    def _publish(self, size: int, note: str) -> None:
        for sink in self.sinks or []:
            try:
                sink.publish(size, note)
            except Exception:
                log.exception("checkpoint sink %r failed for size %d", sink, size)

    def resync_sinks(self) -> None:
        """Publish the latest stored checkpoint (after a crash between commit and publish)."""
        with self.engine.connect() as conn:
            _, _, _, note = self._last_checkpoint(conn)
        if note is not None:
            from privet_audit.checkpoint import parse_checkpoint_text

            text_part = note[: note.rfind("\n\n") + 1]
            self._publish(parse_checkpoint_text(text_part).size, note)

    def integrate_now(self, *, checkpoint: bool = True) -> TreeHead:
        """Integrate every entry committed before this call; sign a checkpoint of the
        result if the tree grew since the last one (``checkpoint=True``)."""
        while True:
            res = self.integrate_pass(force_checkpoint=False)
            if not res.more and not res.integrated:
                break
        if checkpoint:
            self.integrate_pass(force_checkpoint=True)
        return self.head()

    def head(self) -> TreeHead:
        with self.engine.connect() as conn:
            state = self._read_state(conn)
            size, _, _, note = self._last_checkpoint(conn)
        return TreeHead(state.size, state.root, size, note)


# --- process-wide ledgers and the background integrator ------------------------------

_ledgers: dict[str, Ledger] = {}
_ledgers_lock = threading.Lock()


def get_ledger(engine: Engine, settings: Settings | None = None) -> Ledger:
    """The process-wide ``Ledger`` for an engine (created on first use)."""
    key = engine.url.render_as_string(hide_password=False)
    with _ledgers_lock:
        ledger = _ledgers.get(key)
        if ledger is None:
            ledger = _ledgers[key] = Ledger(engine, settings or get_settings())
        return ledger


def integrate_now(engine: Engine, *, checkpoint: bool = True) -> TreeHead:
    """Synchronously integrate everything committed so far (CLI, tests, audit routes)."""
    return get_ledger(engine).integrate_now(checkpoint=checkpoint)


class LedgerSequencer:
    """Background integrator thread: a pass after every commit that emitted events
    (``kick``), and a periodic pass every ``poll_interval_s`` for entries written by
    other processes and for time-based checkpoints."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._unregister: Callable[[], None] | None = None
        self.errors = 0

    def kick(self) -> None:
        self._wake.set()

    def start(self) -> None:
        if self._thread is not None:
            return
        try:
            self.ledger.resync_sinks()
        except Exception:
            log.exception("could not resync checkpoint sinks")
        self._stop.clear()
        self._unregister = on_commit_with_events(self.kick)
        self._thread = threading.Thread(
            target=self._run, name="privet-ledger-sequencer", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        if self._unregister is not None:
            self._unregister()
            self._unregister = None
        if self._thread is None:
            return
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout)
        self._thread = None

    def _run(self) -> None:
        ls = self.ledger.ledger_settings
        interval, pace = ls.poll_interval_s, ls.min_pass_interval_s
        while not self._stop.is_set():
            self._wake.wait(interval)
            self._wake.clear()
            try:
                while not self._stop.is_set():
                    res = self.ledger.integrate_pass(wait=False)
                    if res.busy:  # another process is integrating: look again shortly
                        self._stop.wait(pace)
                        continue
                    if not res.more:
                        break
            except LedgerIntegrityError:
                self.errors += 1
                log.critical("ledger integrity error; not integrating", exc_info=True)
                self._stop.wait(min(60.0, interval * 10))
            except Exception:
                self.errors += 1
                log.exception("ledger sequencer pass failed; retrying")
                self._stop.wait(min(5.0, interval))
            # Pace passes: commits arriving meanwhile are integrated together next time,
            # so under load one pass (one durable commit) integrates many appends.
            self._stop.wait(pace)
        # Final pass so nothing committed before stop() waits for the next start.
        try:
            self.ledger.integrate_pass()
        except Exception:
            log.exception("final ledger sequencer pass failed")


_sequencers: dict[str, LedgerSequencer] = {}


def start_sequencer(engine: Engine, settings: Settings | None = None) -> LedgerSequencer:
    """Start this process's background integrator for ``engine`` (idempotent).

    The server calls it at startup and each worker process after it starts (after any
    fork); both call ``stop_sequencer`` at shutdown."""
    key = engine.url.render_as_string(hide_password=False)
    with _ledgers_lock:
        seq = _sequencers.get(key)
    if seq is None:
        seq = LedgerSequencer(get_ledger(engine, settings))
        with _ledgers_lock:
            seq = _sequencers.setdefault(key, seq)
    seq.start()
    return seq


def stop_sequencer(engine: Engine | None = None) -> None:
    """Stop the background integrator(s) (all of them when ``engine`` is None)."""
    with _ledgers_lock:
        if engine is None:
            seqs = list(_sequencers.values())
            _sequencers.clear()
        else:
            s = _sequencers.pop(engine.url.render_as_string(hide_password=False), None)
            seqs = [s] if s else []
    for seq in seqs:
        seq.stop()
