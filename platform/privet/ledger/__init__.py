"""The audit ledger: append-only, tamper-evident, verifiable offline.

Callers record events with ``emit`` / ``emit_many`` inside their own transaction, or,
for events with no state change to ride with, durably on their own through the group
commit (``append_durable``: many callers' events per transaction). One
sequencer at a time integrates committed entries into an RFC 6962 Merkle tree and signs
C2SP checkpoints (``start_sequencer`` runs it in the background, ``integrate_now`` runs
it synchronously). The functions behind the audit routes are in ``privet.ledger.queries``
(events, checkpoints, proofs), ``privet.ledger.export`` (bundles) and
``privet.ledger.verify`` (the live database). See docs/LEDGER.md for the design argument.
"""

from privet.ledger.appender import (
    LedgerAppendError,
    append_durable,
    append_durable_many,
    append_durable_many_async,
    start_appender,
    stop_appender,
)
from privet.ledger.emit import EventSpec, LedgerEventError, emit, emit_many
from privet.ledger.sequencer import (
    Ledger,
    LedgerIntegrityError,
    LedgerSequencer,
    TreeHead,
    get_ledger,
    integrate_now,
    start_sequencer,
    stop_sequencer,
)

__all__ = [
    "EventSpec",
    "Ledger",
    "LedgerAppendError",
    "LedgerEventError",
    "LedgerIntegrityError",
    "LedgerSequencer",
    "TreeHead",
    "append_durable",
    "append_durable_many",
    "append_durable_many_async",
    "emit",
    "emit_many",
    "get_ledger",
    "integrate_now",
    "start_appender",
    "start_sequencer",
    "stop_appender",
    "stop_sequencer",
]
