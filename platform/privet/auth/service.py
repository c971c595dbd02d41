"""Identity services: projects, principals, role bindings and API keys.

Every state change here emits a ledger event in the same transaction, so a change and its
record commit or fail together.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from privet import ledger
from privet.auth import api_keys, epoch
from privet.auth.identity import Identity
from privet.auth.identity_cache import IdentityCache
from privet.auth.oidc import Claims
from privet.auth.schemas import ApiKeyCreated, ApiKeyPublic, ProjectCreate, RoleBindingPublic
from privet.auth.tables import ApiKey, Principal, PrincipalKind, Project, Role, RoleBinding
from privet.kit.errors import ConflictError, InvalidInputError, NotFoundError, UnauthenticatedError
from privet.kit.ids import new_id, utcnow
from privet.kit.paging import Keyset, Page

# --- principals ---------------------------------------------------------------------------


def create_principal(
    session: Session,
    *,
    kind: PrincipalKind,
    name: str,
    actor: str | None,
    issuer: str | None = None,
    subject: str | None = None,
    project_id: str | None = None,
) -> Principal:
    """A new user or service account (a service account belongs to `project_id`).

    A user is its own accountable human. A service account is created by someone (`actor`)
    and answers to that person: the creator if a user, else the creator's own accountable
    human, so a chain of service accounts never launders who is behind them."""
    if kind is PrincipalKind.user and project_id is not None:
        raise InvalidInputError("a user belongs to no project; only a service account does")
    prefix = "usr" if kind is PrincipalKind.user else "sa"
    principal_id = new_id(prefix)
    if kind is PrincipalKind.user:
        accountable: str | None = principal_id
    else:
        if actor is None:
            raise InvalidInputError(
                "a service account needs the principal creating it (its accountable human)"
            )
        accountable = accountable_human(session, principal_id=actor)
        if accountable is None:
            raise InvalidInputError(
                f"principal {actor!r} has no accountable human on record, so it cannot "
                "create service accounts; a person (a user) must create this one"
            )
    principal = Principal(
        id=principal_id,
        kind=kind.value,
        name=name,
        issuer=issuer,
        subject=subject,
        created_at=utcnow(),
        project_id=project_id,
        accountable_human_id=accountable,
    )
    session.add(principal)
    session.flush()
    details: dict[str, str] = {"kind": kind.value}
    if kind is PrincipalKind.service_account and accountable is not None:
        details["accountable_human"] = accountable
    ledger.emit(
        session,
        type="principal.created",
        actor=actor or principal.id,
        objects={"principal": principal.id},
        details=details,
    )
    return principal


def accountable_human(session: Session, *, principal_id: str) -> str | None:
    """The human answerable for a principal (a user: itself), or None if unknown."""
    principal = session.get(Principal, principal_id)
    if principal is None:
        return None
    if principal.accountable_human_id is not None:
        return principal.accountable_human_id
    return principal.id if principal.kind == PrincipalKind.user.value else None


def accountable_human_of_ref(session: Session, *, ref: str) -> str | None:
    """The accountable human behind a stored author ref (`User:<id>`, `ServiceAccount:<id>`,
    as in `submitted_by`): a user is its own; a service account's is looked up (None if
    unknown, and the two-person rules then refuse)."""
    kind, sep, principal_id = ref.partition(":")
    if not sep or not principal_id:
        return None
    if kind == "User":
        return principal_id
    return accountable_human(session, principal_id=principal_id)


def get_principal(session: Session, *, principal_id: str) -> Principal:
    principal = session.get(Principal, principal_id)
    if principal is None:
        raise NotFoundError(f"principal {principal_id!r} does not exist")
    return principal


def principal_for_subject(session: Session, *, issuer: str, subject: str, name: str) -> Principal:
    """The principal of an OIDC subject, provisioned on first sight."""
    existing = session.exec(
        select(Principal).where(Principal.issuer == issuer, Principal.subject == subject)
    ).first()
    if existing is not None:
        return existing
    return create_principal(
        session, kind=PrincipalKind.user, name=name, actor=None, issuer=issuer, subject=subject
    )


def oidc_identity(session: Session, *, claims: Claims) -> Identity:
    """The identity of validated OIDC claims (API bearer token or console ID token): the
    subject's principal (provisioned on first sight), the token's roles and those bound."""
    principal = principal_for_subject(
        session, issuer=claims.issuer, subject=claims.subject, name=claims.name
    )
    return Identity(
        principal_id=principal.id,
        kind=principal.kind,
        name=principal.name,
        bindings=claims.bindings | bindings_of(session, principal_id=principal.id),
        method="oidc",
        expires_at=claims.expires_at,
    )


def bindings_of(session: Session, *, principal_id: str) -> frozenset[tuple[str, str | None]]:
    rows = session.exec(select(RoleBinding).where(RoleBinding.principal_id == principal_id))
    return frozenset((row.role, row.project_id) for row in rows)


# --- projects -----------------------------------------------------------------------------


def create_project(session: Session, *, data: ProjectCreate, actor: Identity) -> Project:
    """A new project; its creator becomes its admin."""
    if session.exec(select(Project).where(Project.name == data.name)).first() is not None:
        raise ConflictError(f"a project named {data.name!r} already exists")
    project = Project(
        id=new_id("prj"),
        name=data.name,
        description=data.description,
        created_at=utcnow(),
        created_by=actor.principal_id,
    )
    session.add(project)
    session.flush()
    ledger.emit(
        session,
        type="project.created",
        actor=actor.principal_id,
        project=project.id,
        objects={"project": project.id},
    )
    bind_role(
        session,
        principal_id=actor.principal_id,
        role=Role.admin,
        project_id=project.id,
        actor=actor.principal_id,
    )
    return project


def get_project(session: Session, *, project_id: str, viewer: Identity) -> Project:
    """The project, or NotFound when it does not exist *or* the viewer has no role in it."""
    project = session.get(Project, project_id)
    if project is None or not viewer.can_see_project(project.id):
        raise NotFoundError(f"project {project_id!r} does not exist")
    return project


def list_projects(session: Session, *, viewer: Identity) -> Sequence[Project]:
    """Projects the viewer holds any role in (all of them for platform-wide roles)."""
    query = select(Project).order_by(col(Project.created_at))
    if not viewer.platform_roles():
        visible = {p for _role, p in viewer.bindings if p is not None}
        if viewer.scope_project_id is not None:
            visible &= {viewer.scope_project_id}
        query = query.where(col(Project.id).in_(visible))
    return session.exec(query).all()


# --- role bindings ------------------------------------------------------------------------


def bind_role(
    session: Session, *, principal_id: str, role: Role, project_id: str | None, actor: str
) -> RoleBinding:
    binding = RoleBinding(
        id=new_id("rb"),
        principal_id=principal_id,
        role=role.value,
        project_id=project_id,
        created_at=utcnow(),
        created_by=actor,
    )
    session.add(binding)
    try:
        session.flush()
    except IntegrityError as exc:
        raise ConflictError(
            f"principal {principal_id!r} already holds role {role.value!r} here"
        ) from exc
    ledger.emit(
        session,
        type="member.added",
        actor=actor,
        project=project_id,
        objects={"principal": principal_id, "binding": binding.id},
        details={"role": role.value},
    )
    return binding


def add_member(
    session: Session,
    *,
    project: Project,
    role: Role,
    actor: Identity,
    principal_id: str | None = None,
    service_account_name: str | None = None,
) -> RoleBinding:
    """Bind a role in the project to an existing principal or to a new service account."""
    if (principal_id is None) == (service_account_name is None):
        raise InvalidInputError("give exactly one of principal_id or service_account_name")
    if principal_id is None:
        assert service_account_name is not None
        principal = create_principal(
            session,
            kind=PrincipalKind.service_account,
            name=service_account_name,
            actor=actor.principal_id,
            project_id=project.id,
        )
        principal_id = principal.id
    else:
        get_principal(session, principal_id=principal_id)
    return bind_role(
        session,
        principal_id=principal_id,
        role=role,
        project_id=project.id,
        actor=actor.principal_id,
    )


def list_members(session: Session, *, project: Project) -> Sequence[RoleBinding]:
    return session.exec(
        select(RoleBinding)
        .where(RoleBinding.project_id == project.id)
        .order_by(col(RoleBinding.created_at))
    ).all()


MEMBER_ORDER = Keyset(
    columns=(col(RoleBinding.created_at), col(RoleBinding.id)), kinds=(datetime, str)
)
"""Members list in the order they were granted; (created_at, id) is the keyset."""


def members_page(
    session: Session, *, project: Project, after: str | None = None, limit: int = 50
) -> Page[tuple[RoleBinding, Principal]]:
    """A page of the project's bindings, each with its principal (two queries a page)."""
    query = select(RoleBinding).where(RoleBinding.project_id == project.id)
    rows = session.exec(MEMBER_ORDER.page(query, after=after, limit=limit)).all()
    bindings = MEMBER_ORDER.split(rows, limit=limit, key=lambda b: (b.created_at, b.id))
    ids = {b.principal_id for b in bindings.items}
    people = {p.id: p for p in session.exec(select(Principal).where(col(Principal.id).in_(ids)))}
    return Page([(b, people[b.principal_id]) for b in bindings.items], bindings.next)


