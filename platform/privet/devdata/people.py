"""The seeded bank's project and the people in its traffic, made by the auth services.

The traffic names a project and principals; here they become rows (a project, users and
service accounts with role bindings), made the way `privet projects create` and
`privet members add` make them, events included. So a seeded database can be queried
and reported on as that project's auditor would (the project exists, every actor has a
principal and a role there).
"""

from __future__ import annotations

from sqlmodel import Session, func, select

from privet.auth import service as auth
from privet.auth.identity import Identity
from privet.auth.schemas import ProjectCreate
from privet.auth.tables import PrincipalKind, Project, Role
from privet.devdata.traffic import Actors

__all__ = ["create_people"]


def create_people(session: Session, actors: Actors) -> None:
    """Create a project (``seeded-bank-N``) and the principals of ``actors`` with their
    roles, and put the ids the services gave them into ``actors`` (in the caller's
    transaction)."""

    def users(role: Role, n: int, title: str) -> list[str]:
        made = [
            auth.create_principal(
                session, kind=PrincipalKind.user, name=f"{title}-{i + 1}", actor=None
            ).id
            for i in range(n)
        ]
        for pid in made:
            auth.bind_role(session, principal_id=pid, role=role, project_id=project, actor=admin)
        return made

    admin = auth.create_principal(session, kind=PrincipalKind.user, name="admin", actor=None).id
    creator = Identity(
        principal_id=admin,
        kind=PrincipalKind.user.value,
        name="admin",
        bindings=frozenset(),
        method="api_key",
    )
    name = f"seeded-bank-{session.exec(select(func.count()).select_from(Project)).one() + 1}"
    project = auth.create_project(session, data=ProjectCreate(name=name), actor=creator).id
    actors.project = project
    actors.engineers = users(Role.ml_engineer, len(actors.engineers), "engineer")
    actors.stewards = users(Role.data_steward, len(actors.stewards), "steward")
    actors.approvers = users(Role.approver, len(actors.approvers), "approver")
    actors.auditors = users(Role.auditor, len(actors.auditors), "auditor")
    accounts = []
    for i in range(len(actors.predictors)):
        account = auth.create_principal(
            session,
            kind=PrincipalKind.service_account,
            name=f"scoring-app-{i + 1}",
            actor=actors.engineers[0],
            project_id=project,
        ).id
        auth.bind_role(
            session, principal_id=account, role=Role.predictor, project_id=project, actor=admin
        )
        accounts.append(account)
    actors.predictors = accounts
