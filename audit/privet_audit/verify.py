"""Verify a log's entries against its signed checkpoints, streaming.

Shared by export bundles (`privet_audit.bundle.verify_bundle`) and a log held elsewhere,
such as the platform's live database (`verify_entries`): both recompute the Merkle root
at every checkpoint size from the raw entry bytes, so neither trusts a stored tree.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from hashlib import sha256
from itertools import islice

from privet_audit.canonical import CanonicalError, parse_canonical
from privet_audit.checkpoint import Checkpoint, NoteError, Verifier, open_checkpoint
from privet_audit.events import event_errors
from privet_audit.merkle import EMPTY_ROOT, CompactRange

__all__ = ["BundleError", "VerifyResult", "verify_entries"]

Locate = Callable[[int, int, int], tuple[str, tuple[int, int]]]
"""``locate(checkpoint number, start, end)``: narrows a root mismatch in [start, end) to
(how it was narrowed, entry range)."""


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


def load_trusted(note: str, verifier: Verifier, origin: str) -> Checkpoint:
    try:
        return open_checkpoint(note, verifier, origin=origin)
    except NoteError as exc:
        raise BundleError(f"trusted checkpoint: {exc}") from exc


def root_targets(
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


def failed(result: VerifyResult, exc: BundleError, started: float) -> VerifyResult:
    result.message = str(exc)
    result.bad_entry = exc.entry
    result.bad_range = exc.entry_range
    result.bad_checkpoint = exc.checkpoint
    result.seconds = time.perf_counter() - started
    return result


def succeeded(result: VerifyResult, last: Checkpoint, started: float) -> VerifyResult:
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


def parse_key(key: str | Verifier | None) -> Verifier | None:
    if key is None or isinstance(key, Verifier):
        return key
    try:
        return Verifier.parse(key.strip())
    except NoteError as exc:
        raise BundleError(f"bad verifier key: {exc}") from exc


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
        verifier = parse_key(key)
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
            trusted = load_trusted(trusted_checkpoint, verifier, cps[0].origin)
            result.trusted_size = trusted.size
        targets, stops = root_targets(cps, trusted, total)

        def locate(cp_no: int, start: int, end: int) -> tuple[str, tuple[int, int]]:
            return "", (start, end)

        stream_roots(_batches(entries, total), total, targets, stops, strict_events, result, locate)
    except BundleError as exc:
        return failed(result, exc, started)
    return succeeded(result, cps[-1], started)


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


def stream_roots(
    chunks: Iterable[list[bytes]],
    total: int,
    targets: dict[int, tuple[str, bytes, int]],
    stops: list[int],
    strict_events: bool,
    result: VerifyResult,
    locate: Locate,
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
