"""Administration: projects (create), members and roles of the viewer's projects (grant,
revoke, invite a person, a key for a service account), their own API keys (create, shown
once; revoke), the active policy set, the master key's health. Every action and panel
calls the API's own handler with the console's guard: the same Cedar decision, refusal and
ledger event; a form is shown only when that decision allows it.

A new key's secret and an invitation's token are only in the response to their creation:
never in a URL, never stored, gone on reload."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from privet.api.deps import Guard, RuntimeDep, SessionDep, project_resource
from privet.api.paging import AfterQuery
from privet.api.routes import admin as admin_routes
from privet.api.routes import api_keys as api_keys_routes
from privet.api.routes import invitations as invitations_routes
from privet.api.routes import projects as projects_routes
from privet.api.routes.projects import PLATFORM
from privet.auth import capabilities
from privet.auth import service as auth_service
from privet.auth.schemas import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyPublic,
    InvitationCreate,
    ProjectCreate,
    RoleBindingCreate,
)
from privet.auth.tables import Principal, PrincipalKind, Role
from privet.console.deps import (
    ViewerDep,
    also,
    csrf_checked,
    page,
    permits,
    render,
    validated,
)
from privet.console.listing import Listing, ListingDep
from privet.kit.errors import ForbiddenError, InvalidInputError
from privet.runtime import Runtime

router = APIRouter(prefix="/admin", dependencies=[Depends(csrf_checked)])

ROLES = [r.value for r in Role]
PAGE = 50
WIDEST = {"role": Role.admin.value}
"""The grant and invite forms offer every role, so they are decided for the widest one
(admin): a viewer who may grant only their own role grants it on the API."""


def _member_forms(view: Listing, project_id: str) -> dict[str, bool]:
    """The members panel's forms the viewer may use, decided once for the project."""
    resource = project_resource(project_id)
    return {
        "may_remove": permits(also(view.guard, "member.remove"), resource),
        "may_grant": permits(also(view.guard, "member.add"), resource, WIDEST),
        "may_invite": permits(also(view.guard, "project.invite"), resource, WIDEST),
    }


def _may_mint(view: Listing, runtime: Runtime, owner: Principal, project_id: str | None) -> bool:
    """The `api_key.create` decision a key form's submit makes (the facts of
    `plan_key_mint`), for the default lifetime, which the lifetime rule always accepts."""
    mint = capabilities.plan_key_mint(
        view.session,
        identity=view.viewer,
        owner=owner,
        project_id=project_id,
        ttl_days=None,
        default_ttl_days=runtime.settings.api_key_ttl_days,
    )
    resource = api_keys_routes.owner_resource(mint.facts, project_id)
    return permits(also(view.guard, "api_key.create"), resource, mint.facts.context)


def _key_accounts(
    view: Listing, runtime: Runtime, project_id: str, members: list[tuple[Any, Principal]]
) -> list[Principal]:
    """The service accounts on this page of members whose key the viewer may mint, scoped
    to the project. Decided once per set of facts the key rules tell accounts apart by
    (the account's own project; whether it is the viewer), not once per account: a page
    of 50 accounts is not 50 decisions and ledger events."""
    accounts = {p.id: p for _, p in members if p.kind == PrincipalKind.service_account.value}

    def facts(account: Principal) -> tuple[str | None, bool]:
        return account.project_id, account.id == view.viewer.principal_id

    allowed: dict[tuple[str | None, bool], bool] = {}
    for account in accounts.values():
        if facts(account) not in allowed:
            allowed[facts(account)] = _may_mint(view, runtime, account, project_id)
    return [a for a in accounts.values() if allowed[facts(a)]]


def _members(view: Listing, runtime: Runtime) -> list[dict[str, Any]]:
    """Each project whose members the viewer may list (`member.list`), a page of its
    members with names (the next page of one project: that project only)."""
    shown: list[dict[str, Any]] = []
    for project, after in view.project_pages("member.list"):
        listed = auth_service.members_page(view.session, project=project, after=after, limit=PAGE)
        shown.append(
            {
                "project": project,
                "members": [{"binding": b, "principal": p} for b, p in listed.items],
                "next_link": view.next_link(listed.next, project=project.id),
                "key_accounts": _key_accounts(view, runtime, project.id, list(listed.items)),
                **_member_forms(view, project.id),
            }
        )
    return shown