def member_public(session: Session, binding: RoleBinding) -> RoleBindingPublic:
    """A binding as shown to members: with the principal's kind and accountable human, so
    a project admin sees who answers for each service account."""
    principal = session.get(Principal, binding.principal_id)
    return RoleBindingPublic.model_validate(
        {
            **binding.model_dump(),
            "principal_kind": principal.kind if principal else None,
            "accountable_human_id": accountable_human(session, principal_id=binding.principal_id),
        }
    )


def remove_member(session: Session, *, project: Project, binding_id: str, actor: Identity) -> None:
    binding = session.get(RoleBinding, binding_id)
    if binding is None or binding.project_id != project.id:
        raise NotFoundError(f"role binding {binding_id!r} does not exist in this project")
    session.delete(binding)
    session.flush()
    ledger.emit(
        session,
        type="member.removed",
        actor=actor.principal_id,
        project=project.id,
        objects={"principal": binding.principal_id, "binding": binding.id},
        details={"role": binding.role},
    )


def bootstrap_admin(session: Session, *, name: str = "admin") -> Principal:
    """A platform-wide admin principal (first start, or `privet keys create-admin`)."""
    principal = create_principal(session, kind=PrincipalKind.user, name=name, actor=None)
    bind_role(
        session, principal_id=principal.id, role=Role.admin, project_id=None, actor=principal.id
    )
    return principal


