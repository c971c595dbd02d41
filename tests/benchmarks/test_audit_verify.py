"""Benchmark: offline verification rate of a 1,000,000-event export bundle.

Run on demand: ``pytest tests/benchmarks/test_audit_verify.py -s``. Prints events/s and
the ratio to a baseline measured in the same run (bare SHA-256 leaf hashing of the
same lines, the floor any verifier pays); no timed assertion.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator
from pathlib import Path

from privet_audit.bundle import verify_bundle, write_bundle
from privet_audit.canonical import canonical_bytes
from privet_audit.checkpoint import Checkpoint, Signer, sign_checkpoint
from privet_audit.events import validate_event
from privet_audit.merkle import CompactRange, leaf_hash, root_hash

N = int(os.environ.get("PRIVET_BENCH_EVENTS", "1000000"))
CHECKPOINT_EVERY = 100_000
ORIGIN = "bench.privet/log"
STORED_LEVEL = 10  # nodes below this level are recomputed from leaf hashes on demand

_TEMPLATE = canonical_bytes(
    {
        "v": 1,
        "type": "prediction.made",
        "time": "2026-11-29T00:00:00.@@@@@@Z",
        "actor": "prn_%%%%%%%%",
        "project": "prj_0001",
        "objects": {"model_version": "mv_0003", "dataset_version": "dsv_0042"},
        "digests": {"input": "hmac-sha256:" + "#" * 64},
        "outcome": "ok",
        "details": {"label": 1, "purpose": "credit_decision", "cached": False},
    }
)
_FMT = (
    _TEMPLATE.replace(b"%", b"%%")
    .replace(b"@@@@@@", b"%(us)06d")
    .replace(b"%%" * 8, b"%(actor)08x")
    .replace(b"#" * 64, b"%(digest)064x")
)


def entries(n: int) -> Iterator[bytes]:
    for i in range(n):
        yield _FMT % {b"us": i % 1_000_000, b"actor": i % 9973, b"digest": i * 2654435761}


def test_verify_one_million_events(tmp_path: Path) -> None:
    import json

    validate_event(json.loads(next(entries(1))))
    signer = Signer.from_seed(ORIGIN, bytes(32))

    t0 = time.perf_counter()
    leaves = [leaf_hash(e) for e in entries(N)]
    tree = CompactRange()
    stored: dict[tuple[int, int], bytes] = {}
    notes = []
    sizes = sorted({*range(CHECKPOINT_EVERY, N + 1, CHECKPOINT_EVERY), N})
    prev = 0
    for size in sizes:
        for nd in tree.extend(leaves[prev:size]):
            if nd.level >= STORED_LEVEL:
                stored[(nd.level, nd.index)] = nd.hash
        prev = size
        notes.append(sign_checkpoint(Checkpoint(ORIGIN, size, tree.root()), signer))

    def node(level: int, index: int) -> bytes:
        if level >= STORED_LEVEL:
            return stored[(level, index)]
        return root_hash(leaves[index << level : (index + 1) << level])

    path = tmp_path / "million.bundle"
    write_bundle(
        path, verifier_key=str(signer.verifier), checkpoints=notes, entries=entries(N), node=node
    )
    build_s = time.perf_counter() - t0
    leaves.clear()
    stored.clear()

    # Baseline: read the same file and SHA-256 every line, nothing else.
    t0 = time.perf_counter()
    with open(path, "rb") as f:
        for line in f:
            hashlib.sha256(b"\x00" + line).digest()
    base_s = time.perf_counter() - t0

    res = verify_bundle(path, key=str(signer.verifier))
    assert res.ok, res.message
    assert res.entries_verified == N

    rate, base_rate = res.events_per_second, N / base_s
    mb = path.stat().st_size / 1e6
    print(
        f"\n[audit verify] {N:,} events ({mb:,.0f} MB, {len(notes)} checkpoints) built in "
        f"{build_s:.1f}s; verify {res.seconds:.2f}s = {rate:,.0f} events/s; "
        f"baseline (read + SHA-256 per line) {base_rate:,.0f} lines/s; "
        f"ratio {rate / base_rate:.2f}x of baseline; target 200,000 events/s"
    )

    small = min(N, 100_000)
    spath = tmp_path / "strict.bundle"
    stree = CompactRange()
    stree.extend([leaf_hash(e) for e in entries(small)], collect=False)
    snote = sign_checkpoint(Checkpoint(ORIGIN, small, stree.root()), signer)
    write_bundle(
        spath,
        verifier_key=str(signer.verifier),
        checkpoints=[snote],
        entries=entries(small),
        proofs=[[]],
    )
    sres = verify_bundle(spath, key=str(signer.verifier), strict_events=True)
    assert sres.ok, sres.message
    print(
        f"[audit verify --strict-events] {small:,} events: {sres.events_per_second:,.0f} events/s"
    )
