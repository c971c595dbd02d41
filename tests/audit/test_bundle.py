"""Export bundles: a good bundle verifies; every kind of tampering is caught and named."""

from __future__ import annotations

from pathlib import Path

import pytest

from privet_audit.bundle import (
    BundleError,
    VerifyResult,
    inspect_bundle,
    verify_bundle,
    write_bundle,
)
from privet_audit.canonical import canonical_bytes
from privet_audit.checkpoint import Checkpoint, Signer, sign_checkpoint
from privet_audit.merkle import MemoryTree

from .helpers import ORIGIN, Log, build_log, event_bytes

HEADER_LINES = 1
CHECKPOINTS = 10  # the `log` fixture: 100 entries, a checkpoint every 10


def lines_of(path: Path) -> list[bytes]:
    return path.read_bytes().split(b"\n")


def entry_line(i: int) -> int:
    return HEADER_LINES + CHECKPOINTS + i


def rewrite(path: Path, lines: list[bytes]) -> Path:
    path.write_bytes(b"\n".join(lines))
    return path


def signed_bundle(
    path: Path, signer: Signer, entries: list[bytes], sizes: list[int]
) -> tuple[Path, MemoryTree]:
    tree = MemoryTree.from_entries(entries)
    notes = [sign_checkpoint(Checkpoint(ORIGIN, s, tree.root(s)), signer) for s in sizes]
    write_bundle(path, verifier_key=str(signer.verifier), checkpoints=notes, entries=entries)
    return path, tree


def failed(res: VerifyResult, *fragments: str) -> VerifyResult:
    assert not res.ok, res.message
    for frag in fragments:
        assert frag in res.message, res.message
    return res


def test_good_bundle_verifies(bundle_path: Path, log: Log) -> None:
    res = verify_bundle(bundle_path, key=log.vkey, strict_events=True)
    assert res.ok, res.message
    assert res.entries_verified == 100 and res.checkpoints_verified == 10
    assert res.key_source == "pinned" and not res.warnings
    assert res.root == log.tree.root().hex()
    assert res.message.startswith("OK: 100 entries, 10 checkpoints")


def test_unpinned_key_verifies_with_a_warning(bundle_path: Path) -> None:
    res = verify_bundle(bundle_path)
    assert res.ok and res.key_source == "bundle"
    assert "pass --key" in res.warnings[0]


def test_layout_is_header_checkpoints_then_verbatim_entries(bundle_path: Path, log: Log) -> None:
    lines = lines_of(bundle_path)
    assert lines[entry_line(0) : entry_line(100)] == log.entries
    assert lines[-1] == b""
    info = inspect_bundle(bundle_path)
    assert info["tree_size"] == 100 and [c["size"] for c in info["checkpoints"]] == list(
        range(10, 101, 10)
    )


def test_trusted_checkpoint_inside_the_bundle(bundle_path: Path, log: Log) -> None:
    for size in (0, 1, 37, 40, 100):
        res = verify_bundle(bundle_path, key=log.vkey, trusted_checkpoint=log.checkpoint(size))
        assert res.ok, res.message
        assert res.trusted_size == size


def test_flipped_byte_in_an_entry(bundle_path: Path, log: Log) -> None:
    lines = lines_of(bundle_path)
    line = bytearray(lines[entry_line(37)])
    line[line.index(b"prn_") + 5] ^= 0x01
    lines[entry_line(37)] = bytes(line)
    res = failed(verify_bundle(rewrite(bundle_path, lines), key=log.vkey), "checkpoint 3 (size 40)")
    assert res.bad_range is not None and res.bad_range[0] <= 37 < res.bad_range[1]
    assert res.bad_range[0] >= 30 and res.bad_checkpoint == 3


def test_flipped_byte_is_pinned_to_one_entry_with_dense_checkpoints(
    tmp_path: Path, signer: Signer
) -> None:
    entries = [event_bytes(i) for i in range(16)]
    path, _ = signed_bundle(tmp_path / "b", signer, entries, list(range(1, 17)))
    lines = lines_of(path)
    lines[1 + 16 + 9] = lines[1 + 16 + 9].replace(b'"label":1', b'"label":0')
    res = failed(verify_bundle(rewrite(path, lines), key=str(signer.verifier)), "entry 9 ")
    assert res.bad_entry == 9 and res.bad_checkpoint == 9


