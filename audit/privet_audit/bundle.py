"""Export bundles: a whole ledger prefix in one streaming, offline-verifiable file.

Layout (one item per ``\\n``-terminated line, UTF-8):

1. header — canonical JSON ``{"format": "privet-audit-bundle", "version": 1,
   "origin": ..., "verifier_key": ..., "tree_size": N, "checkpoints": K}``;
2. K checkpoint lines — canonical JSON ``{"checkpoint": <signed note>,
   "previous_size": S, "consistency_proof": [<hex>, ...]}`` in increasing size, each
   proof going from the previous checkpoint (size 0 for the first);
3. N entry lines — entry ``i`` is the exact leaf bytes of ledger index ``i``.

A bundle always covers ``[0, N)`` where N is the size of its last checkpoint, so the
verifier recomputes every root from the entries themselves. Checkpoints come before
the entries so the verifier knows every size to stop at while streaming, and hashes the
raw line bytes without decoding anything. The streaming root check itself, shared with
`verify_entries` (a log held elsewhere), is in `privet_audit.verify`.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from hashlib import sha256
from pathlib import Path
from typing import IO, Any

from privet_audit.canonical import canonical_bytes
from privet_audit.checkpoint import (
    Checkpoint,
    NoteError,
    Verifier,
    check_consistency,
    open_checkpoint,
)
from privet_audit.merkle import (
    EMPTY_ROOT,
    MemoryTree,
    NodeFn,
    consistency_proof,
    consistency_proof_ranges,
    root_hash,
)
from privet_audit.verify import (
    BundleError,
    VerifyResult,
    failed,
    load_trusted,
    parse_key,
    root_targets,
    stream_roots,
    succeeded,
    verify_entries,
)

__all__ = [
    "BUNDLE_FORMAT",
    "BUNDLE_VERSION",
    "BundleError",
    "VerifyResult",
    "inspect_bundle",
    "verify_bundle",
    "verify_entries",
    "write_bundle",
]

BUNDLE_FORMAT = "privet-audit-bundle"
BUNDLE_VERSION = 1
_CHUNK = 1 << 22  # bytes read at a time while streaming entries


# --------------------------------------------------------------------------- writing


def write_bundle(
    path: str | os.PathLike[str],
    *,
    verifier_key: str | Verifier,
    checkpoints: Sequence[str],
    entries: Iterable[bytes],
    node: NodeFn | None = None,
    proofs: Sequence[Sequence[bytes]] | None = None,
) -> int:
    """Write a bundle of ``entries`` (canonical bytes, index 0 first) and signed checkpoints.

    Consistency proofs between successive checkpoints come from ``proofs`` if given,
    else from ``node(level, index)`` (the platform's stored tree), else from a tree
    built in memory from ``entries`` (which must then be a sequence). The file is
    written to ``<path>.partial`` and renamed only when complete. Returns N.
    """
    verifier = verifier_key if isinstance(verifier_key, Verifier) else Verifier.parse(verifier_key)
    cps = _open_in_order(checkpoints, verifier)
    origin, tree_size = cps[0].origin, cps[-1].size
    proofs = _consistency_proofs(cps, entries, node, proofs)
    final = Path(path)
    partial = final.with_name(final.name + ".partial")
    with open(partial, "wb") as out:
        header = {
            "format": BUNDLE_FORMAT,
            "version": BUNDLE_VERSION,
            "origin": origin,
            "verifier_key": str(verifier),
            "tree_size": tree_size,
            "checkpoints": len(cps),
        }
        out.write(canonical_bytes(header) + b"\n")
        prev_size = 0
        for note, cp, proof in zip(checkpoints, cps, proofs, strict=True):
            rec = {
                "checkpoint": note,
                "previous_size": prev_size,
                "consistency_proof": [p.hex() for p in proof],
            }
            out.write(canonical_bytes(rec) + b"\n")
            prev_size = cp.size
        count = _write_entries(out, entries, tree_size, partial)
    if count != tree_size:
        partial.unlink()
        raise BundleError(f"got {count} entries, the last checkpoint needs {tree_size}")
    os.replace(partial, final)
    return count


def _open_in_order(notes: Sequence[str], verifier: Verifier) -> list[Checkpoint]:
    """The signed checkpoints, all of one origin and in strictly increasing size."""
    if not notes:
        raise BundleError("a bundle needs at least one checkpoint")
    cps = [open_checkpoint(note, verifier) for note in notes]
    origin = cps[0].origin
    for i, cp in enumerate(cps):
        if cp.origin != origin:
            raise BundleError(f"checkpoint {i} is for origin {cp.origin!r}, not {origin!r}")
        if i and cp.size <= cps[i - 1].size:
            raise BundleError("checkpoints must be in strictly increasing size order")
    return cps


def _consistency_proofs(
    cps: list[Checkpoint],
    entries: Iterable[bytes],
    node: NodeFn | None,
    proofs: Sequence[Sequence[bytes]] | None,
) -> Sequence[Sequence[bytes]]:
    """The proof into each checkpoint from the one before (size 0 for the first), given
    or computed as `write_bundle` says, and checked before anything is written."""
    tree_size = cps[-1].size
    if proofs is None:
        if node is None:
            if not isinstance(entries, Sequence):
                raise BundleError("pass node= or proofs= when entries is not a sequence")
            if len(entries) < tree_size:
                raise BundleError(
                    f"got {len(entries)} entries, the last checkpoint needs {tree_size}"
                )
            node = MemoryTree.from_entries(entries[:tree_size]).node
        sizes = [0] + [cp.size for cp in cps]
        proofs = [consistency_proof(sizes[i], sizes[i + 1], node) for i in range(len(cps))]
    if len(proofs) != len(cps):
        raise BundleError(f"{len(cps)} checkpoints but {len(proofs)} consistency proofs")
    prev = Checkpoint(cps[0].origin, 0, EMPTY_ROOT)
    for i, (cp, proof) in enumerate(zip(cps, proofs, strict=True)):
        try:
            check_consistency(prev, cp, proof)
        except NoteError as exc:
            raise BundleError(f"checkpoint {i}: {exc}", checkpoint=i) from exc
        prev = cp
    return proofs


def _write_entries(out: IO[bytes], entries: Iterable[bytes], tree_size: int, partial: Path) -> int:
    """Write the first ``tree_size`` entries a line each, in batches; how many there were.
    An empty entry or one with a newline removes the partial file and raises."""
    count = 0
    batch: list[bytes] = []
    for entry in entries:
        if count >= tree_size:
            break
        if not entry or b"\n" in entry:
            partial.unlink()
            raise BundleError(f"entry {count} is empty or contains a newline", entry=count)
        batch.append(entry)
        count += 1
        if len(batch) >= 4096:
            batch.append(b"")
            out.write(b"\n".join(batch))
            batch.clear()
    if batch:
        batch.append(b"")
        out.write(b"\n".join(batch))
    return count


# --------------------------------------------------------------------------- reading


@dataclass
class _Head:
    origin: str
    key: str
    tree_size: int
    checkpoints: list[Checkpoint]
    notes: list[str]
    proofs: list[list[bytes]]
    entries_offset: int


def _read_json_line(f: IO[bytes], what: str) -> dict[str, Any]:
    line = f.readline()
    if not line:
        raise BundleError(f"bundle ends before the {what}")
    if not line.endswith(b"\n"):
        raise BundleError(f"the {what} is not terminated by a newline")
    try:
        value = json.loads(line)
    except ValueError as exc:
        raise BundleError(f"the {what} is not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise BundleError(f"the {what} is not a JSON object")
    return value


def _read_head(f: IO[bytes], verifier: Verifier | None) -> tuple[_Head, Verifier, str]:
    hdr = _read_json_line(f, "header")
    if hdr.get("format") != BUNDLE_FORMAT:
        raise BundleError(f"not a {BUNDLE_FORMAT} file (format {hdr.get('format')!r})")
    if hdr.get("version") != BUNDLE_VERSION:
        raise BundleError(f"unsupported bundle version {hdr.get('version')!r}")
    origin, key, size, count = (
        hdr.get("origin"),
        hdr.get("verifier_key"),
        hdr.get("tree_size"),
        hdr.get("checkpoints"),
    )
    if not isinstance(origin, str) or not isinstance(key, str):
        raise BundleError("header lacks origin or verifier_key")
    if not isinstance(size, int) or not isinstance(count, int) or size < 0 or count < 1:
        raise BundleError("header tree_size/checkpoints are not valid counts")
    if verifier is None:
        try:
            verifier = Verifier.parse(key)
        except NoteError as exc:
            raise BundleError(f"header verifier_key: {exc}") from exc
        source = "bundle"
    else:
        source = "pinned"
    cps: list[Checkpoint] = []
    notes: list[str] = []
    proofs: list[list[bytes]] = []
    prev = Checkpoint(origin, 0, EMPTY_ROOT)
    for i in range(count):
        rec = _read_json_line(f, f"checkpoint {i}")
        note = rec.get("checkpoint")
        if not isinstance(note, str):
            raise BundleError(f"checkpoint {i}: no note text", checkpoint=i)
        try:
            cp = open_checkpoint(note, verifier, origin=origin)
        except NoteError as exc:
            raise BundleError(f"checkpoint {i}: {exc}", checkpoint=i) from exc
        raw_proof = rec.get("consistency_proof")
        if rec.get("previous_size") != prev.size or not isinstance(raw_proof, list):
            raise BundleError(
                f"checkpoint {i}: must carry a consistency proof from size {prev.size}",
                checkpoint=i,
            )
        try:
            proof = [bytes.fromhex(p) for p in raw_proof]
        except (TypeError, ValueError) as exc:
            raise BundleError(f"checkpoint {i}: proof is not hex", checkpoint=i) from exc
        if cp.size <= prev.size and i:
            raise BundleError(
                f"checkpoint {i} (size {cp.size}) does not grow the log past size {prev.size}",
                checkpoint=i,
            )
        try:
            check_consistency(prev, cp, proof)
        except NoteError as exc:
            raise BundleError(f"checkpoint {i}: {exc}", checkpoint=i) from exc
        cps.append(cp)
        notes.append(note)
        proofs.append(proof)
        prev = cp
    if cps[-1].size != size:
        raise BundleError(
            f"header says {size} entries but the last checkpoint has size {cps[-1].size}",
            checkpoint=count - 1,
        )
    head = _Head(origin, key, size, cps, notes, proofs, f.tell())
    return head, verifier, source


def _iter_entry_chunks(f: IO[bytes], total: int) -> Iterator[list[bytes]]:
    """Yield lists of entry lines (without newlines), ``total`` in all; then check EOF."""
    rest = b""
    seen = 0
    while seen < total:
        buf = f.read(_CHUNK)
        if not buf:
            if rest:
                # Last line without a trailing newline.
                yield [rest]
                seen += 1
                rest = b""
            break
        lines = (rest + buf).split(b"\n")
        rest = lines.pop()
        if seen + len(lines) > total:
            extra = lines[total - seen :]
            lines = lines[: total - seen]
            rest = b"\n".join([*extra, rest])
        seen += len(lines)
        if lines:
            yield lines
    if seen < total:
        raise BundleError(
            f"bundle truncated: it has {seen} of the {total} entries its checkpoints cover "
            f"(entries {seen}..{total - 1} missing)",
            entry=seen,
        )
    tail = rest + f.read(1)
    if tail:
        raise BundleError(
            f"unexpected data after the last entry (index {total - 1}): the bundle has "
            "more entries than its last checkpoint covers",
            entry=total,
        )


def _locate(
    path: Path, head: _Head, cp_no: int, start: int, end: int
) -> tuple[str, tuple[int, int]]:
    """Narrow a root mismatch in [start, end) using the verified consistency proof."""
    if cp_no < 0 or start != (head.checkpoints[cp_no - 1].size if cp_no else 0):
        return "", (start, end)
    ranges = consistency_proof_ranges(start, end)
    proof = head.proofs[cp_no]
    parts = [(r, p) for r, p in zip(ranges, proof, strict=True) if r[0] >= start]
    parts.sort()
    if not parts:
        return "", (start, end)
    hashes: list[bytes] = []
    with open(path, "rb") as f:
        f.seek(head.entries_offset)
        index = 0
        for chunk in _iter_entry_chunks_lenient(f, end):
            for entry in chunk:
                if index >= start:
                    hashes.append(sha256(b"\x00" + entry).digest())
                index += 1
    for (lo, hi), want in parts:
        got = root_hash(hashes[lo - start : hi - start]) if hi - start <= len(hashes) else b""
        if got != want:
            return " (narrowed with the signed consistency proof)", (lo, hi)
    return "", (start, end)


def _iter_entry_chunks_lenient(f: IO[bytes], total: int) -> Iterator[list[bytes]]:
    try:
        yield from _iter_entry_chunks(f, total)
    except BundleError:
        return


def verify_bundle(
    path: str | os.PathLike[str],
    trusted_checkpoint: str | None = None,
    strict_events: bool = False,
    key: str | Verifier | None = None,
) -> VerifyResult:
    """Verify a bundle offline; never raises for a bad bundle, see ``VerifyResult``.

    Checks every checkpoint signature and the consistency proofs between successive
    checkpoints, recomputes the Merkle root at each checkpoint size from the raw entry
    bytes, and, given an auditor-kept ``trusted_checkpoint`` (signed note text), checks
    that the bundle extends it (a larger trusted checkpoint means rollback or
    truncation). ``strict_events`` also checks each entry is a canonical, schema-valid
    event. ``key`` pins the log's verifier key; without it the header's key is used,
    which only proves self-consistency.
    """
    started = time.perf_counter()
    result = VerifyResult(ok=False, message="")
    p = Path(path)
    try:
        with open(p, "rb") as f:
            head, verifier, result.key_source = _read_head(f, parse_key(key))
            result.origin, result.tree_size = head.origin, head.tree_size
            result.key = str(verifier)
            result.checkpoints_verified = len(head.checkpoints)
            if result.key_source == "bundle":
                result.warnings.append(
                    "verifier key taken from the bundle itself: pass --key to pin the log's key"
                )
            trusted = None
            if trusted_checkpoint is not None:
                trusted = load_trusted(trusted_checkpoint, verifier, head.origin)
                result.trusted_size = trusted.size
            targets, stops = root_targets(head.checkpoints, trusted, head.tree_size)

            def locate(cp_no: int, start: int, end: int) -> tuple[str, tuple[int, int]]:
                return _locate(p, head, cp_no, start, end)

            chunks = _iter_entry_chunks(f, head.tree_size)
            stream_roots(chunks, head.tree_size, targets, stops, strict_events, result, locate)
    except BundleError as exc:
        return failed(result, exc, started)
    except OSError as exc:
        result.message = f"cannot read bundle: {exc}"
        return result
    return succeeded(result, head.checkpoints[-1], started)


def inspect_bundle(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Header and checkpoints of a bundle (signatures checked with the bundle's own key)."""
    with open(path, "rb") as f:
        head, _, _ = _read_head(f, None)
    return {
        "origin": head.origin,
        "verifier_key": head.key,
        "tree_size": head.tree_size,
        "checkpoints": [
            {"size": cp.size, "root": cp.root.hex(), "extensions": list(cp.extensions)}
            for cp in head.checkpoints
        ],
    }
