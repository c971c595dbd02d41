"""Regression tests for issue 18, finding 1: key minting escalated a project admin to
platform admin.

Each test replays an insider's sequence of requests over the real API (SQLite and
PostgreSQL) and asserts the capability rules: a key is minted only for one's own principal
with a scope and lifetime no wider than the minting key, or by a project admin for a
service account of that project, scoped to it; users' keys are never minted by someone
else; revoking another principal's key is for service accounts of one's own project."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from tests.conftest import Caller


def _project(client: Any, caller: Caller, name: str) -> str:
    response = client.post("/v1/projects", json={"name": name}, headers=caller.headers)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _refused(response: Any, policy: str) -> dict[str, Any]:
    """A 403 problem that names the policy which refused, and says why."""
    assert response.status_code == 403, response.text
    body: dict[str, Any] = response.json()
    assert body["type"].endswith("/forbidden"), body
    assert policy in body.get("policies", []), body
    assert policy in body["detail"], body
    return body


def _mint(client: Any, headers: dict[str, str], body: dict[str, Any]) -> Any:
    """POST /v1/api-keys: mint the key ``body`` asks for, as the caller of ``headers``."""
    return client.post("/v1/api-keys", json=body, headers=headers)


def _service_account(client: Any, caller: Caller, project: str, role: str, name: str) -> str:
    response = client.post(
        f"/v1/projects/{project}/members",
        json={"service_account_name": name, "role": role},
        headers=caller.headers,
    )
    assert response.status_code == 201, response.text
    return str(response.json()["principal_id"])


@pytest.fixture
def setting(client, admin, make_caller) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """Two projects of the platform admin; a project admin of `mine` only."""
    mine = _project(client, admin, "mine")
    theirs = _project(client, admin, "theirs")
    project_admin = make_caller("admin", mine, name="project-admin")
    return {"mine": mine, "theirs": theirs, "project_admin": project_admin}


def test_project_admin_cannot_mint_a_key_for_the_platform_admin(client, admin, setting) -> None:  # type: ignore[no-untyped-def]
    """(a) The platform admin's id is visible as `created_by` of the project."""
    mine, project_admin = setting["mine"], setting["project_admin"]
    project = client.get(f"/v1/projects/{mine}", headers=project_admin.headers).json()
    target = project["created_by"]
    assert target == admin.principal_id
    response = _mint(
        client,
        project_admin.headers,
        {"name": "borrowed", "principal_id": target, "project_id": mine},
    )
    body = _refused(response, "keys.users-keys-are-their-own")
    assert "invitation" in body["detail"]
    keys = client.get("/v1/api-keys", headers=admin.headers).json()
    assert [k["name"] for k in keys] == ["test admin"]  # nothing was minted for the admin


def test_project_admin_cannot_mint_a_key_for_a_user_member(client, setting, make_caller) -> None:  # type: ignore[no-untyped-def]
    mine, project_admin = setting["mine"], setting["project_admin"]
    approver = make_caller("approver", mine, name="approver")
    response = _mint(
        client,
        project_admin.headers,
        {"name": "for you", "principal_id": approver.principal_id, "project_id": mine},
    )
    _refused(response, "keys.users-keys-are-their-own")


def test_scoped_key_cannot_mint_an_unscoped_key_for_itself(client, setting) -> None:  # type: ignore[no-untyped-def]
    """(b) `any.own-api-keys` let a project-scoped key mint an unscoped one."""
    mine, theirs, project_admin = setting["mine"], setting["theirs"], setting["project_admin"]
    scoped = _mint(client, project_admin.headers, {"name": "scoped", "project_id": mine})
    assert scoped.status_code == 201, scoped.text
    scoped_key = scoped.json()["key"]
    for body in ({"name": "wider"}, {"name": "elsewhere", "project_id": theirs}):
        response = _mint(client, _bearer(scoped_key), body)
        assert response.status_code in (403, 404), response.text
        if response.status_code == 403:
            _refused(response, "keys.scope-no-wider")
    same = _mint(client, _bearer(scoped_key), {"name": "same", "project_id": mine})
    assert same.status_code == 201, same.text
    assert same.json()["project_id"] == mine


def test_unscoped_own_key_from_a_scoped_key_is_refused_with_the_rule(
    client, admin, setting
) -> None:  # type: ignore[no-untyped-def]
    mine = setting["mine"]
    sa = _service_account(client, admin, mine, "predictor", "app")
    key = _mint(client, admin.headers, {"name": "app", "principal_id": sa, "project_id": mine})
    assert key.status_code == 201, key.text
    response = _mint(client, _bearer(key.json()["key"]), {"name": "unscoped"})
    body = _refused(response, "keys.scope-no-wider")
    assert mine in body["detail"]


