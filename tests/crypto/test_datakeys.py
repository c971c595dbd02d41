"""The data-key registry on SQLite and PostgreSQL: creation, rotation, retirement, shredding."""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest
from sqlalchemy import Engine, text

from privet import crypto
from privet.db import session_scope

Ref = Callable[..., crypto.ObjectRef]


def put(
    engine: Engine,
    provider: crypto.KeyProvider,
    store: crypto.BlobStore,
    r: crypto.ObjectRef,
    data: bytes,
) -> None:
    with session_scope(engine) as session:
        crypto.write_object_bytes(session=session, provider=provider, store=store, ref=r, data=data)


def get(
    engine: Engine, provider: crypto.KeyProvider, store: crypto.BlobStore, r: crypto.ObjectRef
) -> bytes:
    with session_scope(engine) as session:
        return crypto.read_object_bytes(session=session, provider=provider, store=store, ref=r)


def test_rows_hold_only_wrapped_keys(
    engine: Engine, provider: crypto.LocalKeyProvider, make_ref: Ref
) -> None:
    r = make_ref()
    with session_scope(engine) as session:
        handle = crypto.create_data_key(session=session, provider=provider, ref=r)
    assert "key=" not in repr(handle)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT * FROM data_keys")).all()
    assert len(rows) == 1
    for value in rows[0]:
        if isinstance(value, (bytes, memoryview)):
            assert handle.key not in bytes(value)
        assert handle.key.hex() not in str(value)
    with session_scope(engine) as session:
        row = crypto.get_data_key(session=session, ref=r)
        assert (row.kek_id, row.kek_version, row.destroyed_at) == ("local", 1, None)
        again = crypto.unwrap_data_key(session=session, provider=provider, ref=r)
        assert again.key == handle.key and again.key_id == handle.key_id == row.id


def test_one_key_per_object_and_project_must_match(
    engine: Engine, provider: crypto.LocalKeyProvider, make_ref: Ref
) -> None:
    r = make_ref()
    with session_scope(engine) as session:
        crypto.create_data_key(session=session, provider=provider, ref=r)
    with session_scope(engine) as session, pytest.raises(crypto.DataKeyExistsError):
        crypto.create_data_key(session=session, provider=provider, ref=r)
    other_project = crypto.ObjectRef(r.kind, r.object_id, "prj_other")
    with session_scope(engine) as session, pytest.raises(crypto.DataKeyNotFoundError):
        crypto.unwrap_data_key(session=session, provider=provider, ref=other_project)
    with session_scope(engine) as session, pytest.raises(crypto.DataKeyNotFoundError):
        crypto.unwrap_data_key(session=session, provider=provider, ref=make_ref())


def test_keys_read_together_open_as_one_at_a_time(
    engine: Engine,
    provider: crypto.LocalKeyProvider,
    store: crypto.LocalBlobStore,
    make_ref: Ref,
) -> None:
    """`data_keys_of` + `unwrap_key_row` + `decrypt_object` (discovery's batch) give what
    `read_object` gives, and refuse what it refuses: a shredded key, no key, the key of
    the same id in another project; more objects than one statement takes."""
    refs = [make_ref(kind) for kind in ("dataset_version",) * 501 + ("model",)]
    for r in refs[:3] + refs[-2:]:
        put(engine, provider, store, r, r.object_id.encode() * 100)
    with session_scope(engine) as session:
        crypto.erase_object(session=session, store=store, ref=refs[1])
        for r in refs[3:-2]:  # keys only, no blobs: enough to read them
            crypto.create_data_key(session=session, provider=provider, ref=r)
    absent, moved = make_ref(), crypto.ObjectRef(refs[0].kind, refs[0].object_id, "prj_other")
    one_at_a_time = {r: get(engine, provider, store, r) for r in (refs[0], refs[2], refs[-1])}
    with session_scope(engine) as session:
        keys = crypto.data_keys_of(session, refs=[*refs, absent, moved])
        assert set(keys) == set(refs)  # 503 of one kind: two statements
        for r, expected in one_at_a_time.items():
            handle = crypto.unwrap_key_row(provider=provider, ref=r, row=keys[r])
            assert b"".join(crypto.decrypt_object(handle=handle, store=store)) == expected
        with pytest.raises(crypto.DataKeyDestroyedError):
            crypto.unwrap_key_row(provider=provider, ref=refs[1], row=keys[refs[1]])
        with pytest.raises(crypto.DataKeyNotFoundError):
            crypto.unwrap_key_row(provider=provider, ref=absent, row=keys.get(absent))
        for row in (keys.get(moved), keys[refs[0]]):
            with pytest.raises(crypto.DataKeyNotFoundError):
                crypto.unwrap_key_row(provider=provider, ref=moved, row=row)


