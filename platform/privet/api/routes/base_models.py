"""The base-model registry: register a local folder, list, show, retire (platform admins)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request, Response, status

from privet.api.deps import Guard, IdentityDep, Resource, SessionDep, action
from privet.api.paging import NEXT_LINK, AfterQuery, LimitQuery, link_next
from privet.api.routing import OneHopRoute
from privet.basemodels import service
from privet.basemodels.schemas import BaseModelCreate, BaseModelPublic

router = APIRouter(route_class=OneHopRoute, prefix="/v1/base-models", tags=["base-models"])

PLATFORM = Resource(type="Platform", id="privet")


@router.post("", response_model=BaseModelPublic, status_code=status.HTTP_201_CREATED)
def register_base_model(
    body: BaseModelCreate,
    session: SessionDep,
    identity: IdentityDep,
    guard: Annotated[Guard, action("base_model.register")],
) -> BaseModelPublic:
    """Pin a Hugging Face folder under PRIVET_BASE_MODELS_ROOTS as a base model."""
    guard.check(PLATFORM)
    row = service.register_base_model(session, data=body, actor_id=identity.principal_id)
    return BaseModelPublic.model_validate(row, from_attributes=True)


@router.get("", response_model=list[BaseModelPublic], responses=NEXT_LINK)
def list_base_models(
    request: Request,
    response: Response,
    session: SessionDep,
    guard: Annotated[Guard, action("base_model.list")],
    after: AfterQuery = None,
    limit: LimitQuery = 100,
) -> list[BaseModelPublic]:
    """A page of the registered base models, active and retired, by name; the next page
    is in the Link header."""
    guard.check(PLATFORM)
    page = service.page_base_models(session, after=after, limit=limit)
    link_next(request, response, page.next)
    return [BaseModelPublic.model_validate(r, from_attributes=True) for r in page.items]


@router.get("/{name}", response_model=BaseModelPublic)
def get_base_model(
    name: str, session: SessionDep, guard: Annotated[Guard, action("base_model.read")]
) -> BaseModelPublic:
    guard.check(PLATFORM)
    row = service.get_base_model(session, name=name)
    return BaseModelPublic.model_validate(row, from_attributes=True)


@router.post("/{name}:retire", response_model=BaseModelPublic)
def retire_base_model(
    name: str,
    session: SessionDep,
    identity: IdentityDep,
    guard: Annotated[Guard, action("base_model.retire")],
) -> BaseModelPublic:
    """No new job may start from it; versions trained on it keep serving."""
    guard.check(PLATFORM)
    row = service.retire_base_model(session, name=name, actor_id=identity.principal_id)
    return BaseModelPublic.model_validate(row, from_attributes=True)