def _revocable(view: Listing, keys: list[ApiKeyPublic]) -> set[str]:
    """The viewer's active keys they may revoke: the submit's `api_key.revoke` decision,
    taken once per key scope (the only fact in which two of one's own keys differ)."""
    me = auth_service.get_principal(view.session, principal_id=view.viewer.principal_id)
    active = [k for k in keys if k.revoked_at is None]
    allowed: dict[str | None, bool] = {}
    for key in active:
        if key.project_id not in allowed:
            row = auth_service.get_api_key(view.session, key_id=key.id)
            facts = capabilities.revoke_facts(view.viewer, owner=me, key=row)
            resource = api_keys_routes.owner_resource(facts, key.project_id)
            guard = also(view.guard, "api_key.revoke")
            allowed[key.project_id] = permits(guard, resource, facts.context)
    return {k.id for k in active if allowed[k.project_id]}


def _keys_panel(view: Listing, runtime: Runtime) -> dict[str, Any]:
    """The viewer's own keys (None: `api_key.list` refused), those they may revoke, and
    whether they may create one (an unscoped key, as the form asks)."""
    try:
        keys = api_keys_routes.list_api_keys(
            session=view.session, identity=view.viewer, guard=also(view.guard, "api_key.list")
        )
    except ForbiddenError:
        keys = None
    me = auth_service.get_principal(view.session, principal_id=view.viewer.principal_id)
    return {
        "keys": keys,
        "revocable": _revocable(view, keys or []),
        "may_create_key": _may_mint(view, runtime, me, None),
    }


def _context(view: Listing, runtime: Runtime) -> dict[str, Any]:
    policies = (
        runtime.authorizer.engine.info()
        if permits(also(view.guard, "policy.read"), PLATFORM)
        else None
    )
    try:
        master_key = admin_routes.get_master_key(
            runtime=runtime, guard=also(view.guard, "master_key.status")
        )
    except ForbiddenError:
        master_key = None
    return {
        "title": "Administration",
        "may_create_project": permits(also(view.guard, "project.create"), PLATFORM),
        "projects": _members(view, runtime),
        **_keys_panel(view, runtime),
        "policies": policies,
        "master_key": master_key,
        "roles": ROLES,
    }


@router.get("", response_class=HTMLResponse)
def admin(
    view: ListingDep,
    runtime: RuntimeDep,
    project: Annotated[str | None, Query(max_length=40)] = None,
    after: AfterQuery = None,
) -> HTMLResponse:
    """Members per project (keyset pages: ``project`` and ``after`` show one project's
    next members), the viewer's keys, the policy set: each panel its own decision."""
    return render(view.request, "admin.html", _context(view, runtime))


@router.post("/keys", response_class=HTMLResponse)
def create_key(
    request: Request,
    session: SessionDep,
    viewer: ViewerDep,
    runtime: RuntimeDep,
    guard: Annotated[Guard, page("api_key.create")],
    name: Annotated[str, Form(min_length=1, max_length=200)],
    ttl_days: Annotated[int | None, Form(ge=1, le=3650)] = None,
) -> HTMLResponse:
    """Mint a key for yourself; its secret is in this response only."""
    created: ApiKeyCreated = api_keys_routes.create_api_key(
        body=ApiKeyCreate(name=name, ttl_days=ttl_days),
        session=session,
        identity=viewer,
        runtime=runtime,
        guard=guard,
    )
    view = Listing(request, session, viewer, guard)
    if request.headers.get("hx-request") == "true":
        keys = _keys_panel(view, runtime)
        return render(request, "admin_key_created.html", {"created": created, **keys})
    context = _context(view, runtime)
    return render(request, "admin.html", {**context, "created": created})


@router.post("/keys/{key_id}/revoke")
def revoke_key(
    key_id: str,
    session: SessionDep,
    viewer: ViewerDep,
    guard: Annotated[Guard, page("api_key.revoke")],
) -> RedirectResponse:
    api_keys_routes.revoke_api_key(key_id=key_id, session=session, identity=viewer, guard=guard)
    return RedirectResponse("/admin#keys", status_code=303)


