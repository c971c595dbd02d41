"""The audit ledger: append-only, tamper-evident, verifiable offline.

Callers record events with ``emit`` / ``emit_many`` inside their own transaction. A
single sequencer at a time integrates committed entries into an RFC 6962 Merkle tree and
signs C2SP checkpoints; see docs/LEDGER.md for the design argument.
"""

from privet.ledger.emit import EventSpec, LedgerEventError, emit, emit_many

__all__ = ["EventSpec", "LedgerEventError", "emit", "emit_many"]
