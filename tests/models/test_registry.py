"""The registry over the API: segregation of duties on approval, the state machine,
audited policy-gated export in Hugging Face format, tenancy. SQLite and PostgreSQL."""

from __future__ import annotations

import io
import json
import tarfile
from typing import Any

import pytest

from tests.jobs.conftest import ledger_events, submit, types_of


@pytest.fixture
def trained(client, project, engineer, dataset_version, make_worker) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    job = submit(client, engineer, project, dataset_version["id"]).json()
    assert make_worker().tick()
    done = client.get(
        f"/v1/projects/{project}/training-jobs/{job['id']}", headers=engineer.headers
    ).json()
    assert done["state"] == "succeeded", done["reason"]
    return dict(done)


def _v(project: str, version_id: str, suffix: str = "") -> str:
    return f"/v1/projects/{project}/model-versions/{version_id}{suffix}"


def _set_submitter(runtime: Any, version_id: str, principal_id: str) -> None:
    """Record ``principal_id`` as the user who submitted the version's training job."""
    from privet.db import session_scope
    from privet.models.tables import ModelVersion

    with session_scope(runtime.engine) as session:
        row = session.get(ModelVersion, version_id)
        assert row is not None
        row.submitted_by = f"User:{principal_id}"
        session.add(row)


def test_submitter_cannot_approve_an_approver_can(
    client, runtime, make_caller, project, engineer, approver, trained
) -> None:  # type: ignore[no-untyped-def]
    vid = trained["model_version_id"]
    # Even holding the approver role, the submitter is refused (segregation of duties).
    both = make_caller("approver", project, name="engineer-too")
    own = client.post(_v(project, vid, ":approve"), headers=engineer.headers)
    assert own.status_code == 403
    _set_submitter(runtime, vid, both.principal_id)
    sod = client.post(_v(project, vid, ":approve"), headers=both.headers)
    assert sod.status_code == 403
    _set_submitter(runtime, vid, engineer.principal_id)
    ok = client.post(_v(project, vid, ":approve"), headers=approver.headers)
    assert ok.status_code == 200, ok.text
    assert ok.json()["state"] == "approved"
    assert ok.json()["approved_by"] == f"User:{approver.principal_id}"
    again = client.post(_v(project, vid, ":approve"), headers=approver.headers)
    assert again.status_code == 409
    events = ledger_events(runtime, project=project)
    denials = [
        e
        for e in events
        if e["type"] == "auth.decision" and e["details"]["action"] == "model_version.approve"
    ]
    assert [d["outcome"] for d in denials] == ["deny", "deny", "allow", "allow"]
    assert "model.segregation-of-duties" in denials[1]["details"]["policies"]
    assert types_of(events)[-1] == "model_version.approved"

    models = client.get(f"/v1/projects/{project}/models", headers=engineer.headers).json()
    assert [m["name"] for m in models] == ["loans-classifier"]
    detail = client.get(
        f"/v1/projects/{project}/models/{models[0]['id']}", headers=engineer.headers
    ).json()
    assert [(v["number"], v["state"]) for v in detail["versions"]] == [(1, "approved")]
    version = client.get(_v(project, vid), headers=engineer.headers).json()
    assert version["lineage"]["training_job"] == trained["id"]
    assert version["card"].startswith("---\n")


