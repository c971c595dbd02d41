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

The pass orchestrates; its parts live beside it: ``dialects`` (the lock and the floor,
each dialect's way), ``integrate`` (step 4's tree arithmetic, over an injected storage
that knows the tables: ``storage``) and ``checkpoints`` (step 5).

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

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine
from sqlmodel import Session

from privet.config import Settings, get_settings
from privet.kit.ids import utcnow
from privet.kit.process_state import ProcessRegistry
from privet.ledger.checkpoints import Checkpointer
from privet.ledger.dialects import SequencerDialect, dialect_of
from privet.ledger.emit import ledger_write_lock, on_commit_with_events
from privet.ledger.integrate import Integrated, LedgerIntegrityError, integrate
from privet.ledger.settings import LedgerSettings, get_ledger_settings
from privet.ledger.signer import load_signer
from privet.ledger.sinks import CheckpointSink, FileCheckpointSink
from privet.ledger.storage import SqlStorage
from privet_audit.checkpoint import Signer, Verifier, parse_checkpoint_text

__all__ = [
    "Ledger",
    "LedgerIntegrityError",
    "LedgerSequencer",
    "PassResult",
    "TreeHead",
    "get_ledger",
    "integrate_now",
    "session_ledger",
    "set_ledger",
    "start_sequencer",
    "stop_sequencer",
]

log = logging.getLogger(__name__)


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
class Ledger:
    """Everything a sequencer pass needs: engine, settings, signer and sinks.

    Cheap to use repeatedly; keeps the tree's border and the last checkpoint between
    passes.
    """

    engine: Engine
    settings: Settings = field(default_factory=get_settings)
    ledger_settings: LedgerSettings = field(default_factory=get_ledger_settings)
    sinks: list[CheckpointSink] | None = None
    _signer: Signer | None = field(default=None, init=False, repr=False)
    _tree: Integrated | None = field(default=None, init=False, repr=False)
    _checkpointer: Checkpointer = field(init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.sinks is None:
            self.sinks = [FileCheckpointSink(self.checkpoint_log_path)]
        self._checkpointer = Checkpointer(self)

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
    def dialect(self) -> SequencerDialect:
        return dialect_of(self.engine)

    # -- the pass ----------------------------------------------------------------------

    def integrate_pass(self, *, force_checkpoint: bool = False, wait: bool = True) -> PassResult:
        """One sequencer pass in one transaction (see the module docstring).

        With ``wait=False`` (the background integrator) a pass that finds another
        process's sequencer running returns at once with ``busy=True``.
        """
        with self._lock, ledger_write_lock(self.engine):
            try:
                return self._integrate_pass(force_checkpoint, wait)
            except BaseException:
                self._tree = None
                self._checkpointer.forget()
                raise

    def _integrate_pass(self, force_checkpoint: bool, wait: bool) -> PassResult:
        """Claim the lock, read the pending entries, integrate them, record the tree
        state, sign a checkpoint if due; commit; then publish the checkpoint."""
        limit = self.ledger_settings.batch_size
        dialect = self.dialect
        with self.engine.begin() as conn:
            if not dialect.lock(conn, wait=wait):
                return PassResult(busy=True)
            storage = SqlStorage(conn, dialect, utcnow())
            state = storage.tree_state()
            rows, floor = dialect.pending(conn, state.floor, limit)
            tree = integrate(storage, rows, known=self._tree)
            if rows or floor != state.floor:
                storage.write_tree_state(tree.size, tree.root, floor, storage.now)
            published = self._checkpointer.maybe_sign(storage, tree, storage.now, force_checkpoint)
        # committed
        self._tree = tree
        result = PassResult(integrated=len(rows), size=tree.size, more=len(rows) >= limit)
        if published is not None:
            result.checkpoint = published
            self._publish(*published)
        return result

    def _publish(self, size: int, note: str) -> None:
        for sink in self.sinks or []:
            try:
                sink.publish(size, note)
            except Exception:
                log.exception("checkpoint sink %r failed for size %d", sink, size)

    def resync_sinks(self) -> None:
        """Publish the latest stored checkpoint (after a crash between commit and publish)."""
        with self.engine.connect() as conn:
            note = self._checkpointer.latest(SqlStorage(conn, self.dialect)).note
        if note is not None:
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
            storage = SqlStorage(conn, self.dialect)
            state = storage.tree_state()
            latest = self._checkpointer.latest(storage)
        return TreeHead(state.size, state.root, latest.size, latest.note)


# --- process-wide ledgers and the background integrator ------------------------------

_ledgers: ProcessRegistry[str, Ledger] = ProcessRegistry(
    "ledger.ledgers",
    why="services reach the ledger from a session alone (session_ledger), and every "
    "Runtime, worker and CLI command of the process must share one tree border and one "
    "checkpointer per database",
)


def _key(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=False)


def get_ledger(engine: Engine, settings: Settings | None = None) -> Ledger:
    """The process-wide ``Ledger`` for an engine (created on first use)."""
    return _ledgers.get_or_create(_key(engine), lambda: Ledger(engine, settings or get_settings()))


def set_ledger(ledger: Ledger) -> None:
    """Make ``ledger`` the process-wide one of its engine (tests give it their settings)."""
    _ledgers.set(_key(ledger.engine), ledger)


def session_ledger(session: Session) -> Ledger:
    """The process-wide ``Ledger`` of a session's engine (the services' way to it)."""
    return get_ledger(session.get_bind())  # type: ignore[arg-type]


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


_sequencers: ProcessRegistry[str, LedgerSequencer] = ProcessRegistry(
    "ledger.sequencers",
    why="one background integrator per database and process, whoever starts it (the "
    "gateway's lifespan, a worker); its commit hook wakes it after any session's commit",
    close=LedgerSequencer.stop,
    threads=True,
)


def start_sequencer(engine: Engine, settings: Settings | None = None) -> LedgerSequencer:
    """Start this process's background integrator for ``engine`` (idempotent).

    The server calls it at startup and each worker process after it starts (after any
    fork); both call ``stop_sequencer`` at shutdown."""
    seq = _sequencers.get_or_create(
        _key(engine), lambda: LedgerSequencer(get_ledger(engine, settings))
    )
    seq.start()
    return seq


def stop_sequencer(engine: Engine | None = None) -> None:
    """Stop the background integrator(s) (all of them when ``engine`` is None)."""
    if engine is None:
        _sequencers.reset()
        return
    seq = _sequencers.pop(_key(engine))
    if seq is not None:
        seq.stop()