def has_platform_admin(session: Session) -> bool:
    return (
        session.exec(
            select(RoleBinding).where(
                RoleBinding.role == Role.admin.value, col(RoleBinding.project_id).is_(None)
            )
        ).first()
        is not None
    )


# --- API keys -----------------------------------------------------------------------------


def create_api_key(
    session: Session,
    *,
    pepper: bytes,
    principal_id: str,
    name: str,
    actor: str,
    ttl_days: int | None = None,
    expires_at: datetime | None = None,
    project_id: str | None = None,
) -> ApiKeyCreated:
    """Mint a key for a principal (give `ttl_days` or `expires_at`). The returned secret is
    never stored or shown again. Who may mint which key is decided before, by the caller
    (policies/capabilities.cedar over `capabilities.plan_key_mint`)."""
    key_id, secret = api_keys.generate()
    now = utcnow()
    if expires_at is None:
        if ttl_days is None:
            raise InvalidInputError("an API key needs a lifetime (ttl_days or expires_at)")
        expires_at = now + timedelta(days=ttl_days)
    row = ApiKey(
        id=key_id,
        principal_id=principal_id,
        project_id=project_id,
        name=name,
        digest=api_keys.digest(pepper, secret),
        created_at=now,
        created_by=actor,
        expires_at=expires_at,
    )
    session.add(row)
    session.flush()
    ledger.emit(
        session,
        type="api_key.created",
        actor=actor,
        project=project_id,
        objects={"api_key": key_id, "principal": principal_id},
        details={"expires_at": row.expires_at.isoformat()},
    )
    return ApiKeyCreated(**ApiKeyPublic.model_validate(row).model_dump(), key=secret)


