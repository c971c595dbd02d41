"""A version suspended by monitoring can be retired, or approved again, through the
registry's state machine (never a 500)."""

from __future__ import annotations

import pytest

from tests.inference.conftest import WORDS, classifier_weights, register_version, set_state


@pytest.mark.parametrize("target,final", [("retire", "retired"), ("approve", "approved")])
def test_suspended_version_transitions(
    client,
    admin,
    make_caller,
    runtime,
    tmp_path,  # type: ignore[no-untyped-def]
    target,
    final,
) -> None:
    from privet.training.catalog import CATALOG, build_tiny_bert

    CATALOG.register(
        build_tiny_bert(tmp_path / "tiny", name="tiny-susp", words=WORDS), replace=True
    )
    project = client.post("/v1/projects", json={"name": "susp"}, headers=admin.headers).json()
    version = register_version(
        runtime, project["id"], base_model="tiny-susp", weights=classifier_weights("tiny-susp", 2)
    )
    set_state(runtime, version.id, "suspended")
    approver = make_caller("approver", project["id"], name="approver")
    response = client.post(
        f"/v1/projects/{project['id']}/model-versions/{version.id}:{target}",
        headers=approver.headers,
    )
    assert response.status_code == 200, response.text
    state = client.get(
        f"/v1/projects/{project['id']}/model-versions/{version.id}", headers=approver.headers
    ).json()["state"]
    assert state == final
