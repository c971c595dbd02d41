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
raw line bytes without decoding anything.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from hashlib import sha256
from itertools import islice
from pathlib import Path
from typing import IO, Any

from privet_audit.canonical import CanonicalError, canonical_bytes, parse_canonical
from privet_audit.checkpoint import (
    Checkpoint,
    NoteError,
    Verifier,
    check_consistency,
    open_checkpoint,
)
from privet_audit.events import event_errors
from privet_audit.merkle import (
    EMPTY_ROOT,
    CompactRange,
    MemoryTree,
    NodeFn,
    consistency_proof,
    consistency_proof_ranges,
    root_hash,
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


class BundleError(ValueError):
    """A bundle is malformed or fails verification; ``index``/``checkpoint`` locate it."""

    def __init__(
        self,
        message: str,
        *,
        entry: int | None = None,
        entry_range: tuple[int, int] | None = None,
        checkpoint: int | None = None,
    ) -> None:
        super().__init__(message)
        self.entry = entry
        self.entry_range = entry_range
        self.checkpoint = checkpoint


@dataclass
class VerifyResult:
    """Outcome of ``verify_bundle``: ``ok`` plus a one-line ``message`` for humans."""

    ok: bool
    message: str
    origin: str = ""
    tree_size: int = 0
    root: str = ""
    entries_verified: int = 0
    checkpoints_verified: int = 0
    key: str = ""
    key_source: str = ""  # "pinned" (given by the auditor) or "bundle" (taken from it)
    trusted_size: int | None = None
    bad_entry: int | None = None
    bad_range: tuple[int, int] | None = None
    bad_checkpoint: int | None = None
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)

    @property
    def events_per_second(self) -> float:
        """Verification throughput."""
        return self.entries_verified / self.seconds if self.seconds > 0 else 0.0


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
    if not checkpoints:
        raise BundleError("a bundle needs at least one checkpoint")
    cps = [open_checkpoint(note, verifier) for note in checkpoints]
    origin = cps[0].origin
    for i, cp in enumerate(cps):
        if cp.origin != origin:
            raise BundleError(f"checkpoint {i} is for origin {cp.origin!r}, not {origin!r}")
        if i and cp.size <= cps[i - 1].size:
            raise BundleError("checkpoints must be in strictly increasing size order")
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
    prev = Checkpoint(origin, 0, EMPTY_ROOT)
    for i, (cp, proof) in enumerate(zip(cps, proofs, strict=True)):
        try:
            check_consistency(prev, cp, proof)
        except NoteError as exc:
            raise BundleError(f"checkpoint {i}: {exc}", checkpoint=i) from exc
        prev = cp

    final = Path(path)
    partial = final.with_name(final.name + ".partial")
    count = 0
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
    if count != tree_size:
        partial.unlink()
        raise BundleError(f"got {count} entries, the last checkpoint needs {tree_size}")
    os.replace(partial, final)
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


def _load_trusted(note: str, verifier: Verifier, origin: str) -> Checkpoint:
    try:
        return open_checkpoint(note, verifier, origin=origin)
    except NoteError as exc:
        raise BundleError(f"trusted checkpoint: {exc}") from exc


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


def _targets(
    checkpoints: Sequence[Checkpoint], trusted: Checkpoint | None, tree_size: int
) -> tuple[dict[int, tuple[str, bytes, int]], list[int]]:
    """Sizes at which the streamed root must match a signed root: name, root, cp number."""
    targets: dict[int, tuple[str, bytes, int]] = {}
    for i, cp in enumerate(checkpoints):
        targets[cp.size] = (f"checkpoint {i}", cp.root, i)
    if trusted is not None:
        if trusted.size > tree_size:
            raise BundleError(
                f"rollback or truncation: the trusted checkpoint has size {trusted.size} "
                f"but the log ends at size {tree_size}",
                entry=tree_size,
            )
        known = targets.get(trusted.size)
        if known is not None and known[1] != trusted.root:
            raise BundleError(
                f"fork: trusted checkpoint and {known[0]} both have size {trusted.size} "
                "but different roots (the log was rewritten)",
                checkpoint=known[2],
            )
        if known is None:
            targets[trusted.size] = ("the trusted checkpoint", trusted.root, -1)
    if 0 in targets:
        name, root, cp_no = targets.pop(0)
        if root != EMPTY_ROOT:
            raise BundleError(f"{name} has size 0 but a non-empty root", checkpoint=cp_no)
    return targets, sorted(targets)