def test_full_chain_to_another_project_is_closed(client, admin, setting) -> None:  # type: ignore[no-untyped-def]
    """(c) project admin → key for the platform admin → unscoped key → another project."""
    mine, theirs, project_admin = setting["mine"], setting["theirs"], setting["project_admin"]
    target = client.get(f"/v1/projects/{mine}", headers=project_admin.headers).json()["created_by"]
    credentials = [project_admin.key]
    step1 = _mint(
        client, project_admin.headers, {"name": "step1", "principal_id": target, "project_id": mine}
    )
    if step1.status_code == 201:
        credentials.append(step1.json()["key"])
        step2 = _mint(client, _bearer(credentials[-1]), {"name": "step2"})
        if step2.status_code == 201:
            credentials.append(step2.json()["key"])
    for key in credentials:
        assert client.get(f"/v1/projects/{theirs}", headers=_bearer(key)).status_code == 404
        listed = client.get("/v1/projects", headers=_bearer(key)).json()
        assert theirs not in [p["id"] for p in listed]
        created = client.post("/v1/projects", json={"name": "mine-now"}, headers=_bearer(key))
        assert created.status_code == 403
    _refused(step1, "keys.users-keys-are-their-own")


def test_project_admin_mints_keys_only_for_its_own_service_accounts(client, admin, setting) -> None:  # type: ignore[no-untyped-def]
    mine, theirs, project_admin = setting["mine"], setting["theirs"], setting["project_admin"]
    own_sa = _service_account(client, project_admin, mine, "predictor", "scoring-app")
    ok = _mint(
        client, project_admin.headers, {"name": "app", "principal_id": own_sa, "project_id": mine}
    )
    assert ok.status_code == 201, ok.text
    assert ok.json()["project_id"] == mine and ok.json()["principal_id"] == own_sa
    unscoped = _mint(client, project_admin.headers, {"name": "app", "principal_id": own_sa})
    _refused(unscoped, "keys.service-account-of-the-project")
    # A service account of another project, bound into mine, is still not mine to key.
    foreign_sa = _service_account(client, admin, theirs, "admin", "their-robot")
    bound = client.post(
        f"/v1/projects/{mine}/members",
        json={"principal_id": foreign_sa, "role": "predictor"},
        headers=project_admin.headers,
    )
    assert bound.status_code == 201, bound.text
    foreign = _mint(
        client,
        project_admin.headers,
        {"name": "hijack", "principal_id": foreign_sa, "project_id": mine},
    )
    _refused(foreign, "keys.service-account-of-the-project")
    # The refusal names no project the caller has no role in (found by the insider
    # machine's long profile: the detail used to name the service account's project).
    unbound_sa = _service_account(client, admin, theirs, "predictor", "their-app")
    probe = _mint(client, project_admin.headers, {"name": "probe", "principal_id": unbound_sa})
    _refused(probe, "keys.service-account-of-the-project")
    assert theirs not in probe.text


def test_minted_lifetime_is_no_wider_than_the_minting_key(client, setting) -> None:  # type: ignore[no-untyped-def]
    mine, project_admin = setting["mine"], setting["project_admin"]  # its key lives 1 day
    mine_keys = client.get("/v1/api-keys", headers=project_admin.headers).json()
    minting_expiry = datetime.fromisoformat(mine_keys[0]["expires_at"])
    too_long = _mint(client, project_admin.headers, {"name": "long", "ttl_days": 30})
    _refused(too_long, "keys.lifetime-no-wider")
    default = _mint(client, project_admin.headers, {"name": "dflt"})
    assert default.status_code == 201, default.text
    assert datetime.fromisoformat(default.json()["expires_at"]) <= minting_expiry
    sa = _service_account(client, project_admin, mine, "predictor", "app")
    sa_key = _mint(
        client,
        project_admin.headers,
        {"name": "app", "principal_id": sa, "project_id": mine, "ttl_days": 365},
    )
    _refused(sa_key, "keys.lifetime-no-wider")
    clamped = _mint(
        client, project_admin.headers, {"name": "app", "principal_id": sa, "project_id": mine}
    )
    assert clamped.status_code == 201, clamped.text
    expires = datetime.fromisoformat(clamped.json()["expires_at"])
    assert expires <= minting_expiry and expires > minting_expiry - timedelta(minutes=5)


def test_project_admin_revokes_only_its_service_accounts_keys(
    client, admin, setting, make_caller
) -> None:  # type: ignore[no-untyped-def]
    mine, project_admin = setting["mine"], setting["project_admin"]
    member = make_caller("approver", mine, name="member")
    scoped = _mint(client, member.headers, {"name": "mine", "project_id": mine})
    assert scoped.status_code == 201, scoped.text
    refused = client.delete(f"/v1/api-keys/{scoped.json()['id']}", headers=project_admin.headers)
    _refused(refused, "keys.revoke-own-or-project-service-accounts")
    still = client.get("/v1/projects", headers=_bearer(scoped.json()["key"]))
    assert still.status_code == 200
    sa = _service_account(client, project_admin, mine, "predictor", "app")
    sa_key = _mint(
        client, project_admin.headers, {"name": "app", "principal_id": sa, "project_id": mine}
    ).json()
    revoked = client.delete(f"/v1/api-keys/{sa_key['id']}", headers=project_admin.headers)
    assert revoked.status_code == 200 and revoked.json()["revoked_at"], revoked.text
    # Own keys, always; a platform admin revokes any key (incident response).
    own = client.delete(f"/v1/api-keys/{scoped.json()['id']}", headers=member.headers)
    assert own.status_code == 200, own.text
    other = _mint(client, member.headers, {"name": "x"}).json()
    assert client.delete(f"/v1/api-keys/{other['id']}", headers=admin.headers).status_code == 200
