"""Invitations (issue 18): a project admin invites a person with one role; the person
accepts with the invitation token (one use, expires, revocable, stored only as an HMAC
digest) and gets a user principal, the role and their own first key, scoped to the
project. The token is good for nothing else. SQLite and PostgreSQL."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest
from sqlmodel import Session, col, select

from privet.auth.tables import Invitation
from privet.kit.ids import utcnow
from privet.ledger.tables import LedgerEntry
from tests.conftest import Caller

NAME = "Rosalind Okafor"  # personal data: never in the ledger


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def project(client, admin) -> str:  # type: ignore[no-untyped-def]
    response = client.post("/v1/projects", json={"name": "loans"}, headers=admin.headers)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _invite(client: Any, caller: Caller, project: str, role: str = "approver", **extra: Any) -> Any:
    return client.post(
        f"/v1/projects/{project}/invitations",
        json={"name": NAME, "role": role, **extra},
        headers=caller.headers,
    )


def _events(runtime: Any) -> list[dict[str, Any]]:
    with Session(runtime.engine) as session:
        rows = session.exec(select(LedgerEntry).order_by(col(LedgerEntry.id))).all()
    return [json.loads(row.event) for row in rows]


def test_invite_accept_and_use_the_key(client, admin, project, runtime) -> None:  # type: ignore[no-untyped-def]
    created = _invite(client, admin, project, ttl_hours=24)
    assert created.status_code == 201, created.text
    invitation = created.json()
    assert set(invitation) == {"id", "project_id", "name", "role", "expires_at", "token"}
    token = invitation["token"]
    assert token.startswith("pvi_") and invitation["role"] == "approver"

    listed = client.get(f"/v1/projects/{project}/invitations", headers=admin.headers).json()
    assert [i["id"] for i in listed] == [invitation["id"]]
    assert "token" not in listed[0] and listed[0]["accepted_at"] is None
    assert listed[0]["created_by"] == admin.principal_id

    accepted = client.post(
        "/v1/invitations:accept", json={"key_name": "laptop"}, headers=_bearer(token)
    )
    assert accepted.status_code == 201, accepted.text
    body = accepted.json()
    assert body["name"] == NAME and body["role"] == "approver" and body["project_id"] == project
    key = body["api_key"]
    assert key["key"].startswith("pvt_") and key["name"] == "laptop"
    assert key["principal_id"] == body["principal_id"] and key["project_id"] == project

    # The new user holds exactly the invited role, in that project, and acts with its key.
    members = client.get(f"/v1/projects/{project}/members", headers=admin.headers).json()
    binding = next(m for m in members if m["principal_id"] == body["principal_id"])
    assert binding["role"] == "approver" and binding["created_by"] == admin.principal_id
    mine = client.get(f"/v1/projects/{project}", headers=_bearer(key["key"]))
    assert mine.status_code == 200
    listed = client.get(f"/v1/projects/{project}/invitations", headers=admin.headers).json()
    assert listed[0]["accepted_at"] is not None

    # One use.
    again = client.post("/v1/invitations:accept", headers=_bearer(token))
    assert again.status_code == 409, again.text
    assert "already accepted" in again.json()["detail"]

    # Ledger: a step per event, ids and the role only, never the name or the token.
    events = _events(runtime)
    types = [e["type"] for e in events]
    for kind in (
        "invitation.created",
        "principal.created",
        "member.added",
        "api_key.created",
        "invitation.accepted",
    ):
        assert kind in types, kind
    dumped = json.dumps(events)
    assert NAME not in dumped and token.split("_", 2)[2] not in dumped
    done = next(e for e in events if e["type"] == "invitation.accepted")
    assert done["objects"]["invitation"] == invitation["id"]
    assert done["objects"]["principal"] == body["principal_id"]


def test_token_is_stored_only_as_a_digest(client, admin, project, runtime) -> None:  # type: ignore[no-untyped-def]
    token = _invite(client, admin, project).json()["token"]
    with Session(runtime.engine) as session:
        rows = session.exec(select(Invitation)).all()
    assert len(rows) == 1
    row = rows[0]
    secret = token.split("_", 2)[2]
    assert secret not in repr(row.model_dump()) and len(row.digest) == 64


def test_invitation_token_is_good_for_nothing_else(client, admin, project) -> None:  # type: ignore[no-untyped-def]
    token = _invite(client, admin, project).json()["token"]
    for method, url in (
        ("GET", "/v1/projects"),
        ("GET", f"/v1/projects/{project}"),
        ("POST", "/v1/api-keys"),
        ("GET", f"/v1/projects/{project}/invitations"),
    ):
        response = client.request(method, url, headers=_bearer(token), json={"name": "x"})
        assert response.status_code == 401, (url, response.text)
        assert "invitations:accept" in response.json()["detail"]
    # And an API key does not accept an invitation.
    response = client.post("/v1/invitations:accept", headers=admin.headers)
    assert response.status_code == 401
    assert "invitation token" in response.json()["detail"]


@pytest.mark.parametrize(
    "token,message",
    [
        ("pvi_short", "malformed"),
        ("pvi_AAAAAAAAAAAAAAAA_" + "A" * 43, "not valid"),
    ],
)
def test_bad_tokens_are_precise_401s(client, token, message) -> None:  # type: ignore[no-untyped-def]
    response = client.post("/v1/invitations:accept", headers=_bearer(token))
    assert response.status_code == 401
    assert message in response.json()["detail"]


def test_expired_and_revoked_invitations_are_refused(client, admin, project, runtime) -> None:  # type: ignore[no-untyped-def]
    expired = _invite(client, admin, project).json()
    with runtime.engine.begin() as conn:
        conn.execute(
            Invitation.__table__.update()  # type: ignore[attr-defined]
            .where(Invitation.__table__.c.id == expired["id"])  # type: ignore[attr-defined]
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    response = client.post("/v1/invitations:accept", headers=_bearer(expired["token"]))
    assert response.status_code == 401 and "expired" in response.json()["detail"]

    revoked = _invite(client, admin, project).json()
    url = f"/v1/projects/{project}/invitations/{revoked['id']}"
    gone = client.delete(url, headers=admin.headers)
    assert gone.status_code == 200 and gone.json()["revoked_at"], gone.text
    assert client.delete(url, headers=admin.headers).status_code == 409
    response = client.post("/v1/invitations:accept", headers=_bearer(revoked["token"]))
    assert response.status_code == 401 and "revoked" in response.json()["detail"]

    used = _invite(client, admin, project).json()
    assert client.post("/v1/invitations:accept", headers=_bearer(used["token"])).status_code == 201
    late = client.delete(f"/v1/projects/{project}/invitations/{used['id']}", headers=admin.headers)
    assert late.status_code == 409 and "already accepted" in late.json()["detail"]


def test_only_admins_invite_and_only_in_their_project(client, admin, project, make_caller) -> None:  # type: ignore[no-untyped-def]
    approver = make_caller("approver", project, name="approver")
    refused = _invite(client, approver, project, role="approver")
    assert refused.status_code == 403
    assert refused.json()["action"] == "project.invite"
    other = client.post("/v1/projects", json={"name": "other"}, headers=admin.headers).json()["id"]
    project_admin = make_caller("admin", project, name="project-admin")
    assert _invite(client, project_admin, other).status_code == 404
    assert _invite(client, project_admin, project, role="admin").status_code == 201
    auditor = make_caller("auditor", project, name="auditor")
    listed = client.get(f"/v1/projects/{project}/invitations", headers=auditor.headers)
    assert listed.status_code == 200 and len(listed.json()) == 1


def test_acceptance_needs_the_inviter_to_still_hold_the_role(
    client, admin, project, make_caller
) -> None:  # type: ignore[no-untyped-def]
    project_admin = make_caller("admin", project, name="soon-gone")
    invitation = _invite(client, project_admin, project, role="admin").json()
    members = client.get(f"/v1/projects/{project}/members", headers=admin.headers).json()
    binding = next(m for m in members if m["principal_id"] == project_admin.principal_id)
    removed = client.delete(
        f"/v1/projects/{project}/members/{binding['id']}", headers=admin.headers
    )
    assert removed.status_code == 204
    response = client.post("/v1/invitations:accept", headers=_bearer(invitation["token"]))
    assert response.status_code == 409, response.text
    assert "grants.role-at-least-as-high" in response.json()["detail"]
    members = client.get(f"/v1/projects/{project}/members", headers=admin.headers).json()
    assert all(m["role"] != "admin" or m["principal_id"] == admin.principal_id for m in members)
    listed = client.get(f"/v1/projects/{project}/invitations", headers=admin.headers).json()
    assert listed[0]["accepted_at"] is None  # nothing was half-written


def test_concurrent_acceptances_use_the_invitation_once(client, admin, project) -> None:  # type: ignore[no-untyped-def]
    token = _invite(client, admin, project).json()["token"]

    def accept(_: int) -> int:
        return int(client.post("/v1/invitations:accept", headers=_bearer(token)).status_code)

    with ThreadPoolExecutor(max_workers=4) as pool:
        codes = list(pool.map(accept, range(4)))
    assert codes.count(201) == 1, codes
    assert set(codes) <= {201, 409}, codes
    members = client.get(f"/v1/projects/{project}/members", headers=admin.headers).json()
    assert [m["role"] for m in members].count("approver") == 1


def test_invited_users_key_is_theirs_and_no_wider(client, admin, project) -> None:  # type: ignore[no-untyped-def]
    token = _invite(client, admin, project).json()["token"]
    key = client.post("/v1/invitations:accept", headers=_bearer(token)).json()["api_key"]
    unscoped = client.post("/v1/api-keys", json={"name": "wider"}, headers=_bearer(key["key"]))
    assert unscoped.status_code == 403
    assert "keys.scope-no-wider" in unscoped.json()["policies"]
    scoped = client.post(
        "/v1/api-keys", json={"name": "phone", "project_id": project}, headers=_bearer(key["key"])
    )
    assert scoped.status_code == 201, scoped.text
