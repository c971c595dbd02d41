"""Dependencies every route uses: the database session, the caller, and the policy guard.

`action("x.y")` is the only way a route gets an authorization decision; a route that never
calls its guard fails loudly, so no route can exist without a decision.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.routing import APIRoute
from pydantic import BeforeValidator
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from privet import ledger
from privet.api.admission import NO_SLOT, RequestAdmission, Slot
from privet.api.decisions import DecisionLog, RequestSession
from privet.auth import invitations
from privet.auth import service as auth_service
from privet.auth.identity import Identity
from privet.config import Settings
from privet.db import read_only, read_session, session_scope
from privet.kit.errors import ForbiddenError, UnauthenticatedError
from privet.kit.numbers import ascii_int
from privet.runtime import Runtime

log = logging.getLogger(__name__)


# Dependencies that do no I/O are `async def`: FastAPI runs a plain `def` dependency in the
# thread pool, and each such hop costs the event loop more than the work itself.


async def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


async def get_settings(runtime: RuntimeDep) -> Settings:
    return runtime.settings


SettingsDep = Annotated[Settings, Depends(get_settings)]


#: A query integer: ASCII digits only (pydantic alone also takes "1_0", " 1" and "+1").
QueryInt = Annotated[int, BeforeValidator(ascii_int)]

#: Requests that change no state by definition of HTTP; their decisions are deferred
#: (`privet.api.decisions.DecisionLog`).
READ_ONLY_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


WRITES_ATTR = "__privet_writes_on_safe_method__"


def writes_on_safe_method(endpoint: Callable[..., Any]) -> Callable[..., Any]:
    """Mark a GET route that writes (an audited export records its event in the request's
    transaction): it gets a writing transaction instead of a read-only snapshot."""
    setattr(endpoint, WRITES_ATTR, True)
    return endpoint


DEFERS_ATTR = "__privet_decides_before_writing__"


def decides_before_writing(endpoint: Callable[..., Any]) -> Callable[..., Any]:
    """Mark a writing route that authorizes in a read-only snapshot of its own, then works
    with no transaction open (a forward pass), then writes in the request's transaction:
    its decisions are deferred (as a GET's are) and commit with that write, or go through
    the group commit if it writes nothing. Deciding into the request's transaction would
    open it (on SQLite: take the write lock) for the whole work."""
    setattr(endpoint, DEFERS_ATTR, True)
    return endpoint


STREAMS_ATTR = "__privet_streams_request_body__"


def streams_request_body(endpoint: Callable[..., Any]) -> Callable[..., Any]:
    """Mark a route that reads its request body while it runs, for as long as the client
    sends it (an upload): it is not admitted (``privet.api.admission``), whose slot it
    would hold for the whole transfer and so stall every other request behind a few slow
    uploads; it holds one of the server's threads, as before."""
    setattr(endpoint, STREAMS_ATTR, True)
    return endpoint


def _defers_decisions(request: Request) -> bool:
    if request.method in READ_ONLY_METHODS:
        return True
    return bool(getattr(request.scope.get("endpoint"), DEFERS_ATTR, False))


def _reads_only(request: Request) -> bool:
    if request.method not in READ_ONLY_METHODS:
        return False
    return not getattr(request.scope.get("endpoint"), WRITES_ATTR, False)


def _end_transaction(session: Session, decision_log: DecisionLog, *, commit: bool) -> None:
    """Commit (or roll back) and close the request's session; what the decision log still
    holds is left for the caller to append."""
    decision_log.write_on_commit = False
    try:
        if commit:
            try:
                session.commit()
            except BaseException:
                session.rollback()
                raise
        else:
            session.rollback()
    finally:
        session.close()


async def get_session(request: Request, runtime: RuntimeDep) -> AsyncIterator[Session]:
    """One transaction per request, committed before the response is sent.

    Every authorization decision of the request is in the ledger exactly once, durably,
    before the response is sent (``DecisionLog``): with the request's changes when it made
    any, otherwise (read-only requests, and after a rollback: a denial, a conflict, a
    crash in the service) through the ledger's group commit once the transaction ended.
    The session is made on the event loop (it opens nothing until first used), ended in
    one thread-pool hop, and the group commit is awaited without holding a thread.
    """
    decisions: list[ledger.EventSpec] = []
    request.state.decision_events = decisions
    reads_only = request.state.reads_only = _reads_only(request)
    decision_log = DecisionLog(runtime.engine, defer=_defers_decisions(request))
    request.state.decision_log = decision_log
    # A safe method's transaction only reads (a snapshot: on SQLite it takes no write lock,
    # so concurrent GETs do not queue behind each other and the ledger's writers), unless
    # its route is marked `writes_on_safe_method`; its decisions reach the ledger through
    # the group commit.
    engine = read_only(runtime.engine) if reads_only else runtime.engine
    session = RequestSession(engine, expire_on_commit=False)
    decision_log.attach(session)
    # Admitted before the first blocking step, out once the transaction has ended (not
    # while the group commit makes the decisions durable): privet.api.admission.
    streams = getattr(request.scope.get("endpoint"), STREAMS_ATTR, False)
    slot = NO_SLOT if streams else await admission_of(request).enter()
    try:
        try:
            yield session
        except BaseException:
            await _end(session, decision_log, slot, commit=False)
            raise
        await _end(session, decision_log, slot, commit=True)
    finally:
        slot.leave()


async def _end(session: Session, decision_log: DecisionLog, slot: Slot, *, commit: bool) -> None:
    """End the request's transaction in one thread-pool hop, give the slot back, then
    await the group commit of what the decision log still holds."""
    try:
        await run_in_threadpool(_end_transaction, session, decision_log, commit=commit)
    finally:
        slot.leave()
        await decision_log.write_outstanding_async()


def admission_of(request: Request) -> RequestAdmission:
    """The gateway's admission (made by create_app, one per application)."""
    admission: RequestAdmission = request.app.state.admission
    return admission


SessionDep = Annotated[Session, Depends(get_session, scope="function")]


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise UnauthenticatedError("the Authorization header must be 'Bearer <token>'")
        return token.strip()
    return request.headers.get("x-api-key")


def get_identity(request: Request, runtime: RuntimeDep, session: SessionDep) -> Identity:
    """The authenticated caller (API key or OIDC JWT), or a 401 that says what is wrong.

    A read-only request checks an API key in its own snapshot: the one the route then
    reads (a key revoked before it began is refused), and no second connection or
    transaction per request. A writing transaction takes SQLite's write lock at BEGIN, so a
    writing request reads the key in a snapshot of its own: routes that decide in a short
    transaction before they use theirs (uploads) must not wait on their own lock."""
    if request.state.reads_only:
        return _authenticate(request, runtime, session)
    with read_session(runtime.engine) as reader:
        return _authenticate(request, runtime, reader)


def _authenticate(request: Request, runtime: Runtime, session: Session) -> Identity:
    token = _bearer(request)
    if token is None:
        raise UnauthenticatedError(
            "no credentials: send 'Authorization: Bearer <API key or OIDC token>'"
        )
    if token.startswith(invitations.TOKEN_PREFIX + "_"):
        raise UnauthenticatedError(
            "an invitation token is not an API key: it is accepted only by "
            "POST /v1/invitations:accept, which gives you your own API key"
        )
    if token.startswith("pvt_"):
        identity = auth_service.authenticate_api_key(
            session,
            pepper=runtime.api_key_pepper,
            presented=token,
            cache=runtime.identities,
        )
        request.state.principal_id = identity.principal_id
        return identity
    if runtime.oidc is None:
        raise UnauthenticatedError("bearer JWTs are not accepted: no OIDC issuer is configured")
    # A transaction of its own: a first login creates the principal, also on a GET (whose
    # own transaction is a read-only snapshot).
    with session_scope(runtime.engine) as login:
        identity = auth_service.oidc_identity(login, claims=runtime.oidc.verify(token))
    request.state.principal_id = identity.principal_id
    return identity


IdentityDep = Annotated[Identity, Depends(get_identity)]


def get_invitation_identity(request: Request, runtime: RuntimeDep) -> Identity:
    """The caller of `POST /v1/invitations:accept`: the invitation its token names (one
    use, expires; precise 401s). Only that route depends on this: no other route accepts
    an invitation token, and the policies give an `Invitation` no other action."""
    token = _bearer(request)
    if token is None:
        raise UnauthenticatedError(
            "no credentials: send 'Authorization: Bearer <invitation token pvi_...>'"
        )
    if not token.startswith(invitations.TOKEN_PREFIX + "_"):
        # Any other credential gets its own precise 401 first (revoked key, bad JWT...).
        with read_session(runtime.engine) as session:
            caller = _authenticate(request, runtime, session)
        raise UnauthenticatedError(
            f"you called with the credentials of {caller.principal_id!r}: accepting an "
            "invitation takes the invitation token instead ('Bearer pvi_...'), and creates "
            "a new user"
        )
    with session_scope(runtime.engine) as session:
        identity = invitations.authenticate(session, pepper=runtime.api_key_pepper, presented=token)
    request.state.principal_id = identity.principal_id
    return identity


InvitationIdentityDep = Annotated[Identity, Depends(get_invitation_identity)]


@dataclass(slots=True)
class Resource:
    """What an action is performed on, as the policy engine sees it."""

    type: str
    id: str
    project_id: str | None = None
    attrs: dict[str, Any] = field(default_factory=dict)


def project_resource(project_id: str) -> Resource:
    """The project itself, for actions on a project's collections (list, create)."""
    return Resource(type="Project", id=project_id, project_id=project_id)


@dataclass(frozen=True, slots=True)
class Explanation:
    """What a route adds to a refusal by one policy: a sentence for the detail and
    structured fields (e.g. the PII findings: kinds, row counts, line numbers; no values)."""

    detail: str
    extensions: dict[str, Any] = field(default_factory=dict)


def refusal(
    *,
    action: str,
    resource_type: str,
    roles: Iterable[str],
    reasons: tuple[tuple[str, str], ...],
    errors: tuple[str, ...] = (),
    explain: Mapping[str, Explanation | str] | None = None,
) -> ForbiddenError:
    """The 403 of a denied decision: which rule refused, why, and what to do."""
    if reasons:
        ids = [pid for pid, _ in reasons]
        detail = "; ".join(f"refused by policy {pid}: {why}" for pid, why in reasons)
        extensions: dict[str, Any] = {"reasons": dict(reasons)}
        for pid in ids:
            extra = (explain or {}).get(pid)
            if isinstance(extra, str):
                detail += f". {extra}"
            elif extra is not None:
                detail += f". {extra.detail}"
                extensions.update(extra.extensions)
        return ForbiddenError(detail, action=action, policies=ids, **extensions)
    if errors:
        return ForbiddenError(
            f"you may not perform {action!r} on this {resource_type}: the policies could not "
            "be evaluated for this request (denied to be safe); quote the instance id to an "
            "administrator",
            action=action,
            policies=[],
        )
    held = sorted(set(roles))
    return ForbiddenError(
        f"you may not perform {action!r} on this {resource_type}: no policy permits it for "
        f"your role(s) here ({', '.join(held) if held else 'none'}); ask a project admin for "
        "a role that grants it",
        action=action,
        policies=[],
        roles=held,
    )


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
    #: the request's DecisionLog; None (a guard of its own short transaction): the
    #: decision is emitted into ``session`` and commits or rolls back with it
    decisions: DecisionLog | None = None

    def check(
        self,
        resource: Resource,
        context: dict[str, Any] | None = None,
        *,
        explain: Mapping[str, Explanation | str] | None = None,
    ) -> None:
        """Decide, record the decision in the ledger, and raise ForbiddenError on deny: the
        problem names the refusing policies and their reasons, plus `explain[policy_id]`."""
        self.checked = True
        decision = self.runtime.authorizer.decide(
            identity=self.identity,
            action=self.action,
            resource=resource,
            context=dict(context or {}),
        )
        if decision.errors:
            log.warning(
                "policy evaluation errors for %s: %s", self.action, "; ".join(decision.errors)
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
                # Schema or evaluation errors deny (fail closed): how many (their text
                # quotes request values, so it goes to the server log, not the ledger).
                **({"errors": len(decision.errors)} if decision.errors else {}),
            },
        )
        if self.decisions is not None:
            self.decisions.record(self.session, event)
        else:
            ledger.emit_many(self.session, [event])
        self.recorded.append(event)
        if not decision.allowed:
            project_id = resource.project_id
            raise refusal(
                action=self.action,
                resource_type=resource.type,
                roles=self.identity.roles_in(project_id)
                if project_id
                else self.identity.platform_roles(),
                reasons=decision.reasons,
                errors=decision.errors,
                explain=explain,
            )


ACTION_ATTR = "__privet_action__"


def action(name: str, *, identity_from: Callable[..., Identity] = get_identity) -> Any:
    """Declare the route's action; the handler receives a Guard to call with the resource.
    `identity_from`: how the caller authenticates (default: API key or OIDC token)."""

    async def dependency(
        request: Request,
        identity: Identity = Depends(identity_from),
        *,
        runtime: RuntimeDep,
        session: SessionDep,
    ) -> AsyncIterator[Guard]:
        guard = Guard(
            action=name,
            identity=identity,
            runtime=runtime,
            session=session,
            recorded=request.state.decision_events,
            decisions=request.state.decision_log,
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
