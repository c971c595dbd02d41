"""Who is calling: the authenticated principal and the roles it holds, per project."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True, slots=True)
class Identity:
    """An authenticated caller. `bindings` holds (role, project id or None for platform-wide)."""

    principal_id: str
    kind: str
    name: str
    bindings: frozenset[tuple[str, str | None]]
    method: str  # "api_key" | "oidc"
    credential_id: str | None = None
    scope_project_id: str | None = field(default=None)
    #: The principal's accountable human (stored for service accounts; see `accountable`).
    accountable_id: str | None = field(default=None)
    #: When the presented OIDC token expires (API keys: read from their row instead).
    expires_at: datetime | None = field(default=None)

    @property
    def accountable(self) -> str | None:
        """The human two-person rules compare: a user is its own; a service account's is
        the human who created it (None when unknown: the rules then fail closed)."""
        if self.accountable_id is not None:
            return self.accountable_id
        return self.principal_id if self.kind == "user" else None

    def roles_in(self, project_id: str | None) -> frozenset[str]:
        """Roles that apply in `project_id`: its own bindings plus platform-wide ones."""
        if self.scope_project_id is not None and project_id != self.scope_project_id:
            return frozenset()
        return frozenset(
            role for role, bound in self.bindings if bound is None or bound == project_id
        )

    def platform_roles(self) -> frozenset[str]:
        """Roles bound platform-wide (no project)."""
        if self.scope_project_id is not None:
            return frozenset()
        return frozenset(role for role, bound in self.bindings if bound is None)

    def can_see_project(self, project_id: str) -> bool:
        """Whether the project exists for this caller at all (otherwise it is a 404)."""
        return bool(self.roles_in(project_id))