def _fail(result: VerifyResult, exc: BundleError, started: float) -> VerifyResult:
    result.message = str(exc)
    result.bad_entry = exc.entry
    result.bad_range = exc.entry_range
    result.bad_checkpoint = exc.checkpoint
    result.seconds = time.perf_counter() - started
    return result


def _succeed(result: VerifyResult, last: Checkpoint, started: float) -> VerifyResult:
    result.ok = True
    result.seconds = time.perf_counter() - started
    result.root = last.root.hex()
    trusted_note = (
        f", extends trusted checkpoint of size {result.trusted_size}"
        if result.trusted_size is not None
        else ""
    )
    result.message = (
        f"OK: {result.entries_verified} entries, {result.checkpoints_verified} checkpoints "
        f"of {last.origin} verified (root {last.root.hex()[:16]}… at size {last.size}, "
        f"key {result.key_source}){trusted_note}"
    )
    return result


def _parse_key(key: str | Verifier | None) -> Verifier | None:
    if key is None or isinstance(key, Verifier):
        return key
    try:
        return Verifier.parse(key.strip())
    except NoteError as exc:
        raise BundleError(f"bad verifier key: {exc}") from exc


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
            head, verifier, result.key_source = _read_head(f, _parse_key(key))
            result.origin, result.tree_size = head.origin, head.tree_size
            result.key = str(verifier)
            result.checkpoints_verified = len(head.checkpoints)
            if result.key_source == "bundle":
                result.warnings.append(
                    "verifier key taken from the bundle itself: pass --key to pin the log's key"
                )
            trusted = None
            if trusted_checkpoint is not None:
                trusted = _load_trusted(trusted_checkpoint, verifier, head.origin)
                result.trusted_size = trusted.size
            targets, stops = _targets(head.checkpoints, trusted, head.tree_size)

            def locate(cp_no: int, start: int, end: int) -> tuple[str, tuple[int, int]]:
                return _locate(p, head, cp_no, start, end)

            chunks = _iter_entry_chunks(f, head.tree_size)
            _stream(chunks, head.tree_size, targets, stops, strict_events, result, locate)
    except BundleError as exc:
        return _fail(result, exc, started)
    except OSError as exc:
        result.message = f"cannot read bundle: {exc}"
        return result
    return _succeed(result, head.checkpoints[-1], started)


