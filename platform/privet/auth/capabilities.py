"""Capability rules for keys and grants: the facts the policies decide on, and the reasons a
refusal gives.

The rules are Cedar policies (policies/capabilities.cedar). This module gathers from the
database what they need — the key owner's kind and project, the minting key's scope and
expiry — so that no sequence of allowed requests widens anyone's capabilities:

* a key is minted for one's own principal, scoped and lived no wider than the minting key;
* or by a project admin for a service account of that project, scoped to that project;
* users' keys are never minted by someone else (invitations or OIDC instead);
* another principal's key is revoked only if it is a service account's key of the
  revoker's project (or by a platform admin);
* a role is granted only by a holder of a role at least as high in the same scope.

The schema requires every fact, so a route that forgets one is denied (fail closed).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session

from privet.auth.identity import Identity
from privet.auth.tables import ApiKey, Principal, PrincipalKind, Role
from privet.kit.ids import utcnow

USERS_KEYS = "keys.users-keys-are-their-own"
SERVICE_ACCOUNT_OF_PROJECT = "keys.service-account-of-the-project"
SCOPE_NO_WIDER = "keys.scope-no-wider"
LIFETIME_NO_WIDER = "keys.lifetime-no-wider"
REVOKE_OWN_OR_PROJECT_SA = "keys.revoke-own-or-project-service-accounts"
ROLE_AT_LEAST_AS_HIGH = "grants.role-at-least-as-high"


@dataclass(frozen=True, slots=True)
class Facts:
    """What one key route hands the guard: resource attributes, context and reasons."""

    attrs: dict[str, Any]
    context: dict[str, Any]
    reasons: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class KeyMint:
    """A key about to be minted: the facts to decide on, its owner, scope and expiry."""

    facts: Facts
    owner: Principal
    project_id: str | None
    expires_at: datetime


def owner_attrs(owner: Principal, *, key_project: str | None) -> dict[str, Any]:
    """The `Principal` resource of key routes (see policies/schema.cedarschema)."""
    return {
        "principal": owner.id,
        "kind": owner.kind,
        "home_project": owner.project_id or "",
        "scope": key_project or "",
    }


def minting_key_expiry(session: Session, identity: Identity) -> datetime | None:
    """The expiry of the API key the caller authenticated with (None for OIDC tokens)."""
    if identity.method != "api_key" or identity.credential_id is None:
        return None
    row = session.get(ApiKey, identity.credential_id)
    return row.expires_at if row is not None else utcnow()


def plan_key_mint(
    session: Session,
    *,
    identity: Identity,
    owner: Principal,
    project_id: str | None,
    ttl_days: int | None,
    default_ttl_days: int,
) -> KeyMint:
    """The facts for `api_key.create` and the key's expiry.

    Without `ttl_days` the default lifetime is cut to the minting key's expiry; an explicit
    `ttl_days` beyond it is refused (keys.lifetime-no-wider) rather than silently cut.
    """
    now = utcnow()
    limit = minting_key_expiry(session, identity)
    expires_at = now + timedelta(days=ttl_days or default_ttl_days)
    if ttl_days is None and limit is not None:
        expires_at = min(expires_at, limit)
    caller_scope = identity.scope_project_id or ""
    own = owner.id == identity.principal_id
    context = {
        "self": own,
        "within_lifetime": limit is None or expires_at <= limit,
        "caller_scope": caller_scope,
    }
    where = f"project {project_id!r}" if project_id else "no project (every project)"
    reasons = {
        USERS_KEYS: (
            f"principal {owner.id!r} is a user, and a user's keys are minted only by that "
            "user: invite the person instead (POST /v1/projects/{project_id}/invitations) "
            "or let them sign in with OIDC"
        ),
        SERVICE_ACCOUNT_OF_PROJECT: (
            f"a key for another principal is minted only for a service account of the "
            f"project it is scoped to, and service account {owner.id!r} is not one of "
            f"{where}: send the service account's own project as project_id (its project "
            "is not named here: it may be one you have no role in)"
        ),
        SCOPE_NO_WIDER: (
            f"the key you called with is scoped to project {caller_scope!r}, so every key "
            f"it mints is scoped to {caller_scope!r} too (asked for: {where}): send "
            f'"project_id": "{caller_scope}"'
        ),
        LIFETIME_NO_WIDER: (
            f"a minted key never outlives the key that mints it (yours expires at "
            f"{limit.isoformat() if limit else '-'}; asked for {expires_at.isoformat()}): "
            "ask for fewer ttl_days, or leave ttl_days out to get the longest allowed"
        ),
    }
    return KeyMint(
        facts=Facts(owner_attrs(owner, key_project=project_id), context, reasons),
        owner=owner,
        project_id=project_id,
        expires_at=expires_at,
    )


def revoke_facts(identity: Identity, *, owner: Principal, key: ApiKey) -> Facts:
    """The facts for `api_key.revoke` of `key`, whose owner is `owner`."""
    return Facts(
        attrs=owner_attrs(owner, key_project=key.project_id),
        context={
            "self": owner.id == identity.principal_id,
            "platform_admin": Role.admin.value in identity.platform_roles(),
        },
        reasons={
            REVOKE_OWN_OR_PROJECT_SA: (
                "you revoke your own keys, and as a project admin the keys of that "
                f"project's service accounts scoped to it; key {key.id!r} belongs to "
                f"{'a user' if owner.kind == PrincipalKind.user.value else 'a service account'}"
                f" ({owner.id!r}): ask its owner or a platform admin to revoke it"
            )
        },
    )


def grant_reasons(role: str) -> dict[str, str]:
    """Why granting `role` was refused (grants.role-at-least-as-high)."""
    return {
        ROLE_AT_LEAST_AS_HIGH: (
            f"granting role {role!r} needs a role at least as high in the same project: "
            f"'admin' or {role!r} itself"
        )
    }


def may_grant(bindings: frozenset[tuple[str, str | None]], *, role: str, project_id: str) -> bool:
    """Whether these bindings may grant `role` in `project_id` (the rule of
    grants.role-at-least-as-high, for checks outside a request: accepting an invitation)."""
    held = {r for r, p in bindings if p is None or p == project_id}
    return Role.admin.value in held or role in held
