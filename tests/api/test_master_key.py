"""GET /v1/admin/master-key: the master key's provider, id, versions, dates and a live
wrap/unwrap probe, for whoever `master_key.status` allows (admins and auditors bound
platform-wide); everyone else is refused; both decisions are ledger events; the answer
never holds key material."""

from __future__ import annotations

import base64
from typing import Any

from privet import crypto
from privet.crypto.providers import local_kek_dir
from privet.db import session_scope
from tests.api.test_policies import ledger_events

PATH = "/v1/admin/master-key"


def _decisions(runtime: Any, actor: str) -> list[tuple[str, str]]:
    return [
        (e["outcome"], e["details"]["action"])
        for e in ledger_events(runtime.engine, "auth.decision")
        if e["actor"] == actor and e["details"]["action"] == "master_key.status"
    ]


def test_admin_sees_the_local_master_key_and_its_rotation(client, admin, runtime) -> None:  # type: ignore[no-untyped-def]
    first = client.get(PATH, headers=admin.headers)
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["provider"] == "local" and body["key_id"] == "local"
    assert body["current_version"] == 1 and body["reachable"] is True and body["problem"] is None
    assert body["created_at"] and body["rotated_at"] is None
    assert [(v["version"], v["state"]) for v in body["versions"]] == [(1, "active")]
    kek = (local_kek_dir(runtime.settings) / "v1.key").read_bytes()
    spellings = (kek.hex(), base64.b64encode(kek), base64.urlsafe_b64encode(kek))
    for shown in spellings:  # never the key material, in any spelling
        assert (shown if isinstance(shown, str) else shown.decode()) not in first.text
    assert _decisions(runtime, admin.principal_id) == [("allow", "master_key.status")]

    with session_scope(runtime.engine) as session:
        crypto.rotate(session=session, provider=runtime.key_provider)
    rotated = client.get(PATH, headers=admin.headers).json()
    assert rotated["current_version"] == 2 and rotated["rotated_at"]
    assert rotated["created_at"] == body["created_at"]  # version 1's, unchanged


def test_an_unusable_master_key_is_reported_unreachable(client, admin, runtime) -> None:  # type: ignore[no-untyped-def]
    path = local_kek_dir(runtime.settings) / "v1.key"
    kept = path.read_bytes()
    path.write_bytes(b"short")  # a corrupt key file: listed, but it cannot wrap
    try:
        body = client.get(PATH, headers=admin.headers).json()
    finally:
        path.write_bytes(kept)
    assert body["reachable"] is False and body["current_version"] is None
    assert "corrupt" in body["problem"]
    assert client.get(PATH, headers=admin.headers).json()["reachable"] is True


def test_only_admins_and_auditors_bound_platform_wide_may_read_it(  # type: ignore[no-untyped-def]
    client, admin, make_caller, runtime
) -> None:
    project = client.post("/v1/projects", json={"name": "mk"}, headers=admin.headers).json()["id"]
    auditor = make_caller("auditor", None, "Ada")
    assert client.get(PATH, headers=auditor.headers).status_code == 200
    for role, bound in (
        ("admin", project),  # a project's admin administers the project, not the platform
        ("approver", project),
        ("ml_engineer", project),
        ("data_steward", None),
        (None, None),
    ):
        caller = make_caller(role, bound, f"not-{role}")
        refused = client.get(PATH, headers=caller.headers)
        assert refused.status_code == 403, (role, refused.text)
        assert "master_key.status" in refused.text
        assert _decisions(runtime, caller.principal_id) == [("deny", "master_key.status")]
