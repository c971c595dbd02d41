"""Invitations: a project admin invites a person with one role; the person accepts with
the invitation token and gets their own first API key (no one mints keys for others)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, status

from privet.api.deps import (
    Guard,
    IdentityDep,
    InvitationIdentityDep,
    Resource,
    RuntimeDep,
    SessionDep,
    action,
    get_invitation_identity,
)
from privet.api.routing import OneHopRoute
from privet.auth import capabilities, invitations, service
from privet.auth.schemas import (
    InvitationAccept,
    InvitationAccepted,
    InvitationCreate,
    InvitationCreated,
    InvitationPublic,
)

router = APIRouter(route_class=OneHopRoute, tags=["invitations"])


def _project(project_id: str) -> Resource:
    return Resource(type="Project", id=project_id, project_id=project_id)


@router.post(
    "/v1/projects/{project_id}/invitations",
    status_code=status.HTTP_201_CREATED,
    response_model=InvitationCreated,
)
def create_invitation(
    project_id: str,
    body: InvitationCreate,
    session: SessionDep,
    identity: IdentityDep,
    runtime: RuntimeDep,
    guard: Annotated[Guard, action("project.invite")],
) -> InvitationCreated:
    """Invite a person; the token in the answer is shown once: hand it to them."""
    project = service.get_project(session, project_id=project_id, viewer=identity)
    role = body.role.value
    guard.check(_project(project.id), {"role": role}, explain=capabilities.grant_reasons(role))
    return invitations.create(
        session,
        pepper=runtime.api_key_pepper,
        project=project,
        data=body,
        actor=identity.principal_id,
    )


@router.get("/v1/projects/{project_id}/invitations", response_model=list[InvitationPublic])
def list_invitations(
    project_id: str,
    session: SessionDep,
    identity: IdentityDep,
    guard: Annotated[Guard, action("invitation.list")],
) -> list[InvitationPublic]:
    """The project's invitations, open and used (never their tokens)."""
    project = service.get_project(session, project_id=project_id, viewer=identity)
    guard.check(_project(project.id))
    return [
        InvitationPublic.model_validate(row)
        for row in invitations.list_for(session, project=project)
    ]


@router.delete(
    "/v1/projects/{project_id}/invitations/{invitation_id}", response_model=InvitationPublic
)
def revoke_invitation(
    project_id: str,
    invitation_id: str,
    session: SessionDep,
    identity: IdentityDep,
    guard: Annotated[Guard, action("invitation.revoke")],
) -> InvitationPublic:
    project = service.get_project(session, project_id=project_id, viewer=identity)
    guard.check(_project(project.id))
    row = invitations.get(session, project=project, invitation_id=invitation_id)
    return InvitationPublic.model_validate(
        invitations.revoke(session, invitation=row, actor=identity.principal_id)
    )


@router.post(
    "/v1/invitations:accept",
    status_code=status.HTTP_201_CREATED,
    response_model=InvitationAccepted,
)
def accept_invitation(
    session: SessionDep,
    identity: InvitationIdentityDep,
    runtime: RuntimeDep,
    guard: Annotated[Guard, action("invitation.accept", identity_from=get_invitation_identity)],
    body: InvitationAccept | None = None,
) -> InvitationAccepted:
    """Accept with `Authorization: Bearer pvi_...`: creates your user, binds the role and
    returns your own first API key (shown once), scoped to the project."""
    guard.check(
        Resource(type="Invitation", id=identity.principal_id, project_id=identity.scope_project_id)
    )
    return invitations.accept(
        session,
        pepper=runtime.api_key_pepper,
        identity=identity,
        key_name=(body or InvitationAccept()).key_name,
        ttl_days=runtime.settings.api_key_ttl_days,
    )
