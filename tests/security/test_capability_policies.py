"""The capability rules as policies (policies/capabilities.cedar), beyond the JSON cases:
an invitation token's principal can do nothing but accept its invitation, and the grant
rule still holds when a future policy lets another role add members."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from privet.policy import PolicyEngine, default_policy_dir
from privet.policy.actions import Action


def test_an_invitation_principal_has_no_other_action() -> None:
    engine = PolicyEngine.load()
    for action in Action:
        if action is Action.INVITATION_ACCEPT:
            continue
        decision = engine.decide(
            principal_type="Invitation",
            principal_id="inv_x",
            action=action.value,
            resource_type="Project",
            resource_id="prj_a",
            project_id="prj_a",
            roles=["admin"],  # even with roles somehow attached
        )
        assert not decision.allowed, action
    accepted = engine.decide(
        principal_type="Invitation",
        principal_id="inv_x",
        action="invitation.accept",
        resource_type="Invitation",
        resource_id="inv_x",
        project_id="prj_a",
    )
    assert accepted.allowed and accepted.policy_ids == ("invitation.accept-with-its-token",)


@pytest.mark.parametrize("principal_type", ["User", "ServiceAccount"])
def test_nobody_but_the_token_accepts(principal_type: str) -> None:
    decision = PolicyEngine.load().decide(
        principal_type=principal_type,
        principal_id="inv_x",  # even with the invitation's id
        action="invitation.accept",
        resource_type="Invitation",
        resource_id="inv_x",
        project_id="prj_a",
        roles=["admin"],
    )
    assert not decision.allowed


def test_grant_rule_holds_for_a_future_member_adding_role(tmp_path: Path) -> None:
    policies = tmp_path / "policies"
    shutil.copytree(default_policy_dir(), policies)
    (policies / "zz_local.cedar").write_text(
        '@id("local.stewards-add-members")\n'
        'permit (principal, action == Action::"member.add", resource)\n'
        'when { context.roles.contains("data_steward") };\n'
    )
    engine = PolicyEngine.load(policies)

    def add(role: str) -> tuple[bool, tuple[str, ...]]:
        decision = engine.decide(
            principal_type="User",
            principal_id="usr_steward",
            action="member.add",
            resource_type="Project",
            resource_id="prj_a",
            project_id="prj_a",
            roles=["data_steward"],
            context={"role": role},
        )
        return decision.allowed, decision.policy_ids

    assert add("data_steward") == (True, ("local.stewards-add-members",))
    for higher in ("admin", "approver", "auditor"):
        assert add(higher) == (False, ("grants.role-at-least-as-high",)), higher
