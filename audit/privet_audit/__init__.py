"""privet_audit: the ledger format, Merkle proofs and the offline verifier.

This package depends only on the standard library and ``cryptography`` so that an
auditor can install it alone and verify an exported ledger without trusting the
platform that produced it.
"""

from privet_audit.canonical import CanonicalError, canonical_bytes, parse_canonical
from privet_audit.merkle import (
    EMPTY_ROOT,
    CompactRange,
    ConsistencyError,
    InclusionError,
    MemoryTree,
    ProofError,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root_hash,
    verify_consistency,
    verify_inclusion,
)

__all__ = [
    "EMPTY_ROOT",
    "CanonicalError",
    "CompactRange",
    "ConsistencyError",
    "InclusionError",
    "MemoryTree",
    "ProofError",
    "canonical_bytes",
    "consistency_proof",
    "inclusion_proof",
    "leaf_hash",
    "node_hash",
    "parse_canonical",
    "root_hash",
    "verify_consistency",
    "verify_inclusion",
]

__version__ = "0.1.0"