def test_deleted_entry(bundle_path: Path, log: Log) -> None:
    lines = lines_of(bundle_path)
    del lines[entry_line(55)]
    res = failed(verify_bundle(rewrite(bundle_path, lines), key=log.vkey), "checkpoint 5 (size 60)")
    assert res.bad_range is not None and res.bad_range[0] <= 55 < res.bad_range[1]


def test_reordered_entries(bundle_path: Path, log: Log) -> None:
    lines = lines_of(bundle_path)
    a, b = entry_line(20), entry_line(21)
    lines[a], lines[b] = lines[b], lines[a]
    res = failed(verify_bundle(rewrite(bundle_path, lines), key=log.vkey), "checkpoint 2 (size 30)")
    assert res.bad_range == (20, 24)


def test_truncated_tail(bundle_path: Path, log: Log) -> None:
    lines = lines_of(bundle_path)
    res = failed(
        verify_bundle(rewrite(bundle_path, [*lines[: entry_line(97)], b""]), key=log.vkey),
        "bundle truncated",
        "97 of the 100",
    )
    assert res.bad_entry == 97


def test_appended_entry(bundle_path: Path, log: Log) -> None:
    lines = lines_of(bundle_path)
    lines.insert(-1, event_bytes(100))
    failed(verify_bundle(rewrite(bundle_path, lines), key=log.vkey), "unexpected data after")


def test_empty_entry_line(bundle_path: Path, log: Log) -> None:
    lines = lines_of(bundle_path)
    lines[entry_line(4)] = b""
    res = failed(verify_bundle(rewrite(bundle_path, lines), key=log.vkey), "entry 4 is empty")
    assert res.bad_entry == 4


def test_consistent_truncation_is_caught_by_the_trusted_checkpoint(
    tmp_path: Path, log: Log
) -> None:
    # An attacker who drops the tail and the last checkpoints makes a self-consistent
    # bundle (an older copy of the log); only a checkpoint kept earlier exposes it.
    old = tmp_path / "old.bundle"
    write_bundle(old, verifier_key=log.vkey, checkpoints=log.notes[:5], entries=log.entries[:50])
    assert verify_bundle(old, key=log.vkey).ok
    res = failed(
        verify_bundle(old, key=log.vkey, trusted_checkpoint=log.checkpoint(100)),
        "rollback or truncation",
        "size 100",
        "size 50",
    )
    assert res.trusted_size == 100


def test_replaced_checkpoint_from_a_fork(bundle_path: Path, log: Log, signer: Signer) -> None:
    # The real key signed a checkpoint over a different history (a forked log).
    forked = list(log.entries)
    forked[45] = event_bytes(1045)
    tree = MemoryTree.from_entries(forked)
    note = sign_checkpoint(Checkpoint(ORIGIN, 50, tree.root(50)), signer)
    lines = lines_of(bundle_path)
    import json

    rec = json.loads(lines[1 + 4])
    rec["checkpoint"] = note
    lines[1 + 4] = canonical_bytes(rec)
    res = failed(verify_bundle(rewrite(bundle_path, lines), key=log.vkey), "checkpoint 4:")
    assert "inconsistent" in res.message and res.bad_checkpoint == 4


def test_replaced_checkpoint_of_another_size(bundle_path: Path, log: Log) -> None:
    lines = lines_of(bundle_path)
    lines[1 + 4] = lines[1 + 6]
    res = failed(verify_bundle(rewrite(bundle_path, lines), key=log.vkey), "checkpoint 4")
    assert res.bad_checkpoint == 4


def test_signature_forged_with_another_key(
    bundle_path: Path, log: Log, other_signer: Signer
) -> None:
    import json

    lines = lines_of(bundle_path)
    rec = json.loads(lines[1 + 2])
    rec["checkpoint"] = sign_checkpoint(Checkpoint(ORIGIN, 30, log.tree.root(30)), other_signer)
    lines[1 + 2] = canonical_bytes(rec)
    failed(
        verify_bundle(rewrite(bundle_path, lines), key=log.vkey),
        "checkpoint 2",
        "no signature from a trusted key",
    )


def test_signature_forged_under_the_real_key_id(bundle_path: Path, log: Log) -> None:
    lines = lines_of(bundle_path)
    line = lines[1 + 2]
    at = line.index("\u2014".encode())  # the em dash that starts the signature line
    # Corrupt one base64 character inside the signature (after the key id).
    pos = line.index(b" ", at + 4) + 1 + 20
    lines[1 + 2] = line[:pos] + (b"A" if line[pos : pos + 1] != b"A" else b"B") + line[pos + 1 :]
    failed(
        verify_bundle(rewrite(bundle_path, lines), key=log.vkey),
        "checkpoint 2",
        "invalid signature",
    )


