"""Objects through envelope + blob store: binding, erasure, rollback, and the canary."""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from privet import crypto
from privet.config import Settings
from privet.db import session_scope

Ref = Callable[..., crypto.ObjectRef]


def test_stream_in_and_out_in_parts(
    engine: Engine,
    provider: crypto.LocalKeyProvider,
    store: crypto.LocalBlobStore,
    make_ref: Ref,
    tmp_path: Path,
) -> None:
    r = make_ref("model_version")
    weights = os.urandom(5 * crypto.SEGMENT_SIZE + 17)
    src = tmp_path / "weights.safetensors"
    src.write_bytes(weights)
    with session_scope(engine) as session, src.open("rb") as handle:
        a = crypto.write_object(
            session=session, provider=provider, store=store, ref=r, source=handle, part="weights"
        )
        b = crypto.write_object_bytes(
            session=session, provider=provider, store=store, ref=r, data=b"{}", part="card"
        )
    assert a.data_key_id == b.data_key_id  # one key per object, many parts
    assert a.blob.key == f"{r.project_id}/{r.kind}/{r.object_id}/weights"
    with session_scope(engine) as session:
        chunks = crypto.read_object(
            session=session, provider=provider, store=store, ref=r, part="weights"
        )
        assert b"".join(chunks) == weights
        with crypto.open_object(
            session=session, provider=provider, store=store, ref=r, part="weights"
        ) as reader:
            assert reader.read(100) == weights[:100]
            assert reader.read() == weights[100:]
        assert (
            crypto.read_object_bytes(
                session=session, provider=provider, store=store, ref=r, part="card"
            )
            == b"{}"
        )


def test_swapped_blobs_fail_to_decrypt(
    engine: Engine,
    provider: crypto.LocalKeyProvider,
    store: crypto.LocalBlobStore,
    make_ref: Ref,
) -> None:
    a, b = make_ref(), make_ref()
    with session_scope(engine) as session:
        for r in (a, b):
            crypto.write_object_bytes(
                session=session,
                provider=provider,
                store=store,
                ref=r,
                data=b"secret of " + r.object_id.encode(),
            )
            crypto.write_object_bytes(
                session=session,
                provider=provider,
                store=store,
                ref=r,
                data=b"other part",
                part="extra",
            )
    pa = store.root.joinpath(*crypto.blob_key(a).split("/"))
    pb = store.root.joinpath(*crypto.blob_key(b).split("/"))
    tmp = pa.with_name("swap")
    pa.rename(tmp)
    pb.rename(pa)
    tmp.rename(pb)
    with session_scope(engine) as session:
        for r in (a, b):
            with pytest.raises(crypto.CiphertextIntegrityError, match="another data key"):
                crypto.read_object_bytes(session=session, provider=provider, store=store, ref=r)
    # Two parts of one object share a key, so the binding to the part name must catch it.
    extra = pa.with_name("extra")
    pa.rename(tmp)
    extra.rename(pa)
    tmp.rename(extra)
    with (
        session_scope(engine) as session,
        pytest.raises(crypto.CiphertextIntegrityError, match="header authentication"),
    ):
        crypto.read_object_bytes(session=session, provider=provider, store=store, ref=a)


def test_a_rolled_back_write_leaves_no_readable_object(
    engine: Engine,
    provider: crypto.LocalKeyProvider,
    store: crypto.LocalBlobStore,
    make_ref: Ref,
) -> None:
    r = make_ref()
    with pytest.raises(RuntimeError), session_scope(engine) as session:
        crypto.write_object_bytes(
            session=session, provider=provider, store=store, ref=r, data=b"half registered?"
        )
        raise RuntimeError("the domain insert failed")
    with session_scope(engine) as session, pytest.raises(crypto.DataKeyNotFoundError):
        crypto.read_object_bytes(session=session, provider=provider, store=store, ref=r)
    # A retry of the same object replaces the unreadable leftover.
    with session_scope(engine) as session:
        crypto.write_object_bytes(
            session=session, provider=provider, store=store, ref=r, data=b"second try"
        )
    with session_scope(engine) as session:
        got = crypto.read_object_bytes(session=session, provider=provider, store=store, ref=r)
    assert got == b"second try"
    # ...but a committed object's blob is never overwritten.
    with session_scope(engine) as session, pytest.raises(crypto.BlobExistsError):
        crypto.write_object_bytes(
            session=session, provider=provider, store=store, ref=r, data=b"third"
        )


