"""Cached API-key identities never outlive a change to who may do what (issue 23).

Two gateways (two runtimes, two caches) share one database, as replicas do. Each test
warms both caches, changes keys or bindings through one of them (or behind both of their
backs, in SQL), and checks the other's very next request sees the change.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from privet.api.app import create_app
from privet.auth.identity import Identity
from privet.auth.identity_cache import IdentityCache
from privet.kit.ids import utcnow
from privet.runtime import build_runtime


@pytest.fixture
def replica(settings, runtime):  # type: ignore[no-untyped-def]
    """A second gateway on the same database, with its own identity cache."""
    other = build_runtime(settings)
    assert other.identities is not runtime.identities
    with TestClient(create_app(runtime=other), raise_server_exceptions=False) as c:
        yield c


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_revocation_on_one_replica_is_seen_by_the_other(client, replica, admin) -> None:  # type: ignore[no-untyped-def]
    minted = client.post("/v1/api-keys", json={"name": "temp"}, headers=admin.headers).json()
    for gateway in (client, replica):  # both caches hold the identity now
        assert gateway.get("/v1/projects", headers=_bearer(minted["key"])).status_code == 200
    assert client.delete(f"/v1/api-keys/{minted['id']}", headers=admin.headers).status_code == 200
    for gateway in (replica, client):
        response = gateway.get("/v1/projects", headers=_bearer(minted["key"]))
        assert response.status_code == 401, response.text
        assert "revoked" in response.json()["detail"]


def test_role_removal_is_seen_at_once(client, replica, admin, make_caller) -> None:  # type: ignore[no-untyped-def]
    project = client.post("/v1/projects", json={"name": "cache"}, headers=admin.headers).json()
    member = make_caller("auditor", project["id"])
    url = f"/v1/projects/{project['id']}"
    for gateway in (client, replica):
        assert gateway.get(url, headers=member.headers).status_code == 200
    members = client.get(f"{url}/members", headers=admin.headers).json()
    (binding,) = [m["id"] for m in members if m["principal_id"] == member.principal_id]
    removed = client.delete(f"{url}/members/{binding}", headers=admin.headers)
    assert removed.status_code in (200, 204), removed.text
    for gateway in (replica, client):
        assert gateway.get(url, headers=member.headers).status_code == 404


def test_a_change_behind_the_gateways_back_is_seen(client, replica, admin, runtime) -> None:  # type: ignore[no-untyped-def]
    """Even a write that bypasses the services (an operator's SQL) moves the epoch."""
    minted = client.post("/v1/api-keys", json={"name": "sql"}, headers=admin.headers).json()
    assert replica.get("/v1/projects", headers=_bearer(minted["key"])).status_code == 200
    with runtime.engine.begin() as conn:
        conn.execute(
            text("UPDATE api_keys SET expires_at = :t WHERE id = :id"),
            {"t": utcnow() - timedelta(seconds=1), "id": minted["id"]},
        )
    response = replica.get("/v1/projects", headers=_bearer(minted["key"]))
    assert response.status_code == 401 and "expired" in response.json()["detail"]


def test_cache_hits_skip_the_key_reads(client, admin, runtime) -> None:  # type: ignore[no-untyped-def]
    """A warm identity is served from the cache (the cache is really used)."""
    assert client.get("/v1/projects", headers=admin.headers).status_code == 200
    with runtime.engine.connect() as conn:
        epoch = conn.execute(text("SELECT value FROM auth_epoch WHERE id = 1")).scalar_one()
    from privet.auth import api_keys

    digest = api_keys.digest(runtime.api_key_pepper, admin.key)
    cached = runtime.identities.get(digest, epoch=int(epoch), now=utcnow())
    assert cached is not None and cached.principal_id == admin.principal_id


def _identity(name: str) -> Identity:
    return Identity(
        principal_id=name, kind="user", name=name, bindings=frozenset(), method="api_key"
    )


def test_cache_entry_rules() -> None:
    cache = IdentityCache(max_entries=2)
    now = utcnow()
    later = now + timedelta(hours=1)
    cache.put("a", epoch=1, expires_at=later, identity=_identity("a"))
    assert cache.get("a", epoch=2, now=now) is None  # epoch moved: dropped
    assert cache.get("a", epoch=1, now=now) is None  # ...and gone for good
    cache.put("b", epoch=1, expires_at=now, identity=_identity("b"))
    assert cache.get("b", epoch=1, now=now) is None  # expired
    for name in ("c", "d", "e"):
        cache.put(name, epoch=1, expires_at=later, identity=_identity(name))
    assert cache.get("c", epoch=1, now=now) is None  # bounded: least recently used out
    assert cache.get("e", epoch=1, now=now) is not None