@router.post("/{project_id}/members")
def grant(
    project_id: str,
    session: SessionDep,
    viewer: ViewerDep,
    guard: Annotated[Guard, page("member.add")],
    role: Annotated[Role, Form()],
    principal_id: Annotated[str, Form(max_length=40)] = "",
    service_account_name: Annotated[str, Form(max_length=200)] = "",
) -> RedirectResponse:
    """Bind an existing principal, or create a service account with only a name."""
    if bool(principal_id.strip()) == bool(service_account_name.strip()):
        raise InvalidInputError(
            "give either a principal id or a new service account's name, not both or neither"
        )
    projects_routes.add_member(
        project_id=project_id,
        body=RoleBindingCreate(
            role=role,
            principal_id=principal_id.strip() or None,
            service_account_name=service_account_name.strip() or None,
        ),
        session=session,
        identity=viewer,
        guard=guard,
    )
    return RedirectResponse(f"/admin#p-{project_id}", status_code=303)


@router.post("/{project_id}/members/{binding_id}/remove")
def revoke_role(
    project_id: str,
    binding_id: str,
    session: SessionDep,
    viewer: ViewerDep,
    guard: Annotated[Guard, page("member.remove")],
) -> RedirectResponse:
    projects_routes.remove_member(
        project_id=project_id,
        binding_id=binding_id,
        session=session,
        identity=viewer,
        guard=guard,
    )
    return RedirectResponse(f"/admin#p-{project_id}", status_code=303)


@router.post("/projects")
def create_project(
    session: SessionDep,
    viewer: ViewerDep,
    guard: Annotated[Guard, page("project.create")],
    name: Annotated[str, Form(max_length=100)],
    description: Annotated[str, Form(max_length=1000)] = "",
) -> RedirectResponse:
    """A new project (the API's `POST /v1/projects`); its members' panel is next."""
    created = projects_routes.create_project(
        body=validated(
            ProjectCreate,
            {"name": name.strip(), "description": description.strip() or None},
            refused="the project was not created",
        ),
        session=session,
        identity=viewer,
        guard=guard,
    )
    return RedirectResponse(f"/admin#p-{created.id}", status_code=303)


@router.post("/{project_id}/invitations", response_class=HTMLResponse)
def invite(
    project_id: str,
    request: Request,
    session: SessionDep,
    viewer: ViewerDep,
    runtime: RuntimeDep,
    guard: Annotated[Guard, page("project.invite")],
    name: Annotated[str, Form(min_length=1, max_length=200)],
    role: Annotated[Role, Form()],
) -> HTMLResponse:
    """Invite a person with one role; the token is in this response only: hand it to them
    (they accept it on the sign-in page and get their own key)."""
    invited = invitations_routes.create_invitation(
        project_id=project_id,
        body=validated(
            InvitationCreate, {"name": name, "role": role}, refused="nobody was invited"
        ),
        session=session,
        identity=viewer,
        runtime=runtime,
        guard=guard,
    )
    context = _context(Listing(request, session, viewer, guard), runtime)
    return render(request, "admin.html", {**context, "invited": invited})


@router.post("/{project_id}/keys", response_class=HTMLResponse)
def create_service_key(
    project_id: str,
    request: Request,
    session: SessionDep,
    viewer: ViewerDep,
    runtime: RuntimeDep,
    guard: Annotated[Guard, page("api_key.create")],
    principal_id: Annotated[str, Form(min_length=1, max_length=40)],
    name: Annotated[str, Form(min_length=1, max_length=200)],
) -> HTMLResponse:
    """A key for a service account of the project, scoped to it (project admins); its
    secret is in this response only."""
    created = api_keys_routes.create_api_key(
        body=validated(
            ApiKeyCreate,
            {"name": name, "principal_id": principal_id, "project_id": project_id},
            refused="no key was created",
        ),
        session=session,
        identity=viewer,
        runtime=runtime,
        guard=guard,
    )
    context = _context(Listing(request, session, viewer, guard), runtime)
    return render(request, "admin.html", {**context, "created": created})
