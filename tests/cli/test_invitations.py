"""`privet members invite` and `privet invitations accept|list|revoke` against the
invitation API (docs: /work/briefs spec; routes built on the "keys" branch). These tests
pass once those routes are merged; on a branch without them they fail with a 404/405."""

from __future__ import annotations

import json
import re
from typing import Any

from tests.cli.conftest import Run


def test_invite_accept_list_revoke(cli: Run, admin: Any) -> None:
    key = admin.key
    project = cli("projects", "create", "retail-credit", "-q", key=key).stdout.strip()
    invited = cli("members", "invite", project, "--name", "risk-officer", "--role", "approver",
                  "-q", key=key)  # fmt: skip
    assert invited.exit_code == 0, invited.output
    token = invited.stdout.strip()
    assert token.startswith("pvi_"), token
    listed = json.loads(cli("invitations", "list", project, "-o", "json", key=key).stdout)
    assert [i["name"] for i in listed] == ["risk-officer"] and "token" not in listed[0]

    accepted = cli("invitations", "accept", token, "--key-name", "laptop", "-q")  # no key set
    assert accepted.exit_code == 0, accepted.output
    new_key = accepted.stdout.strip()
    assert re.fullmatch(r"pvt_\w+_[\w-]+", new_key), new_key
    me = json.loads(cli("whoami", "-o", "json", key=new_key).stdout)
    assert me["name"] == "risk-officer" and me["kind"] == "user"
    assert {"role": "approver", "project_id": project} in me["roles"]
    again = cli("invitations", "accept", token)
    assert again.exit_code == 1  # one use

    second = cli("members", "invite", project, "--name", "auditor-x", "--role", "auditor",
                 "-o", "json", key=key)  # fmt: skip
    invitation = json.loads(second.stdout)
    revoked = json.loads(
        cli("invitations", "revoke", project, invitation["id"], "-o", "json", key=key).stdout
    )
    assert revoked["revoked_at"] is not None
    assert cli("invitations", "accept", invitation["token"]).exit_code == 1