def test_export_is_admin_only_approved_only_and_audited(
    client, runtime, admin, project, engineer, approver, trained, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    vid = trained["model_version_id"]
    candidate = client.get(_v(project, vid, "/export"), headers=admin.headers)
    assert candidate.status_code == 403  # only approved versions leave
    assert client.post(_v(project, vid, ":approve"), headers=approver.headers).status_code == 200
    assert client.get(_v(project, vid, "/export"), headers=approver.headers).status_code == 403
    assert client.get(_v(project, vid, "/export"), headers=engineer.headers).status_code == 403
    exported = client.get(_v(project, vid, "/export"), headers=admin.headers)
    assert exported.status_code == 200
    assert exported.headers["content-type"] == "application/x-tar"
    with tarfile.open(fileobj=io.BytesIO(exported.content)) as tar:
        names = {m.name.split("/", 1)[1] for m in tar.getmembers()}
        assert {"config.json", "model.safetensors", "README.md", "tokenizer_config.json"} <= names
        tar.extractall(tmp_path / "export", filter="data")
    folder = next((tmp_path / "export").iterdir())
    _assert_export_reproduces_the_served_model(runtime, project, vid, folder)
    events = ledger_events(runtime, project=project)
    exports = [e for e in events if e["type"] == "model_version.exported"]
    assert len(exports) == 1 and exports[0]["actor"] == admin.principal_id
    assert exports[0]["digests"]["archive"].startswith("sha256:")

    retired = client.post(
        _v(project, vid, ":retire"), json={"reason": "superseded"}, headers=approver.headers
    )
    assert retired.status_code == 200 and retired.json()["state"] == "retired"
    assert retired.json()["retire_reason"] == "superseded"
    assert client.get(_v(project, vid, "/export"), headers=admin.headers).status_code == 403
    assert client.post(_v(project, vid, ":approve"), headers=approver.headers).status_code == 409
    assert client.post(_v(project, vid, ":retire"), headers=approver.headers).status_code == 409


def _assert_export_reproduces_the_served_model(runtime, project, vid, folder) -> None:  # type: ignore[no-untyped-def]
    """Stock transformers rebuilds the exported folder (with the shipped model code for
    mean pooling) and gives the logits privet serves."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from privet.db import session_scope
    from privet.models import weights

    config = json.loads((folder / "config.json").read_text())
    assert config["architectures"] == ["MeanPooledBertForSequenceClassification"]
    assert (folder / "modeling_privet.py").is_file()
    exported = AutoModelForSequenceClassification.from_pretrained(
        str(folder), trust_remote_code=True
    ).eval()
    assert exported.config.id2label == {0: "0", 1: "1"}
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    with session_scope(runtime.engine) as session:
        served = weights.load_version(
            session, runtime=runtime, project_id=project, version_id=vid
        ).build()
    batch = tokenizer(
        ["good movie", "the plot was very bad and dull"], padding=True, return_tensors="pt"
    )
    with torch.no_grad():
        theirs = exported(**batch).logits
        ours = served.model.eval()(**batch).logits
    torch.testing.assert_close(theirs, ours)
    assert not torch.allclose(theirs[0], theirs[1])


def test_versions_are_invisible_outside_their_project(
    client, admin, make_caller, project, trained
) -> None:  # type: ignore[no-untyped-def]
    vid = trained["model_version_id"]
    other = client.post("/v1/projects", json={"name": "other"}, headers=admin.headers).json()
    outsider = make_caller("approver", other["id"], name="outsider")
    for path in (_v(project, vid), _v(other["id"], vid), _v(other["id"], vid, "/card")):
        assert client.get(path, headers=outsider.headers).status_code == 404
    assert (
        client.post(_v(other["id"], vid, ":approve"), headers=outsider.headers).status_code == 404
    )
    auditor = make_caller("auditor", project, name="auditor")
    assert client.post(_v(project, vid, ":approve"), headers=auditor.headers).status_code == 403


def test_load_version_serves_only_approved_weights(
    client, runtime, project, approver, trained
) -> None:  # type: ignore[no-untyped-def]
    from privet.db import session_scope
    from privet.kit.errors import ConflictError
    from privet.models import weights

    vid = trained["model_version_id"]
    with session_scope(runtime.engine) as session, pytest.raises(ConflictError):
        weights.load_version(session, runtime=runtime, project_id=project, version_id=vid)
    assert client.post(_v(project, vid, ":approve"), headers=approver.headers).status_code == 200
    with session_scope(runtime.engine) as session:
        loaded = weights.load_version(session, runtime=runtime, project_id=project, version_id=vid)
    built = loaded.build()
    assert loaded.label_names == ("0", "1") and loaded.max_length == 16
    encoded = built.tokenizer(["loan approved"], return_tensors="pt")
    assert built.model(**encoded).logits.shape == (1, 2)
