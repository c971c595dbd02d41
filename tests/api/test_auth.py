"""Authentication and API keys: precise 401s, 403 for missing permissions, 404 across
projects, and keys that never appear in plaintext at rest or in logs."""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import text

from privet.auth.tables import ApiKey
from privet.kit.ids import utcnow
from tests.conftest import token_claims, trust_oidc_key

PROBLEM = "application/problem+json"


def _create_project(client, caller, name="alpha") -> str:  # type: ignore[no-untyped-def]
    response = client.post("/v1/projects", json={"name": name}, headers=caller.headers)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def test_no_credentials_is_401_problem(client) -> None:  # type: ignore[no-untyped-def]
    response = client.get("/v1/projects")
    assert response.status_code == 401
    assert response.headers["content-type"] == PROBLEM
    assert response.headers["www-authenticate"] == "Bearer"
    assert "no credentials" in response.json()["detail"]


@pytest.mark.parametrize(
    "header,message",
    [
        ("Basic abc", "must be 'Bearer <token>'"),
        ("Bearer pvt_short", "malformed"),
        ("Bearer pvt_AAAAAAAAAAAAAAAA_" + "A" * 43, "not valid"),
    ],
)
def test_bad_credentials_are_precise_401s(client, header, message) -> None:  # type: ignore[no-untyped-def]
    response = client.get("/v1/projects", headers={"Authorization": header})
    assert response.status_code == 401
    assert message in response.json()["detail"]


def test_admin_creates_and_lists_projects(client, admin) -> None:  # type: ignore[no-untyped-def]
    project_id = _create_project(client, admin)
    listed = client.get("/v1/projects", headers=admin.headers).json()
    assert [p["id"] for p in listed] == [project_id]
    detail = client.get(f"/v1/projects/{project_id}", headers=admin.headers).json()
    assert detail["name"] == "alpha" and detail["created_by"] == admin.principal_id


def test_duplicate_project_name_is_409(client, admin) -> None:  # type: ignore[no-untyped-def]
    _create_project(client, admin)
    response = client.post("/v1/projects", json={"name": "alpha"}, headers=admin.headers)
    assert response.status_code == 409
    assert response.json()["type"].endswith("/conflict")


def test_role_without_permission_is_403(client, admin, make_caller) -> None:  # type: ignore[no-untyped-def]
    project_id = _create_project(client, admin)
    predictor = make_caller("predictor", project_id)
    response = client.post(
        f"/v1/projects/{project_id}/members",
        json={"service_account_name": "robot", "role": "admin"},
        headers=predictor.headers,
    )
    assert response.status_code == 403
    body = response.json()
    assert body["type"].endswith("/forbidden") and body["action"] == "member.add"
    members = client.get(f"/v1/projects/{project_id}/members", headers=admin.headers).json()
    assert sorted(m["role"] for m in members) == ["admin", "predictor"]  # no robot added


def test_other_projects_are_invisible(client, admin, make_caller) -> None:  # type: ignore[no-untyped-def]
    project_a = _create_project(client, admin, "alpha")
    project_b = _create_project(client, admin, "beta")
    engineer_a = make_caller("ml_engineer", project_a)
    assert client.get(f"/v1/projects/{project_a}", headers=engineer_a.headers).status_code == 200
    response = client.get(f"/v1/projects/{project_b}", headers=engineer_a.headers)
    assert response.status_code == 404
    assert (
        client.get(f"/v1/projects/{project_b}/members", headers=engineer_a.headers).status_code
        == 404
    )
    listed = client.get("/v1/projects", headers=engineer_a.headers).json()
    assert [p["id"] for p in listed] == [project_a]


def test_member_binding_and_service_account_key(client, admin) -> None:  # type: ignore[no-untyped-def]
    project_id = _create_project(client, admin)
    binding = client.post(
        f"/v1/projects/{project_id}/members",
        json={"service_account_name": "scorer", "role": "predictor"},
        headers=admin.headers,
    )
    assert binding.status_code == 201
    principal_id = binding.json()["principal_id"]
    minted = client.post(
        "/v1/api-keys",
        json={"name": "scorer", "principal_id": principal_id, "project_id": project_id},
        headers=admin.headers,
    )
    assert minted.status_code == 201
    key = minted.json()["key"]
    assert key.startswith("pvt_")
    listed = client.get("/v1/projects", headers={"Authorization": f"Bearer {key}"}).json()
    assert [p["id"] for p in listed] == [project_id]
    again = client.post(
        f"/v1/projects/{project_id}/members",
        json={"principal_id": principal_id, "role": "predictor"},
        headers=admin.headers,
    )
    assert again.status_code == 409


def test_revoked_key_is_refused(client, admin) -> None:  # type: ignore[no-untyped-def]
    minted = client.post("/v1/api-keys", json={"name": "temp"}, headers=admin.headers).json()
    headers = {"Authorization": f"Bearer {minted['key']}"}
    assert client.get("/v1/projects", headers=headers).status_code == 200
    revoked = client.delete(f"/v1/api-keys/{minted['id']}", headers=admin.headers)
    assert revoked.status_code == 200 and revoked.json()["revoked_at"]
    response = client.get("/v1/projects", headers=headers)
    assert response.status_code == 401
    assert "revoked" in response.json()["detail"]


