"""`privet keys show`: the server's master key over the API, as a table, JSON or YAML;
refused with the policy's reason for someone who may not read it; exit 1 when the key
does not answer."""

from __future__ import annotations

import json
from typing import Any

from privet.crypto.providers import local_kek_dir
from tests.cli.conftest import Run


def test_keys_show_reads_the_servers_master_key(cli: Run, admin: Any, make_caller: Any) -> None:
    shown = cli("keys", "show", "-o", "json", key=admin.key)
    assert shown.exit_code == 0, shown.output
    health = json.loads(shown.stdout)
    assert health["provider"] == "local" and health["current_version"] == 1
    assert health["reachable"] is True
    human = cli("keys", "show", "-o", "table", key=admin.key)
    assert human.exit_code == 0 and "reachable" in human.stdout and "local" in human.stdout

    nobody = make_caller("ml_engineer", None, "Tom")
    refused = cli("keys", "show", key=nobody.key)
    assert refused.exit_code == 1 and "master_key.status" in refused.output


def test_keys_show_fails_when_the_key_does_not_answer(cli: Run, admin: Any, runtime: Any) -> None:
    path = local_kek_dir(runtime.settings) / "v1.key"
    kept = path.read_bytes()
    path.write_bytes(b"short")
    try:
        broken = cli("keys", "show", "-o", "table", key=admin.key)
    finally:
        path.write_bytes(kept)
    assert broken.exit_code == 1 and "UNREACHABLE" in broken.stdout
    assert "corrupt" in broken.output
