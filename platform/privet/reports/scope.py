"""Which projects a report covers: the one asked for (404 if it does not exist) or all,
and the project a model version belongs to (the routes scope lineage and monitoring
reports by it)."""

from __future__ import annotations

from sqlmodel import Session, col, select

from privet.auth.tables import Project
from privet.kit.errors import NotFoundError
from privet.models.tables import ModelVersion


def projects_in_scope(session: Session, project_id: str | None) -> list[Project]:
    if project_id is not None:
        project = session.get(Project, project_id)
        if project is None:
            raise NotFoundError(f"project {project_id!r} does not exist")
        return [project]
    return list(session.exec(select(Project).order_by(col(Project.name))).all())


def model_version_project(session: Session, model_version_id: str) -> str:
    version = session.get(ModelVersion, model_version_id)
    if version is None:
        raise NotFoundError(f"model version {model_version_id!r} does not exist")
    return version.project_id