def test_expired_key_is_refused(client, admin, runtime) -> None:  # type: ignore[no-untyped-def]
    minted = client.post("/v1/api-keys", json={"name": "short"}, headers=admin.headers).json()
    with runtime.engine.begin() as conn:
        conn.execute(
            ApiKey.__table__.update()
            .where(ApiKey.__table__.c.id == minted["id"])
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    response = client.get("/v1/projects", headers={"Authorization": f"Bearer {minted['key']}"})
    assert response.status_code == 401
    assert "expired" in response.json()["detail"]


def test_other_principals_key_cannot_be_revoked_by_stranger(client, admin, make_caller) -> None:  # type: ignore[no-untyped-def]
    project_id = _create_project(client, admin)
    stranger = make_caller("ml_engineer", project_id)
    minted = client.post("/v1/api-keys", json={"name": "mine"}, headers=admin.headers).json()
    response = client.delete(f"/v1/api-keys/{minted['id']}", headers=stranger.headers)
    assert response.status_code == 404


def _database_text(runtime) -> str:  # type: ignore[no-untyped-def]
    """Every row of every table as text (plus the raw SQLite file bytes)."""
    chunks: list[str] = []
    url = runtime.engine.url
    if url.get_backend_name() == "sqlite":
        runtime.engine.dispose()
        db = Path(url.database)
        for path in db.parent.glob(db.name + "*"):
            chunks.append(path.read_bytes().decode("latin-1"))
    with runtime.engine.connect() as conn:
        from sqlalchemy import inspect

        for table in inspect(conn).get_table_names():
            for row in conn.execute(text(f'SELECT * FROM "{table}"')):
                chunks.append(repr(tuple(row)))
    return "\n".join(chunks)


def test_api_keys_never_at_rest_or_in_logs(client, admin, runtime, caplog) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level(logging.DEBUG)
    minted = client.post("/v1/api-keys", json={"name": "canary"}, headers=admin.headers).json()
    key = minted["key"]
    headers = {"Authorization": f"Bearer {key}"}
    assert client.get("/v1/projects", headers=headers).status_code == 200
    client.get("/v1/projects", headers={"Authorization": f"Bearer {key[:-1]}x"})
    secret_part = key.split("_", 2)[2]
    assert secret_part not in caplog.text and key not in caplog.text
    dumped = _database_text(runtime)
    assert secret_part not in dumped
    assert admin.key.split("_", 2)[2] not in dumped
    assert minted["id"] in dumped  # the key's row is there, only as a digest


# --- OIDC ---------------------------------------------------------------------------------

ISSUER, AUDIENCE = "https://idp.test", "privet-api"


@pytest.fixture
def oidc(tmp_path, runtime):  # type: ignore[no-untyped-def]
    """A locally generated signing key, its JWKS file, and a runtime that trusts it."""
    return trust_oidc_key(
        runtime, tmp_path / "jwks.json", issuer=ISSUER, audience=AUDIENCE, kid="k1"
    )


def _token(key, **overrides) -> str:  # type: ignore[no-untyped-def]
    claims = token_claims(
        ISSUER, AUDIENCE, "alice@bank", issued_at=True, name="Alice", privet_roles=[]
    )
    headers = {"kid": overrides.pop("kid", "k1")}
    claims.update(overrides)
    return jwt.encode(claims, key, algorithm="RS256", headers=headers)


def test_valid_jwt_maps_subject_and_roles(client, admin, oidc) -> None:  # type: ignore[no-untyped-def]
    project_id = _create_project(client, admin)
    token = _token(oidc, privet_roles=[f"auditor@{project_id}"])
    headers = {"Authorization": f"Bearer {token}"}
    listed = client.get("/v1/projects", headers=headers)
    assert listed.status_code == 200 and [p["id"] for p in listed.json()] == [project_id]
    forbidden = client.post(
        f"/v1/projects/{project_id}/members",
        json={"service_account_name": "x", "role": "admin"},
        headers=headers,
    )
    assert forbidden.status_code == 403


@pytest.mark.parametrize(
    "overrides,message",
    [
        ({"aud": "someone-else"}, "audience"),
        ({"iss": "https://evil.test"}, "issuer"),
        ({"exp": int(time.time()) - 10}, "expired"),
        ({"kid": "unknown"}, "key id 'unknown' is unknown"),
        ({"privet_roles": ["overlord@x"]}, "unknown role"),
    ],
)
def test_bad_jwts_are_precise_401s(client, oidc, overrides, message) -> None:  # type: ignore[no-untyped-def]
    token = _token(oidc, **overrides)
    response = client.get("/v1/projects", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert message in response.json()["detail"]


def test_unsigned_and_foreign_jwts_are_refused(client, oidc) -> None:  # type: ignore[no-untyped-def]
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "mallory", "exp": now + 300}
    unsigned = jwt.encode(claims, key=None, algorithm="none", headers={"kid": "k1"})
    response = client.get("/v1/projects", headers={"Authorization": f"Bearer {unsigned}"})
    assert response.status_code == 401 and "'none' is not accepted" in response.json()["detail"]
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = jwt.encode(claims, other, algorithm="RS256", headers={"kid": "k1"})
    response = client.get("/v1/projects", headers={"Authorization": f"Bearer {forged}"})
    assert response.status_code == 401 and "signature" in response.json()["detail"]