def test_rewritten_log_resigned_with_an_unknown_key(
    tmp_path: Path, log: Log, other_signer: Signer
) -> None:
    entries = list(log.entries)
    entries[3] = event_bytes(1003)
    path, _ = signed_bundle(tmp_path / "evil", other_signer, entries, list(range(10, 101, 10)))
    # Self-consistent, so it verifies only when the auditor does not pin the key...
    assert verify_bundle(path).ok
    # ...and fails once the key is pinned or a kept checkpoint is checked.
    failed(verify_bundle(path, key=log.vkey), "checkpoint 0", "no signature from a trusted key")
    failed(
        verify_bundle(path, trusted_checkpoint=log.checkpoint(40)),
        "trusted checkpoint",
        "no signature from a trusted key",
    )


def test_rollback_to_an_older_copy(tmp_path: Path, signer: Signer, log: Log) -> None:
    older = build_log(signer, 60, 10)
    path = tmp_path / "older.bundle"
    write_bundle(path, verifier_key=older.vkey, checkpoints=older.notes, entries=older.entries)
    assert verify_bundle(path, key=log.vkey, trusted_checkpoint=log.checkpoint(50)).ok
    failed(
        verify_bundle(path, key=log.vkey, trusted_checkpoint=log.checkpoint(90)),
        "rollback or truncation",
    )


def test_trusted_checkpoint_from_another_history(
    bundle_path: Path, log: Log, signer: Signer
) -> None:
    forked = list(log.entries)
    forked[5] = event_bytes(2005)
    tree = MemoryTree.from_entries(forked)
    for size, frag in [(37, "the trusted checkpoint (size 37)"), (40, "fork")]:
        note = sign_checkpoint(Checkpoint(ORIGIN, size, tree.root(size)), signer)
        failed(verify_bundle(bundle_path, key=log.vkey, trusted_checkpoint=note), frag)


def test_strict_events_rejects_non_canonical_and_invalid_entries(
    tmp_path: Path, signer: Signer
) -> None:
    entries = [event_bytes(i) for i in range(8)]
    entries[3] = b'{"v": 1}'
    path, _ = signed_bundle(tmp_path / "a", signer, entries, [4, 8])
    assert verify_bundle(path, key=str(signer.verifier)).ok
    failed(verify_bundle(path, strict_events=True), "entry 3 is not canonical JSON")
    entries[3] = canonical_bytes({"v": 1})
    path, _ = signed_bundle(tmp_path / "b", signer, entries, [4, 8])
    failed(verify_bundle(path, strict_events=True), "entry 3 is not a valid event", "missing")


def test_write_bundle_rejects_bad_input(tmp_path: Path, log: Log) -> None:
    with pytest.raises(BundleError, match="got 99 entries"):
        write_bundle(
            tmp_path / "x", verifier_key=log.vkey, checkpoints=log.notes, entries=log.entries[:99]
        )
    assert not list(tmp_path.iterdir())
    with pytest.raises(BundleError, match="increasing"):
        write_bundle(
            tmp_path / "x",
            verifier_key=log.vkey,
            checkpoints=list(reversed(log.notes)),
            entries=log.entries,
        )
    bad = [*log.entries[:10]]
    bad[2] = b"a\nb"
    with pytest.raises(BundleError, match="entry 2"):
        write_bundle(tmp_path / "x", verifier_key=log.vkey, checkpoints=log.notes[:1], entries=bad)


def test_write_bundle_with_a_node_callable(tmp_path: Path, log: Log) -> None:
    path = tmp_path / "n.bundle"
    write_bundle(
        path,
        verifier_key=log.vkey,
        checkpoints=log.notes,
        entries=iter(log.entries),
        node=log.tree.node,
    )
    assert verify_bundle(path, key=log.vkey).ok


def test_not_a_bundle(tmp_path: Path) -> None:
    p = tmp_path / "x"
    p.write_bytes(b'{"format":"other"}\n')
    failed(verify_bundle(p), "not a privet-audit-bundle")
    failed(verify_bundle(tmp_path / "missing"), "cannot read bundle")
