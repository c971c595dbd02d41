"""The policy routes, decision events in the ledger, and reloads (API and SIGHUP)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
from pathlib import Path

from sqlmodel import Session, col, select

from privet.ledger.tables import LedgerEntry
from privet.policy import default_policy_dir
from tests.e2e.conftest import start_server, stop_server


def ledger_events(engine, type_: str | None = None) -> list[dict]:  # type: ignore[no-untyped-def]
    with Session(engine) as session:
        rows = session.exec(select(LedgerEntry).order_by(col(LedgerEntry.id))).all()
    events = [json.loads(row.event) for row in rows]
    return [e for e in events if type_ is None or e["type"] == type_]


def test_policy_set_is_listed_for_auditors(client, admin, runtime) -> None:  # type: ignore[no-untyped-def]
    body = client.get("/v1/policies", headers=admin.headers).json()
    assert body["version"] == runtime.authorizer.engine.version
    assert body["version"].startswith("sha256:")
    ids = {p["id"] for p in body["policies"]}
    assert {"role.admin", "tenancy.project-mismatch"} <= ids


def test_decisions_are_ledger_events_with_policy_ids(client, admin, make_caller, runtime) -> None:  # type: ignore[no-untyped-def]
    project = client.post("/v1/projects", json={"name": "p1"}, headers=admin.headers).json()
    predictor = make_caller("predictor", project["id"])
    denied = client.post(
        f"/v1/projects/{project['id']}/members",
        json={"service_account_name": "x", "role": "admin"},
        headers=predictor.headers,
    )
    assert denied.status_code == 403
    decisions = ledger_events(runtime.engine, "auth.decision")
    deny = [d for d in decisions if d["outcome"] == "deny"]
    assert len(deny) == 1
    assert deny[0]["actor"] == predictor.principal_id
    assert deny[0]["details"]["action"] == "member.add"
    assert deny[0]["details"]["policy_version"] == runtime.authorizer.engine.version
    assert deny[0]["objects"] == {"project": project["id"]}
    allow = [
        d
        for d in decisions
        if d["outcome"] == "allow" and d["details"]["action"] == "project.create"
    ]
    assert allow and allow[0]["details"]["policies"]  # the permit ids that allowed it
    created = ledger_events(runtime.engine, "project.created")
    assert [e["objects"]["project"] for e in created] == [project["id"]]
    assert not [
        e
        for e in ledger_events(runtime.engine, "member.added")
        if e["details"]["role"] == "admin" and e["actor"] == predictor.principal_id
    ]


def test_reload_refuses_a_broken_policy_set(client, admin, runtime, tmp_path) -> None:  # type: ignore[no-untyped-def]
    policy_dir = tmp_path / "policies"
    shutil.copytree(default_policy_dir(), policy_dir)
    from privet.policy import PolicyEngine

    runtime.authorizer.engine = PolicyEngine.load(policy_dir)
    before = runtime.authorizer.engine.version
    (policy_dir / "common.cedar").write_text("permit (principal, action, resource) when {")
    response = client.post("/v1/policies:reload", headers=admin.headers)
    assert response.status_code == 409
    body = response.json()
    assert body["file"].endswith("common.cedar") and "unchanged" in body["detail"]
    assert runtime.authorizer.engine.version == before
    assert client.get("/v1/projects", headers=admin.headers).status_code == 200


def _ceiling_dir(tmp_path: Path) -> Path:
    policy_dir = tmp_path / "policies"
    shutil.copytree(default_policy_dir(), policy_dir)
    return policy_dir


def test_sighup_reloads_policies_and_records_it(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A steward edits a .cedar file and sends SIGHUP: the running server's decisions change
    with no code change, and the reload is an audit event."""
    policy_dir = _ceiling_dir(tmp_path)
    server = start_server(tmp_path / "home", env={"PRIVET_POLICY_DIR": str(policy_dir)})
    try:
        with server.client() as http:
            assert http.get("/v1/policies").status_code == 200
            version = http.get("/v1/policies").json()["version"]
            # Forbid everyone from listing policies: a visible change of behaviour.
            (policy_dir / "zz_lockdown.cedar").write_text(
                '@id("test.lockdown")\n'
                'forbid (principal, action == Action::"policy.read", resource);\n'
            )
            os.kill(server.process.pid, signal.SIGHUP)
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                response = http.get("/v1/policies")
                if response.status_code == 403:
                    break
                time.sleep(0.2)
            assert response.status_code == 403
    finally:
        stop_server(server)
    from privet.db import create_db_engine

    engine = create_db_engine(f"sqlite:///{server.home / 'privet.db'}")
    reloads = ledger_events(engine, "policy.reloaded")
    engine.dispose()
    assert len(reloads) == 1
    assert reloads[0]["details"]["old_version"] == version
    assert reloads[0]["details"]["trigger"] == "SIGHUP"
    assert reloads[0]["details"]["changed"] is True
