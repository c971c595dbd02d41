"""Projects and their members (role bindings)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, status

from privet.api.deps import Guard, IdentityDep, Resource, SessionDep, action, project_resource
from privet.api.routing import OneHopRoute
from privet.auth import capabilities, service
from privet.auth.schemas import ProjectCreate, ProjectPublic, RoleBindingCreate, RoleBindingPublic

router = APIRouter(route_class=OneHopRoute, prefix="/v1/projects", tags=["projects"])

PLATFORM = Resource(type="Platform", id="privet")


@router.post("", status_code=status.HTTP_201_CREATED, response_model=ProjectPublic)
def create_project(
    body: ProjectCreate,
    session: SessionDep,
    identity: IdentityDep,
    guard: Annotated[Guard, action("project.create")],
) -> ProjectPublic:
    guard.check(PLATFORM)
    return ProjectPublic.model_validate(service.create_project(session, data=body, actor=identity))


@router.get("", response_model=list[ProjectPublic])
def list_projects(
    session: SessionDep, identity: IdentityDep, guard: Annotated[Guard, action("project.list")]
) -> list[ProjectPublic]:
    guard.check(PLATFORM)
    return [
        ProjectPublic.model_validate(p) for p in service.list_projects(session, viewer=identity)
    ]


@router.get("/{project_id}", response_model=ProjectPublic)
def get_project(
    project_id: str,
    session: SessionDep,
    identity: IdentityDep,
    guard: Annotated[Guard, action("project.read")],
) -> ProjectPublic:
    project = service.get_project(session, project_id=project_id, viewer=identity)
    guard.check(project_resource(project.id))
    return ProjectPublic.model_validate(project)


@router.get("/{project_id}/members", response_model=list[RoleBindingPublic])
def list_members(
    project_id: str,
    session: SessionDep,
    identity: IdentityDep,
    guard: Annotated[Guard, action("member.list")],
) -> list[RoleBindingPublic]:
    project = service.get_project(session, project_id=project_id, viewer=identity)
    guard.check(project_resource(project.id))
    return [
        service.member_public(session, b) for b in service.list_members(session, project=project)
    ]


@router.post(
    "/{project_id}/members", status_code=status.HTTP_201_CREATED, response_model=RoleBindingPublic
)
def add_member(
    project_id: str,
    body: RoleBindingCreate,
    session: SessionDep,
    identity: IdentityDep,
    guard: Annotated[Guard, action("member.add")],
) -> RoleBindingPublic:
    project = service.get_project(session, project_id=project_id, viewer=identity)
    role = body.role.value
    guard.check(
        project_resource(project.id), {"role": role}, explain=capabilities.grant_reasons(role)
    )
    binding = service.add_member(
        session,
        project=project,
        role=body.role,
        actor=identity,
        principal_id=body.principal_id,
        service_account_name=body.service_account_name,
    )
    return service.member_public(session, binding)


@router.delete("/{project_id}/members/{binding_id}", status_code=status.HTTP_204_NO_CONTENT)
def remove_member(
    project_id: str,
    binding_id: str,
    session: SessionDep,
    identity: IdentityDep,
    guard: Annotated[Guard, action("member.remove")],
) -> None:
    project = service.get_project(session, project_id=project_id, viewer=identity)
    guard.check(project_resource(project.id))
    service.remove_member(session, project=project, binding_id=binding_id, actor=identity)
