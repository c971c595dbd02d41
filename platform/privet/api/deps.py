"""Dependencies every route uses: the database session, the caller, and the policy guard.

`action("x.y")` is the only way a route gets an authorization decision; a route that never
calls its guard fails loudly, so no route can exist without a decision.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.routing import APIRoute
from sqlmodel import Session

from privet import ledger
from privet.auth import service as auth_service
from privet.auth.identity import Identity
from privet.config import Settings
from privet.db import session_scope
from privet.kit.errors import ForbiddenError, UnauthenticatedError
from privet.runtime import Runtime


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def get_settings(runtime: RuntimeDep) -> Settings:
    return runtime.settings


SettingsDep = Annotated[Settings, Depends(get_settings)]


def get_session(request: Request, runtime: RuntimeDep) -> Iterator[Session]:
    """One transaction per request, committed before the response is sent.

    Authorization decisions ride in this transaction; if it fails (a denial, a conflict,
    a crash in the service), they are written again in a fresh transaction after the
    rollback, so every decision is in the ledger exactly once and nothing else is.
    """
    decisions: list[ledger.EventSpec] = []
    request.state.decision_events = decisions
    try:
        with session_scope(runtime.engine) as session:
            yield session
    except BaseException:
        if decisions:
            with session_scope(runtime.engine) as retry:
                ledger.emit_many(retry, decisions)
        raise


SessionDep = Annotated[Session, Depends(get_session, scope="function")]


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise UnauthenticatedError("the Authorization header must be 'Bearer <token>'")
        return token.strip()
    return request.headers.get("x-api-key")


def get_identity(request: Request, runtime: RuntimeDep) -> Identity:
    """The authenticated caller (API key or OIDC JWT), or a 401 that says what is wrong."""
    token = _bearer(request)
    if token is None:
        raise UnauthenticatedError(
            "no credentials: send 'Authorization: Bearer <API key or OIDC token>'"
        )
    with session_scope(runtime.engine) as session:
        if token.startswith("pvt_"):
            identity = auth_service.authenticate_api_key(
                session, pepper=runtime.api_key_pepper, presented=token
            )
        else:
            if runtime.oidc is None:
                raise UnauthenticatedError(
                    "bearer JWTs are not accepted: no OIDC issuer is configured"
                )
            claims = runtime.oidc.verify(token)
            principal = auth_service.principal_for_subject(
                session, issuer=claims.issuer, subject=claims.subject, name=claims.name
            )
            identity = Identity(
                principal_id=principal.id,
                kind=principal.kind,
                name=principal.name,
                bindings=claims.bindings
                | auth_service.bindings_of(session, principal_id=principal.id),
                method="oidc",
            )
    request.state.principal_id = identity.principal_id
    return identity


IdentityDep = Annotated[Identity, Depends(get_identity)]


@dataclass(slots=True)
class Resource:
    """What an action is performed on, as the policy engine sees it."""

    type: str
    id: str
    project_id: str | None = None
    attrs: dict[str, Any] = field(default_factory=dict)


def _snake(name: str) -> str:
    """Cedar type names (CamelCase) as ledger object kinds (lower_snake)."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


@dataclass(slots=True)
class Guard:
    """The policy decision point for one route; `check` must be called exactly once."""

    action: str
    identity: Identity
    runtime: Runtime
    session: Session
    recorded: list[ledger.EventSpec]
    checked: bool = False

    def check(self, resource: Resource, context: dict[str, Any] | None = None) -> None:
        """Decide, record the decision in the ledger, and raise ForbiddenError on deny."""
        self.checked = True
        decision = self.runtime.authorizer.decide(
            identity=self.identity,
            action=self.action,
            resource=resource,
            context=dict(context or {}),
        )
        event = ledger.EventSpec(
            type="auth.decision",
            actor=self.identity.principal_id,
            project=resource.project_id,
            objects={_snake(resource.type): resource.id},
            outcome="allow" if decision.allowed else "deny",
            details={
                "action": self.action,
                "policies": list(decision.policy_ids),
                "policy_version": decision.policy_version,
                # Schema or evaluation errors deny (fail closed); keep why, briefly.
                **({"errors": list(decision.errors)[:3]} if decision.errors else {}),
            },
        )
        ledger.emit_many(self.session, [event])
        self.recorded.append(event)
        if not decision.allowed:
            raise ForbiddenError(
                f"you may not perform {self.action!r} on this {resource.type}",
                action=self.action,
            )


ACTION_ATTR = "__privet_action__"


def action(name: str) -> Any:
    """Declare the route's action; the handler receives a Guard to call with the resource."""

    def dependency(
        request: Request, identity: IdentityDep, runtime: RuntimeDep, session: SessionDep
    ) -> Iterator[Guard]:
        guard = Guard(
            action=name,
            identity=identity,
            runtime=runtime,
            session=session,
            recorded=request.state.decision_events,
        )
        yield guard
        if not guard.checked:
            raise RuntimeError(f"route for {name!r} returned without an authorization check")

    setattr(dependency, ACTION_ATTR, name)
    return Depends(dependency, scope="function")


def iter_api_routes(routes: Iterable[Any]) -> Iterator[APIRoute]:
    """Every APIRoute, also those inside included routers (used by tests and docs)."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        elif hasattr(route, "original_router"):
            yield from iter_api_routes(route.original_router.routes)


def route_actions(dependant: Any) -> list[str]:
    """The actions declared anywhere in a route's dependency tree (used by tests)."""
    found: list[str] = []
    for dep in dependant.dependencies:
        call: Callable[..., Any] | None = dep.call
        if call is not None and hasattr(call, ACTION_ATTR):
            found.append(getattr(call, ACTION_ATTR))
        found.extend(route_actions(dep))
    return found
