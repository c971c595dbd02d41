"""The audit routes: a checkpoint an auditor keeps, events, proofs that verify with
privet_audit alone, and an export that `privet-audit verify` accepts offline."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from privet.ledger.sequencer import integrate_now
from privet_audit.checkpoint import Verifier, open_checkpoint
from privet_audit.merkle import verify_consistency, verify_inclusion


def _activity(client, admin) -> str:  # type: ignore[no-untyped-def]
    project = client.post("/v1/projects", json={"name": "audited"}, headers=admin.headers)
    for i in range(3):
        client.post(
            f"/v1/projects/{project.json()['id']}/members",
            json={"service_account_name": f"sa{i}", "role": "predictor"},
            headers=admin.headers,
        )
    return str(project.json()["id"])


def test_checkpoint_events_and_proofs_verify(client, admin, runtime) -> None:  # type: ignore[no-untyped-def]
    _activity(client, admin)
    integrate_now(runtime.engine)
    cp = client.get("/v1/audit/checkpoint", headers=admin.headers).json()
    verifier = Verifier.parse(cp["verifier_key"])
    checkpoint = open_checkpoint(cp["note"], verifier)
    assert checkpoint.size == cp["tree_size"] > 10
    page = client.get(
        "/v1/audit/events", params={"type": "member.added", "limit": 2}, headers=admin.headers
    ).json()
    assert len(page["items"]) == 2 and page["next_start"] is not None
    event = page["items"][1]
    proof = client.get(
        "/v1/audit/proofs/inclusion", params={"index": event["index"]}, headers=admin.headers
    ).json()
    assert proof["tree_size"] == checkpoint.size
    from privet_audit.merkle import leaf_hash

    assert leaf_hash(event["entry"].encode()).hex() == event["leaf_hash"]
    verify_inclusion(
        bytes.fromhex(event["leaf_hash"]),
        event["index"],
        proof["tree_size"],
        [bytes.fromhex(h) for h in proof["hashes"]],
        checkpoint.root,
    )
    consistency = client.get(
        "/v1/audit/proofs/consistency", params={"size1": 3}, headers=admin.headers
    ).json()
    verify_consistency(
        3,
        consistency["size2"],
        [bytes.fromhex(h) for h in consistency["hashes"]],
        bytes.fromhex(consistency["root1"]),
        checkpoint.root,
    )


def test_project_auditor_sees_only_their_project(client, admin, make_caller, runtime) -> None:  # type: ignore[no-untyped-def]
    project_a = _activity(client, admin)
    other = client.post("/v1/projects", json={"name": "other"}, headers=admin.headers).json()
    auditor = make_caller("auditor", project_a)
    integrate_now(runtime.engine)
    mine = client.get("/v1/audit/events", params={"project": project_a}, headers=auditor.headers)
    assert mine.status_code == 200
    assert mine.json()["items"] and all(
        e["event"]["project"] == project_a for e in mine.json()["items"]
    )
    theirs = client.get(
        "/v1/audit/events", params={"project": other["id"]}, headers=auditor.headers
    )
    assert theirs.status_code == 404
    whole_log = client.get("/v1/audit/events", headers=auditor.headers)
    assert whole_log.status_code == 403
    assert client.get("/v1/audit/export", headers=auditor.headers).status_code == 403


def _offline_verify(bundle: Path, key: str) -> subprocess.CompletedProcess[str]:
    """``privet-audit verify`` of an exported bundle against the verifier key."""
    auditor = str(Path(sys.executable).with_name("privet-audit"))
    return subprocess.run(
        [auditor, "verify", str(bundle), "--key", key], capture_output=True, text=True
    )


def test_export_verifies_offline_and_live(client, admin, runtime, tmp_path) -> None:  # type: ignore[no-untyped-def]
    _activity(client, admin)
    response = client.get("/v1/audit/export", headers=admin.headers)
    assert response.status_code == 200
    bundle = tmp_path / "bundle.jsonl"
    bundle.write_bytes(response.content)
    cp = client.get("/v1/audit/checkpoint", headers=admin.headers).json()
    key_file = tmp_path / "key"
    key_file.write_text(cp["verifier_key"])
    result = _offline_verify(bundle, cp["verifier_key"])
    assert result.returncode == 0, result.stdout + result.stderr
    tampered = tmp_path / "tampered.jsonl"
    tampered.write_bytes(response.content.replace(b'"member.added"', b'"member.addex"', 1))
    bad = _offline_verify(tampered, cp["verifier_key"])
    assert bad.returncode == 1
    live = client.post("/v1/audit:verify", headers=admin.headers).json()
    assert live["ok"] is True and live["entries_verified"] >= 10
    assert not list(runtime.settings.home.glob("export-*"))  # the temp export is gone