def test_erase_object_shreds_and_deletes(
    engine: Engine,
    provider: crypto.LocalKeyProvider,
    store: crypto.LocalBlobStore,
    make_ref: Ref,
) -> None:
    r, other = make_ref(), make_ref()
    with session_scope(engine) as session:
        for part in ("data", "index"):
            crypto.write_object_bytes(
                session=session,
                provider=provider,
                store=store,
                ref=r,
                data=b"personal data",
                part=part,
            )
        crypto.write_object_bytes(
            session=session, provider=provider, store=store, ref=other, data=b"stays"
        )
    with session_scope(engine) as session:
        row = crypto.erase_object(session=session, store=store, ref=r)
    assert row.destroyed_at is not None
    assert list(store.list()) == [crypto.blob_key(other)]
    with session_scope(engine) as session:
        with pytest.raises(crypto.DataKeyDestroyedError, match="erased"):
            crypto.read_object_bytes(session=session, provider=provider, store=store, ref=r)
        assert (
            crypto.read_object_bytes(session=session, provider=provider, store=store, ref=other)
            == b"stays"
        )


def _all_bytes_under(root: Path) -> list[tuple[Path, bytes]]:
    return [(p, p.read_bytes()) for p in sorted(root.rglob("*")) if p.is_file()]


def test_canary_never_reaches_disk_or_database(
    engine: Engine,
    home_settings: Settings,
    provider: crypto.LocalKeyProvider,
    store: crypto.LocalBlobStore,
    make_ref: Ref,
) -> None:
    canary = f"CANARY-{secrets.token_hex(16)}"
    needles = {
        "utf-8": canary.encode(),
        "utf-16-le": canary.encode("utf-16-le"),
        "hex": canary.encode().hex().encode(),
    }
    dataset = make_ref("dataset_version")
    model = make_ref("model_version")
    rows = "".join(f"{i},{canary} applied for a loan,1\n" for i in range(5000)).encode()
    with session_scope(engine) as session:
        crypto.write_object(
            session=session,
            provider=provider,
            store=store,
            ref=dataset,
            source=iter([rows[i : i + 7000] for i in range(0, len(rows), 7000)]),
        )
        crypto.write_object_bytes(
            session=session,
            provider=provider,
            store=store,
            ref=model,
            data=b"weights..." + canary.encode() + b"...more weights",
            part="weights",
        )
        keys = [
            crypto.unwrap_data_key(session=session, provider=provider, ref=r).key
            for r in (dataset, model)
        ]
        crypto.rotate(session=session, provider=provider)
    with session_scope(engine) as session:
        assert canary.encode() in crypto.read_object_bytes(
            session=session, provider=provider, store=store, ref=dataset
        )
    engine.dispose()  # flush SQLite's WAL into the main file as well

    found = []
    for path, data in _all_bytes_under(home_settings.home):
        for name, needle in needles.items():
            if needle in data:
                found.append((path, name))
        for key in keys:
            if key in data:
                found.append((path, "plaintext data key"))
    assert found == []
    assert any(p.name == "privet.db" for p, _ in _all_bytes_under(home_settings.home)) == (
        engine.dialect.name == "sqlite"
    )
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            dump = conn.execute(
                text("SELECT string_agg(t::text, '|') FROM data_keys AS t")
            ).scalar_one()
        assert canary not in dump and canary.encode().hex() not in dump
        for key in keys:
            assert key.hex() not in dump
    shutil.rmtree(home_settings.home / "blobs")
