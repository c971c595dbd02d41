"""Report evidence: cited events must be included under the report's signed checkpoint."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from privet_audit.checkpoint import Signer
from privet_audit.report import verify_report

from .helpers import Log


def make_report(log: Log, indexes: list[int], size: int = 100) -> dict[str, Any]:
    return {
        "title": "What did model v3 learn from?",
        "ledger": {
            "checkpoint": log.checkpoint(size),
            "verifier_key": log.vkey,
            "events": [
                {
                    "index": i,
                    "entry": log.entries[i].decode(),
                    "inclusion_proof": [p.hex() for p in log.tree.inclusion_proof(i, size)],
                }
                for i in indexes
            ],
        },
    }


def test_good_report_verifies(log: Log, tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    path.write_text(json.dumps(make_report(log, [0, 17, 99])))
    res = verify_report(path, key=log.vkey)
    assert res.ok, res.message
    assert res.events_verified == 3 and res.tree_size == 100
    assert verify_report(make_report(log, [5], size=6)).key_source == "report"


def test_altered_entry_is_named(log: Log) -> None:
    rep = make_report(log, [3, 17, 40])
    rep["ledger"]["events"][1]["entry"] = rep["ledger"]["events"][1]["entry"].replace(
        '"label":1', '"label":0'
    )
    res = verify_report(rep, key=log.vkey)
    assert not res.ok and res.bad_event == 1 and res.bad_index == 17
    assert "ledger.events[1] (index 17) is not in the log at size 100" in res.message


def test_wrong_index_and_bad_proof(log: Log) -> None:
    rep = make_report(log, [17])
    rep["ledger"]["events"][0]["index"] = 18
    assert "is not in the log" in verify_report(rep, key=log.vkey).message
    rep = make_report(log, [17])
    rep["ledger"]["events"][0]["inclusion_proof"].pop()
    assert "must have" in verify_report(rep, key=log.vkey).message
    rep = make_report(log, [17])
    rep["ledger"]["events"][0]["inclusion_proof"][0] = "zz"
    assert "bad proof encoding" in verify_report(rep, key=log.vkey).message


def test_checkpoint_signed_by_another_key(log: Log, other_signer: Signer) -> None:
    rep = make_report(log, [1])
    rep["ledger"]["checkpoint"] = log.checkpoint(100, other_signer)
    res = verify_report(rep, key=log.vkey)
    assert not res.ok and "no signature from a trusted key" in res.message


def test_non_canonical_entry_rejected(log: Log) -> None:
    rep = make_report(log, [1])
    rep["ledger"]["events"][0]["entry"] = json.dumps(json.loads(log.entries[1]), indent=1)
    res = verify_report(rep, key=log.vkey)
    assert not res.ok and "canonical" in res.message


def test_missing_ledger() -> None:
    assert "no 'ledger'" in verify_report({}).message