def test_rotation_rewraps_without_touching_blobs_then_v1_retires(
    engine: Engine,
    provider: crypto.LocalKeyProvider,
    store: crypto.LocalBlobStore,
    make_ref: Ref,
) -> None:
    payloads = {make_ref(kind): os.urandom(70_000) for kind in ("dataset_version", "model", "x")}
    for r, data in payloads.items():
        put(engine, provider, store, r, data)
    blobs_before = {k: store.open(k).read() for k in store.list()}

    with session_scope(engine) as session:
        report = crypto.rotate(session=session, provider=provider)
    assert (report.to_version, report.rewrapped, report.failed) == (2, 3, [])
    assert {k: store.open(k).read() for k in store.list()} == blobs_before
    with session_scope(engine) as session:
        status = crypto.key_status(session=session, provider=provider)
    assert [(u.version, u.state, u.data_keys) for u in status.versions] == [
        (1, "active", 0),
        (2, "active", 3),
    ]
    assert set(status.versions[1].objects) == set(payloads)

    with session_scope(engine) as session:
        retired = crypto.retire(session=session, provider=provider, version=1)
    assert retired.unreadable_count == 0
    for r, data in payloads.items():
        assert get(engine, provider, store, r) == data


def test_a_key_only_v1_can_open_is_reported_not_lost(
    engine: Engine,
    provider: crypto.LocalKeyProvider,
    store: crypto.LocalBlobStore,
    make_ref: Ref,
) -> None:
    early = make_ref()
    put(engine, provider, store, early, b"early")
    with session_scope(engine) as session:
        crypto.rotate(session=session, provider=provider)
    # A writer that still wrapped under v1 after the rotation (e.g. it raced with it).
    late = make_ref()
    with session_scope(engine) as session:
        handle = crypto.create_data_key(session=session, provider=provider, ref=late)
        row = crypto.get_data_key(session=session, ref=late)
        wrapped = provider.wrap(handle.key, version=1)
        row.wrapped_key, row.kek_version = wrapped.wrapped, 1
        session.add(row)
    with session_scope(engine) as session:
        status = crypto.key_status(session=session, provider=provider)
    assert [(u.version, u.data_keys, u.objects) for u in status.versions] == [
        (1, 1, [late]),
        (2, 1, [early]),
    ]

    with session_scope(engine) as session, pytest.raises(crypto.KeyVersionInUseError) as info:
        crypto.retire(session=session, provider=provider, version=1)
    assert info.value.extensions["count"] == 1
    assert f"{late.kind}/{late.object_id}@{late.project_id}" in info.value.extensions["objects"]
    assert provider.list_versions()[0].state == "active"  # nothing was destroyed

    with session_scope(engine) as session:
        report = crypto.retire(session=session, provider=provider, version=1, force=True)
    assert (report.unreadable_count, report.unreadable) == (1, [late])
    with session_scope(engine) as session:
        status = crypto.key_status(session=session, provider=provider)
        assert [f.ref for f in status.unreadable] == [late]
        with pytest.raises(crypto.KeyUnavailableError, match="version 1"):
            crypto.unwrap_data_key(session=session, provider=provider, ref=late)
        report2 = crypto.rewrap(session=session, provider=provider)
        assert [f.ref for f in report2.failed] == [late]
    with session_scope(engine) as session:
        row = crypto.get_data_key(session=session, ref=late)
        assert row.wrapped_key == wrapped.wrapped and row.kek_version == 1  # kept, not dropped
    assert get(engine, provider, store, early) == b"early"


def test_shredding_destroys_the_key_for_good(
    engine: Engine,
    provider: crypto.LocalKeyProvider,
    store: crypto.LocalBlobStore,
    make_ref: Ref,
) -> None:
    r, keep = make_ref(), make_ref()
    put(engine, provider, store, r, b"to be erased" * 1000)
    put(engine, provider, store, keep, b"kept")
    backup = store.open(crypto.blob_key(r)).read()  # an operator's copy of the ciphertext

    with session_scope(engine) as session:
        row = crypto.shred(session=session, ref=r)
        assert row.wrapped_key is None and row.destroyed_at is not None
        assert crypto.shred(session=session, ref=r).destroyed_at == row.destroyed_at
    with session_scope(engine) as session, pytest.raises(crypto.DataKeyDestroyedError):
        crypto.unwrap_data_key(session=session, provider=provider, ref=r)
    with session_scope(engine) as session, pytest.raises(crypto.DataKeyDestroyedError):
        crypto.read_object_bytes(session=session, provider=provider, store=store, ref=r)

    # Rotation never brings a shredded key back.
    with session_scope(engine) as session:
        report = crypto.rotate(session=session, provider=provider)
        assert report.rewrapped == 1
        assert crypto.key_status(session=session, provider=provider).destroyed == 1
    with session_scope(engine) as session:
        assert crypto.get_data_key(session=session, ref=r).wrapped_key is None

    # The blob copy survives, but nothing can open it any more.
    store.delete(crypto.blob_key(r))
    store.put(crypto.blob_key(r), crypto.EncryptedStream(iter([backup])))
    with session_scope(engine) as session, pytest.raises(crypto.DataKeyDestroyedError):
        crypto.read_object_bytes(session=session, provider=provider, store=store, ref=r)
    assert get(engine, provider, store, keep) == b"kept"