def list_api_keys(
    session: Session, *, principal_ids: Sequence[str] | None = None
) -> Sequence[ApiKey]:
    query = select(ApiKey).order_by(col(ApiKey.created_at))
    if principal_ids is not None:
        query = query.where(col(ApiKey.principal_id).in_(principal_ids))
    return session.exec(query).all()


def get_api_key(session: Session, *, key_id: str) -> ApiKey:
    row = session.get(ApiKey, key_id)
    if row is None:
        raise NotFoundError(f"API key {key_id!r} does not exist")
    return row


def revoke_api_key(session: Session, *, key: ApiKey, actor: str) -> ApiKey:
    if key.revoked_at is not None:
        raise ConflictError(f"API key {key.id!r} is already revoked")
    key.revoked_at = utcnow()
    session.add(key)
    session.flush()
    ledger.emit(
        session,
        type="api_key.revoked",
        actor=actor,
        project=key.project_id,
        objects={"api_key": key.id, "principal": key.principal_id},
    )
    return key


_NO_DIGEST = "0" * 64


def authenticate_api_key(
    session: Session, *, pepper: bytes, presented: str, cache: IdentityCache | None = None
) -> Identity:
    """The identity behind a presented key; precise 401s for malformed, unknown, expired or
    revoked keys (the message never repeats the key). With a `cache`, an identity read
    under the current auth epoch is reused (`privet.auth.identity_cache`)."""
    key_id = api_keys.parse_key_id(presented)
    if key_id is None:
        raise UnauthenticatedError("the API key is malformed (expected pvt_<id>_<secret>)")
    presented_digest = api_keys.digest(pepper, presented)
    now = utcnow()
    auth_epoch = epoch.current(session) if cache is not None else None
    if cache is not None and auth_epoch is not None:
        hit = cache.get(presented_digest, epoch=auth_epoch, now=now)
        if hit is not None:
            return hit
    row = session.get(ApiKey, key_id)
    # An unknown key id costs the same comparison as a known one (no timing signal of which
    # ids exist).
    stored = row.digest if row is not None else _NO_DIGEST
    if not api_keys.matches(pepper, presented, stored) or row is None:
        raise UnauthenticatedError("the API key is not valid")
    identity = key_identity(session, key=row, now=now)
    if cache is not None and auth_epoch is not None:
        cache.put(presented_digest, epoch=auth_epoch, expires_at=row.expires_at, identity=identity)
    return identity


def key_identity(session: Session, *, key: ApiKey, now: datetime) -> Identity:
    """The identity a key stands for, read afresh (roles as bound now); 401 when it is
    revoked or expired. A console session calls this on every request, so revoking the key
    it signed in with ends the session too."""
    if key.revoked_at is not None:
        raise UnauthenticatedError("the API key has been revoked")
    if key.expires_at <= now:
        raise UnauthenticatedError("the API key has expired")
    principal = get_principal(session, principal_id=key.principal_id)
    return Identity(
        principal_id=principal.id,
        kind=principal.kind,
        name=principal.name,
        bindings=bindings_of(session, principal_id=principal.id),
        method="api_key",
        credential_id=key.id,
        scope_project_id=key.project_id,
        accountable_id=principal.accountable_human_id,
    )
