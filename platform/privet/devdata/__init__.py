"""Development data: a year of a bank's audit traffic, written through the real ledger.

``seed_ledger`` (behind `privet dev seed` and the benchmarks' ``seeded_ledger`` fixture)
appends events the way the platform does (``encode_events`` + ``insert_entries``, then
the sequencer's own passes), so the tree, leaves, object index and signed checkpoints are
what production would have written, for a project and people the auth services create.
See docs/SCALING.md.
"""

from privet.devdata.seed import SeedError, SeedResult, seed_ledger

__all__ = ["SeedError", "SeedResult", "seed_ledger"]
