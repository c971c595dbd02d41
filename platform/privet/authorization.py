"""The gateway's policy decision point: Cedar policies from `policies/` via privet.policy.

The gateway resolves the caller's role bindings for the resource's project and hands the
rest to Cedar; what each role may do lives only in the policy files.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlmodel import Session

from privet import ledger
from privet.auth.identity import Identity
from privet.config import Settings
from privet.kit.errors import ConflictError
from privet.policy import PolicyEngine, PolicyLoadError, ReloadResult
from privet.policy import principal_ref as _policy_ref

#: `invitation`: a caller holding an invitation token, which may only accept it.
_PRINCIPAL_TYPES = {"user": "User", "service_account": "ServiceAccount", "invitation": "Invitation"}


@dataclass(frozen=True, slots=True)
class GatewayDecision:
    allowed: bool
    policy_ids: tuple[str, ...]
    policy_version: str
    errors: tuple[str, ...] = ()
    #: for a deny: (policy id, human reason) of each forbid that refused
    reasons: tuple[tuple[str, str], ...] = ()


def principal_ref(identity: Identity) -> str:
    """The `<Type>:<id>` string policies compare with stored authors (e.g. submitted_by)."""
    return _policy_ref(_PRINCIPAL_TYPES[identity.kind], identity.principal_id)


class CedarAuthorizer:
    """Adapts gateway identities and resources to one Cedar decision."""

    def __init__(self, engine: PolicyEngine) -> None:
        self.engine = engine

    def decide(
        self, *, identity: Identity, action: str, resource: Any, context: dict[str, Any]
    ) -> GatewayDecision:
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
            principal_accountable=identity.accountable,
        )
        return GatewayDecision(
            decision.allowed,
            decision.policy_ids,
            decision.policy_version,
            tuple(str(e) for e in decision.errors),
            decision.reasons,
        )

    def reload(self, session: Session, *, actor: str | None, trigger: str) -> ReloadResult:
        """Re-read the policy files (an invalid set keeps the old one and raises) and record
        the reload in the ledger."""
        try:
            result = self.engine.reload()
        except PolicyLoadError as exc:
            raise ConflictError(
                f"the policy files are invalid, the active set is unchanged: {exc}",
                file=str(exc.file),
                line=exc.line,
            ) from exc
        ledger.emit(
            session,
            type="policy.reloaded",
            actor=actor,
            details={
                "old_version": result.old_version,
                "new_version": result.new_version,
                "changed": result.changed,
                "trigger": trigger,
            },
        )
        return result


def build_authorizer(settings: Settings) -> CedarAuthorizer:
    """Load and validate the policy set once; an invalid file stops start-up."""
    return CedarAuthorizer(PolicyEngine.load(settings.policy_dir))