def verify_entries(
    entries: Iterable[bytes],
    *,
    checkpoints: Sequence[str],
    key: str | Verifier,
    trusted_checkpoint: str | None = None,
    strict_events: bool = False,
) -> VerifyResult:
    """Verify a log held elsewhere (e.g. the live database) the way a bundle is verified.

    ``entries`` yields leaf bytes from index 0 in order; ``checkpoints`` are signed
    notes in any order: a signature failure names a checkpoint by its position in
    ``checkpoints``, a root mismatch by its rank in increasing size. Entries past the
    largest checkpoint are not consumed. Without consistency proofs a root mismatch is
    located between two checkpoints only.
    """
    started = time.perf_counter()
    result = VerifyResult(ok=False, message="", key_source="pinned")
    try:
        verifier = _parse_key(key)
        assert verifier is not None
        result.key = str(verifier)
        if not checkpoints:
            raise BundleError("no checkpoints to verify against")
        cps: list[Checkpoint] = []
        for i, note in enumerate(checkpoints):
            try:
                cps.append(open_checkpoint(note, verifier))
            except NoteError as exc:
                raise BundleError(f"checkpoint {i}: {exc}", checkpoint=i) from exc
        order = sorted(range(len(cps)), key=lambda i: cps[i].size)
        cps = [cps[i] for i in order]
        for i, cp in enumerate(cps):
            if cp.origin != cps[0].origin:
                raise BundleError(f"checkpoint {order[i]} is for another origin {cp.origin!r}")
            if i and cp.size == cps[i - 1].size and cp.root != cps[i - 1].root:
                raise BundleError(
                    f"fork: two checkpoints of size {cp.size} with different roots",
                    checkpoint=order[i],
                )
        cps = [cp for i, cp in enumerate(cps) if not i or cp.size != cps[i - 1].size]
        result.origin = cps[0].origin
        result.tree_size = total = cps[-1].size
        result.checkpoints_verified = len(checkpoints)
        trusted = None
        if trusted_checkpoint is not None:
            trusted = _load_trusted(trusted_checkpoint, verifier, cps[0].origin)
            result.trusted_size = trusted.size
        targets, stops = _targets(cps, trusted, total)

        def locate(cp_no: int, start: int, end: int) -> tuple[str, tuple[int, int]]:
            return "", (start, end)

        _stream(_batches(entries, total), total, targets, stops, strict_events, result, locate)
    except BundleError as exc:
        return _fail(result, exc, started)
    return _succeed(result, cps[-1], started)


def _batches(entries: Iterable[bytes], total: int, size: int = 65536) -> Iterator[list[bytes]]:
    """Group the first ``total`` entries into lists; complain if there are fewer."""
    it = iter(entries)
    seen = 0
    while seen < total:
        batch = list(islice(it, min(size, total - seen)))
        if not batch:
            raise BundleError(
                f"log truncated: it has {seen} of the {total} entries its checkpoints cover "
                f"(entries {seen}..{total - 1} missing)",
                entry=seen,
            )
        seen += len(batch)
        yield batch


def _stream(
    chunks: Iterable[list[bytes]],
    total: int,
    targets: dict[int, tuple[str, bytes, int]],
    stops: list[int],
    strict_events: bool,
    result: VerifyResult,
    locate: Callable[[int, int, int], tuple[str, tuple[int, int]]],
) -> None:
    """Hash entries in order, checking the root at each stop size."""
    tree = CompactRange()
    sha = sha256
    stop_i = 0
    prev_stop = 0
    for chunk in chunks:
        if b"" in chunk:
            bad = tree.size + chunk.index(b"")
            raise BundleError(f"entry {bad} is empty", entry=bad)
        if strict_events:
            _check_events(chunk, tree.size)
        pos = 0
        n = len(chunk)
        while pos < n:
            stop = stops[stop_i] if stop_i < len(stops) else total
            take = min(n - pos, stop - tree.size)
            part = chunk[pos : pos + take]
            tree.extend([sha(b"\x00" + e).digest() for e in part], collect=False)
            pos += take
            if stop_i < len(stops) and tree.size == stop:
                name, want, cp_no = targets[stop]
                if tree.root() != want:
                    how, rng = locate(cp_no, prev_stop, stop)
                    single = rng[1] - rng[0] == 1
                    where = f"entry {rng[0]}" if single else f"entries {rng[0]}..{rng[1] - 1}"
                    raise BundleError(
                        f"{name} (size {stop}) does not match the entries: {where} "
                        f"altered, removed, inserted or reordered{how}",
                        entry=rng[0] if single else None,
                        entry_range=rng,
                        checkpoint=cp_no if cp_no >= 0 else None,
                    )
                prev_stop = stop
                stop_i += 1
        result.entries_verified = tree.size


def _check_events(chunk: list[bytes], first: int) -> None:
    for i, entry in enumerate(chunk):
        try:
            value = parse_canonical(entry)
        except CanonicalError as exc:
            raise BundleError(
                f"entry {first + i} is not canonical JSON: {exc}", entry=first + i
            ) from exc
        errors = event_errors(value)
        if errors:
            raise BundleError(
                f"entry {first + i} is not a valid event: {errors[0]}", entry=first + i
            )


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
