"""The gateway's policy decision point: Cedar policies from `policies/` via privet.policy.

The gateway resolves the caller's role bindings for the resource's project and hands the
rest to Cedar; what each role may do lives only in the policy files.
"""

from __future__ import annotations

from typing import Any

from privet.auth.identity import Identity
from privet.config import Settings
from privet.policy.engine import PolicyEngine
from privet.runtime import Decision

_PRINCIPAL_TYPES = {"user": "User", "service_account": "ServiceAccount"}


def principal_ref(identity: Identity) -> str:
    """The `<Type>:<id>` string policies compare with stored authors (e.g. submitted_by)."""
    return f"{_PRINCIPAL_TYPES[identity.kind]}:{identity.principal_id}"


class CedarAuthorizer:
    """Adapts gateway identities and resources to one Cedar decision."""

    def __init__(self, engine: PolicyEngine) -> None:
        self.engine = engine

    def decide(
        self, *, identity: Identity, action: str, resource: Any, context: dict[str, Any]
    ) -> Decision:
        project_id = resource.project_id
        roles = identity.roles_in(project_id) if project_id else identity.platform_roles()
        decision = self.engine.decide(
            principal_type=_PRINCIPAL_TYPES[identity.kind],
            principal_id=identity.principal_id,
            action=action,
            resource_type=resource.type,
            resource_id=resource.id,
            resource_attributes=resource.attrs,
            project_id=project_id,
            roles=roles,
            grants=context.pop("grants", ()),
            context=context,
        )
        return Decision(decision.allowed, decision.policy_ids, decision.policy_version)


def build_authorizer(settings: Settings) -> CedarAuthorizer:
    """Load and validate the policy set once; an invalid file stops start-up."""
    return CedarAuthorizer(PolicyEngine.load(settings.policy_dir))
