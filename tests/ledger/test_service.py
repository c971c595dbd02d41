"""Query, export and verify functions behind the audit routes, and the `privet audit` CLI."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from privet.db import session_scope
from privet.kit.errors import InvalidInputError, NotFoundError
from privet.kit.ids import utcnow
from privet.ledger import EventSpec, emit, emit_many, proofs, queries
from privet.ledger.export import export_bundle
from privet.ledger.sequencer import Ledger
from privet.ledger.verify import verify_ledger
from privet_audit.bundle import verify_bundle
from privet_audit.checkpoint import open_checkpoint
from privet_audit.merkle import leaf_hash, verify_consistency, verify_inclusion


@pytest.fixture
def filled(engine: Engine, ledger: Ledger) -> Engine:
    with session_scope(engine) as s:
        emit(
            s, type="project.created", actor="prn_a", project="prj_1", objects={"project": "prj_1"}
        )
    ledger.integrate_now()  # a checkpoint of size 1
    with session_scope(engine) as s:
        emit_many(
            s,
            [
                EventSpec(
                    "model.predicted",
                    "prn_app",
                    project="prj_1" if i % 2 else "prj_2",
                    objects={"model_version": f"mv_{i % 3}"},
                    digests={"input": "hmac-sha256:" + f"{i:064x}"},
                )
                for i in range(70)
            ],
        )
    with session_scope(engine) as s:
        emit(s, type="auth.decision", actor="prn_b", outcome="deny", details={"policy_ids": ["p1"]})
    ledger.integrate_now()
    return engine


def test_checkpoint(filled: Engine, ledger: Ledger) -> None:
    with session_scope(filled) as s:
        cp = queries.get_checkpoint(session=s)
    assert cp.tree_size == 72 and cp.origin == "privet.local/ledger"
    assert open_checkpoint(cp.note, ledger.verifier).root.hex() == cp.root_hash
    assert cp.verifier_key == str(ledger.verifier)


def test_checkpoint_before_any(engine: Engine, ledger: Ledger, tmp_path: Path) -> None:
    with pytest.raises(NotFoundError), session_scope(engine) as s:
        queries.get_checkpoint(session=s)
    # an empty log gets a size-0 checkpoint on request, and exports and verifies
    head = ledger.integrate_now()
    assert head.checkpoint_size == 0 and head.checkpoint_note
    with session_scope(engine) as s:
        assert queries.get_checkpoint(session=s).tree_size == 0
        assert verify_ledger(session=s, trusted_checkpoint=head.checkpoint_note).ok
        export_bundle(session=s, out=tmp_path / "empty.bundle")
    assert verify_bundle(tmp_path / "empty.bundle", trusted_checkpoint=head.checkpoint_note).ok
    assert ledger.integrate_now().checkpoint_size == 0  # not signed twice
    with session_scope(engine) as s:
        emit(s, type="test.event", actor=None)
    assert ledger.integrate_now().checkpoint_size == 1


def test_events_filters_and_paging(filled: Engine) -> None:
    with session_scope(filled) as s:
        page = queries.list_events(session=s, limit=10)
        assert [e.index for e in page.items] == list(range(10)) and page.next_start == 10
        assert page.tree_size == 72
        assert leaf_hash(page.items[0].entry.encode()).hex() == page.items[0].leaf_hash
        assert queries.list_events(session=s, start=70, limit=10).next_start is None
        typed = queries.list_events(session=s, type="auth.decision")
        assert [e.index for e in typed.items] == [71]
        assert typed.items[0].event["outcome"] == "deny"
        by_obj = queries.list_events(session=s, object_id="mv_1", limit=1000)
        assert len(by_obj.items) == len([i for i in range(70) if i % 3 == 1])
        assert all(e.event["objects"]["model_version"] == "mv_1" for e in by_obj.items)
        by_project = queries.list_events(session=s, project="prj_2", type="model.predicted")
        assert len(by_project.items) == 35
        # paging through a filter
        first = queries.list_events(session=s, object_id="mv_0", limit=5)
        second = queries.list_events(
            session=s, object_id="mv_0", limit=5, start=first.next_start or 0
        )
        assert first.items[-1].index < second.items[0].index
        now = utcnow()
        assert len(queries.list_events(session=s, since=now + timedelta(hours=1)).items) == 0
        assert len(queries.list_events(session=s, until=now + timedelta(hours=1)).items) == 72
        assert queries.list_events(session=s, actor="prn_b").items[0].index == 71
        with pytest.raises(InvalidInputError):
            queries.list_events(session=s, limit=0)
        with pytest.raises(InvalidInputError, match="timezone"):
            queries.list_events(session=s, since=now.replace(tzinfo=None))


def test_event_rows_are_list_events_without_the_model(filled: Engine) -> None:
    """``iter_event_rows`` pages through what ``list_events`` lists (same filters)."""
    with session_scope(filled) as s:
        for query in ({}, {"actor": "prn_b"}, {"start": 30}, {"type": "zzz.none"}):
            want = queries.list_events(session=s, limit=1000, **query).items  # type: ignore[arg-type]
            for limit in (7, 1000):
                rows = list(queries.iter_event_rows(session=s, limit=limit, **query))  # type: ignore[arg-type]
                assert [(r.index, r.entry, r.event) for r in rows] == [
                    (e.index, e.entry, e.event) for e in want
                ]


def test_inclusion_proofs(filled: Engine, ledger: Ledger) -> None:
    with session_scope(filled) as s:
        for size in (1, 50, 72):
            for index in {0, size // 2, size - 1}:
                p = queries.get_inclusion_proof(session=s, index=index, tree_size=size)
                verify_inclusion(
                    bytes.fromhex(p.leaf_hash),
                    index,
                    size,
                    [bytes.fromhex(h) for h in p.hashes],
                    bytes.fromhex(p.root_hash),
                )
        latest = queries.get_inclusion_proof(session=s, index=5)
        assert latest.tree_size == 72 and latest.checkpoint is not None
        assert open_checkpoint(latest.checkpoint, ledger.verifier).root.hex() == latest.root_hash
        by_entry = queries.get_inclusion_proof(session=s, entry_id=1)
        assert by_entry.index == 0
        with pytest.raises(InvalidInputError):
            queries.get_inclusion_proof(session=s, index=72)
        with pytest.raises(InvalidInputError):
            queries.get_inclusion_proof(session=s, index=1, tree_size=1000)
        with pytest.raises(NotFoundError):
            queries.get_inclusion_proof(session=s, entry_id=10_000)


def test_batched_proofs_of_dense_sparse_and_mixed_leaves(filled: Engine) -> None:
    """``proofs.inclusion_proofs`` (ranges for runs of leaves, lists for the rest, in
    chunks) gives the proof ``get_inclusion_proof`` gives, leaf by leaf."""
    picks = [0, 1, 2, 3, 5, 9, 10, 11, 12, 13, 30, 40, 41, 44, 60, 61, 62, 70, 71]
    with session_scope(filled) as s:
        for size in (72, 64, 45):
            want = [i for i in picks if i < size]
            for chunk in (1, 4, 1000):
                got = proofs.inclusion_proofs(s.connection(), want, size, chunk=chunk)
                for index, proof in got:
                    one = queries.get_inclusion_proof(session=s, index=index, tree_size=size)
                    assert [h.hex() for h in proof] == one.hashes


def test_consistency_proofs(filled: Engine) -> None:
    with session_scope(filled) as s:
        for size1, size2 in [(0, 72), (1, 72), (50, 72), (33, 64), (72, 72), (7, 8)]:
            p = queries.get_consistency_proof(session=s, size1=size1, size2=size2)
            verify_consistency(
                size1,
                size2,
                [bytes.fromhex(h) for h in p.hashes],
                bytes.fromhex(p.root1),
                bytes.fromhex(p.root2),
            )
        p = queries.get_consistency_proof(session=s, size1=1)
        assert p.size2 == 72 and p.checkpoint1 is not None and p.checkpoint2 is not None
        assert queries.get_consistency_proof(session=s, size1=50).checkpoint1 is None
        with pytest.raises(InvalidInputError):
            queries.get_consistency_proof(session=s, size1=73, size2=72)


def test_export_bundle_verifies_offline(filled: Engine, ledger: Ledger, tmp_path: Path) -> None:
    out = tmp_path / "ledger.bundle"
    with session_scope(filled) as s:
        res = export_bundle(session=s, out=out)
    assert res.tree_size == 72 and res.checkpoints >= 2 and out.stat().st_size == res.bytes
    with session_scope(filled) as s:
        kept = queries.get_checkpoint(session=s).note
    result = verify_bundle(
        out, trusted_checkpoint=kept, strict_events=True, key=str(ledger.verifier)
    )
    assert result.ok, result.message
    assert result.entries_verified == 72


def test_cli_verify_export_checkpoint(filled: Engine, ledger: Ledger, tmp_path: Path) -> None:
    from privet.cli.ledger import audit_app

    runner = CliRunner()
    res = runner.invoke(audit_app, ["checkpoint"])
    assert res.exit_code == 0, res.output
    kept = tmp_path / "kept.note"
    kept.write_text(res.stdout)
    res = runner.invoke(audit_app, ["verify", "--trusted-checkpoint", str(kept)])
    assert res.exit_code == 0 and "OK: 72 entries" in res.stdout, res.output
    out = tmp_path / "x.bundle"
    res = runner.invoke(audit_app, ["export", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert verify_bundle(out, trusted_checkpoint=kept.read_text()).ok
    # tamper and fail
    from sqlalchemy import text

    from .conftest import owner_bypass

    with owner_bypass(filled) as conn:
        conn.execute(text("DELETE FROM ledger_leaves WHERE idx = 3"))
    res = runner.invoke(audit_app, ["verify", "--trusted-checkpoint", str(kept)])
    assert res.exit_code == 1 and "leaf index 3" in res.output


def test_long_reads_do_not_block_or_wait_for_writers(filled: Engine, tmp_path: Path) -> None:
    """Verify and export read while a writer holds SQLite's write lock (and vice versa)."""
    import time

    from sqlmodel import Session

    from privet.db import read_session

    writer = Session(filled)
    emit(writer, type="test.pending", actor="prn_w")  # holds the write lock on SQLite
    try:
        started = time.monotonic()
        with session_scope(filled) as s:
            assert verify_ledger(session=s).ok
        with read_session(filled) as s:
            assert verify_ledger(session=s).ok
            export_bundle(session=s, out=tmp_path / "b.bundle")
        assert time.monotonic() - started < 10
    finally:
        writer.rollback()
        writer.close()


def test_entry_parse_is_json_loads() -> None:
    import json

    for text in ['{"a":[1,2.5,"\\u00e9"]}', ' {"a":1} ', "[]", '"x"']:
        assert queries._parse(text) == json.loads(text)
    for bad in ["", '{"a":1}x', "{", "nope"]:
        with pytest.raises(json.JSONDecodeError):
            queries._parse(bad)
