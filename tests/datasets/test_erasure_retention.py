"""Erasure by data subject, the usage table, retention sweeps, and the canary."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlmodel import select

from tests.datasets.conftest import declarations, make_rows, to_csv, upload


def _events(runtime, type_: str) -> list[dict]:  # type: ignore[no-untyped-def]
    from privet.db import session_scope
    from privet.ledger.tables import LedgerEntry

    with session_scope(runtime.engine) as session:
        events = [json.loads(bytes(e.event)) for e in session.exec(select(LedgerEntry)).all()]
    return [e for e in events if e["type"] == type_]


def _load(runtime, version_id: str):  # type: ignore[no-untyped-def]
    from privet.datasets.rows import load_version_rows
    from privet.db import session_scope

    with session_scope(runtime.engine) as session:
        return load_version_rows(
            session, provider=runtime.key_provider, store=runtime.blobs, version_id=version_id
        )


def test_erase_subject_new_version_old_shredded_models_affected(
    client, admin, project, runtime
) -> None:  # type: ignore[no-untyped-def]
    from privet.crypto import DataKeyDestroyedError, ObjectRef, read_object_bytes
    from privet.datasets.pseudonym import pseudonymisation_key, pseudonymise
    from privet.datasets.rows import DatasetVersionShreddedError
    from privet.datasets.usage import record_usage
    from privet.db import session_scope

    rows = make_rows(60)
    rows[10]["customer"] = rows[20]["customer"] = "alice-7731"  # two rows of one subject
    v1 = upload(client, admin.headers, project, to_csv(rows)).json()
    dataset_id = v1["dataset_id"]
    v2 = upload(
        client, admin.headers, project, to_csv(make_rows(30, seed=5)), dataset_id=dataset_id
    ).json()  # does not hold alice
    v3 = upload(client, admin.headers, project, to_csv(rows), dataset_id=dataset_id).json()
    with session_scope(runtime.engine) as session:
        record_usage(
            session, dataset_version_id=v1["id"], used_by_kind="model_version", used_by_id="mv_a"
        )
        record_usage(
            session, dataset_version_id=v1["id"], used_by_kind="model_version", used_by_id="mv_a"
        )  # idempotent
        record_usage(
            session, dataset_version_id=v2["id"], used_by_kind="model_version", used_by_id="mv_b"
        )
    response = client.post(
        f"/v1/projects/{project}/datasets/{dataset_id}:erase-subjects",
        json={"subject_ids": ["alice-7731", "nobody"]},
        headers=admin.headers,
    )
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["subjects_found"] == 1 and result["rows_removed"] == 2
    assert sorted(result["shredded_versions"]) == sorted([v1["id"], v3["id"]])
    assert result["affected"] == [
        {"dataset_version_id": v1["id"], "used_by_kind": "model_version", "used_by_id": "mv_a"}
    ]
    new = result["new_version"]
    assert new["number"] == 4 and new["row_count"] == 58 and new["parent_version_id"] == v3["id"]
    assert "alice-7731" not in response.text
    key = pseudonymisation_key(runtime.settings)
    assert result["subjects"] == sorted(
        [pseudonymise(key, "alice-7731"), pseudonymise(key, "nobody")]
    )
    # the new version lacks the rows; the old ones no longer decrypt
    loaded = _load(runtime, new["id"])
    assert "alice-7731" not in loaded.subject_ids and len(loaded) == 58
    assert len(_load(runtime, v2["id"])) == 30  # untouched
    with pytest.raises(DatasetVersionShreddedError):
        _load(runtime, v1["id"])
    with session_scope(runtime.engine) as session, pytest.raises(DataKeyDestroyedError):
        read_object_bytes(
            session=session,
            provider=runtime.key_provider,
            store=runtime.blobs,
            ref=ObjectRef("dataset_version", v1["id"], project),
        )
    assert not list(runtime.blobs.list(f"{project}/dataset_version/{v1['id']}/"))
    detail = client.get(f"/v1/projects/{project}/datasets/{dataset_id}", headers=admin.headers)
    states = {v["number"]: (v["state"], v["shred_reason"]) for v in detail.json()["versions"]}
    assert states == {
        1: ("shredded", "erasure"),
        2: ("active", None),
        3: ("shredded", "erasure"),
        4: ("active", None),
    }
    # the ledger holds pseudonyms only
    erased = _events(runtime, "dataset.subjects.erased")
    assert len(erased) == 1 and erased[0]["details"]["subjects"] == result["subjects"]
    assert erased[0]["details"]["affected"] == ["model_version/mv_a"]
    assert len(_events(runtime, "dataset.version.shredded")) == 2
    from privet.ledger.tables import LedgerEntry

    with session_scope(runtime.engine) as session:
        raw = b"".join(bytes(e.event) for e in session.exec(select(LedgerEntry)).all())
    assert b"alice-7731" not in raw


def test_erasure_needs_subject_column(client, admin, project) -> None:  # type: ignore[no-untyped-def]
    rows = [{k: v for k, v in r.items() if k != "customer"} for r in make_rows(30)]
    decl = declarations(contains_personal_data=False, subject_id_column=None)
    created = upload(
        client, admin.headers, project, to_csv(rows, columns=("text", "label")), decl=decl
    )
    assert created.status_code == 201, created.text
    response = client.post(
        f"/v1/projects/{project}/datasets/{created.json()['dataset_id']}:erase-subjects",
        json={"subject_ids": ["x"]},
        headers=admin.headers,
    )
    assert response.status_code == 422
    assert "no subject-id column" in response.json()["detail"]


def test_retention_sweep_shreds_expired_versions(client, admin, project, runtime) -> None:  # type: ignore[no-untyped-def]
    from privet.datasets.retention import sweep_retention
    from privet.datasets.rows import DatasetVersionShreddedError
    from privet.db import session_scope
    from privet.kit.ids import utcnow

    short = upload(
        client, admin.headers, project, to_csv(make_rows(30)), decl=declarations(retention_days=1)
    ).json()
    long = upload(
        client,
        admin.headers,
        project,
        to_csv(make_rows(30)),
        decl=declarations(name="kept", retention_days=400),
    ).json()
    with session_scope(runtime.engine) as session:
        nothing = sweep_retention(session, store=runtime.blobs)
    assert nothing.shredded_versions == []
    with session_scope(runtime.engine) as session:
        swept = sweep_retention(session, store=runtime.blobs, now=utcnow() + timedelta(days=2))
    assert swept.shredded_versions == [short["id"]]
    with pytest.raises(DatasetVersionShreddedError):
        _load(runtime, short["id"])
    assert len(_load(runtime, long["id"])) == 30
    events = _events(runtime, "dataset.version.shredded")
    assert [e["objects"]["dataset_version"] for e in events] == [short["id"]]
    assert events[0]["details"]["reason"] == "retention"
    # the API route sweeps one project (nothing left to do now)
    response = client.post(f"/v1/projects/{project}/datasets:sweep", headers=admin.headers)
    assert response.status_code == 200, response.text
    assert response.json()["shredded_versions"] == []


def test_canary_absent_from_every_file_and_table(client, admin, project, runtime, db_url) -> None:  # type: ignore[no-untyped-def]
    canary = "CANARY-7f3a9c1e-privet-dataset"
    rows = make_rows(60)
    rows[17]["text"] = f"the applicant wrote {canary} in the notes"
    rows[18]["customer"] = f"{canary}-subject"
    response = upload(client, admin.headers, project, to_csv(rows))
    assert response.status_code == 201, response.text
    assert canary not in response.text
    loaded = _load(runtime, response.json()["id"])
    assert any(canary in t for t in loaded.texts)  # it is there, encrypted
    needle = canary.encode()
    files = [p for p in runtime.settings.home.rglob("*") if p.is_file()]
    if db_url.startswith("sqlite"):
        from pathlib import Path

        from privet.db import dispose_engines

        dispose_engines()  # checkpoint the WAL into the database file
        db = Path(db_url.removeprefix("sqlite:///"))
        files += [p for p in db.parent.glob(db.name + "*") if p.is_file()]
        assert db in files
    for path in files:
        assert needle not in path.read_bytes(), path
    if db_url.startswith("postgresql"):
        from sqlalchemy import text

        with runtime.engine.connect() as conn:
            tables = (
                conn.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'"))
                .scalars()
                .all()
            )
            for table in tables:
                dump = (
                    conn.execute(text(f'SELECT CAST(t.* AS text) FROM "{table}" AS t'))
                    .scalars()
                    .all()
                )
                assert not any(canary in (row or "") for row in dump), table


def test_erase_subjects_in_project_covers_every_dataset(client, admin, project, runtime) -> None:  # type: ignore[no-untyped-def]
    from privet.datasets.erasure import erase_subjects_in_project
    from privet.db import session_scope

    rows = make_rows(30)
    rows[2]["customer"] = "bob-1"
    a = upload(client, admin.headers, project, to_csv(rows)).json()
    b = upload(
        client, admin.headers, project, to_csv(rows), decl=declarations(name="second")
    ).json()
    plain = [{k: v for k, v in r.items() if k != "customer"} for r in make_rows(30)]
    upload(
        client,
        admin.headers,
        project,
        to_csv(plain, columns=("text", "label")),
        decl=declarations(name="anon", contains_personal_data=False, subject_id_column=None),
    )
    with session_scope(runtime.engine) as session:
        results = erase_subjects_in_project(
            session,
            provider=runtime.key_provider,
            store=runtime.blobs,
            settings=runtime.settings,
            project_id=project,
            subject_ids=["bob-1"],
            actor=admin.principal_id,
        )
    assert sorted(r.dataset_id for r in results) == sorted([a["dataset_id"], b["dataset_id"]])
    assert all(r.rows_removed == 1 and r.new_version is not None for r in results)
