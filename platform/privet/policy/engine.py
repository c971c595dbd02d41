"""The policy engine: one parsed, validated Cedar policy set, swapped atomically on reload.

The gateway builds one engine at start-up (an invalid policy directory stops start-up
with ``PolicyLoadError`` naming file and line), authorizes every request through it and
calls ``reload()`` on SIGHUP. Nothing here knows HTTP.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Concatenate, ParamSpec

import cedarpy

from privet.policy.request import build_request, make_request
from privet.policy.schemas import (
    AuthzRequest,
    Decision,
    PolicySetInfo,
    ReloadResult,
)
from privet.policy.source import CompiledPolicies, compile_policy_dir, default_policy_dir

P = ParamSpec("P")


def _deciding(
    build: Callable[P, AuthzRequest],
) -> Callable[Concatenate[PolicyEngine, P], Decision]:
    """A method that decides what `build` makes: the builder's signature is the method's,
    so it is written once (in ``privet.policy.request``)."""

    def decide(engine: PolicyEngine, /, *args: P.args, **kwargs: P.kwargs) -> Decision:
        return engine.evaluate(build(*args, **kwargs))

    return decide


class PolicyEngine:
    """Authorizes requests against the active policy set of one directory.

    Thread-safe: ``authorize`` reads one immutable snapshot reference (an atomic
    read), ``reload`` builds a new snapshot outside the lock and swaps the reference,
    so in-flight decisions finish on the set they started with.
    """

    def __init__(self, compiled: CompiledPolicies) -> None:
        self._compiled = compiled
        self._loaded_at = datetime.now(UTC)
        self._reload_lock = threading.Lock()

    @classmethod
    def load(cls, policy_dir: Path | str | None = None) -> PolicyEngine:
        """Load, validate and parse ``policy_dir`` (default: the shipped ``policies/``)."""
        directory = Path(policy_dir) if policy_dir is not None else default_policy_dir()
        return cls(compile_policy_dir(directory))

    @property
    def version(self) -> str:
        """Version hash of the active set (recorded in decisions and model lineage)."""
        return self._compiled.version

    @property
    def directory(self) -> Path:
        """The directory the policies are read from."""
        return self._compiled.directory

    @property
    def policy_ids(self) -> tuple[str, ...]:
        """Ids of the active policies, in file order."""
        return tuple(p.id for p in self._compiled.policies)

    def info(self) -> PolicySetInfo:
        """The active set's version, files and policies (for ``GET /v1/policies``)."""
        compiled = self._compiled
        return PolicySetInfo(
            version=compiled.version,
            loaded_at=self._loaded_at,
            directory=str(compiled.directory),
            files=compiled.files,
            policies=compiled.policies,
        )

    def reload(self) -> ReloadResult:
        """Re-read the directory and swap the set atomically; old set stays on failure.

        Raises ``PolicyLoadError`` (and keeps serving the old set) if the new files are
        invalid. The caller records the returned versions as an audit event.
        """
        with self._reload_lock:
            fresh = compile_policy_dir(self._compiled.directory)
            old = self._compiled
            self._compiled = fresh
            self._loaded_at = datetime.now(UTC)
        return ReloadResult(
            old_version=old.version,
            new_version=fresh.version,
            changed=old.version != fresh.version,
            policy_ids=tuple(p.id for p in fresh.policies),
        )

    def evaluate(self, request: AuthzRequest) -> Decision:
        """Decide a prepared request. Errors of any kind deny (fail closed)."""
        compiled = self._compiled
        result = cedarpy.is_authorized(
            dict(request.cedar_request),
            compiled.policy_set,
            request.cedar_entities,
            schema=compiled.schema,
        )
        diagnostics = result.diagnostics
        errors = tuple(diagnostics.errors)
        allowed = result.allowed and not errors
        policy_ids = tuple(sorted(diagnostics.reasons))
        return Decision(
            allowed=allowed,
            principal=str(request.principal),
            action=request.action,
            resource=str(request.resource),
            policy_ids=policy_ids,
            errors=errors,
            policy_version=compiled.version,
            reasons=() if allowed else tuple((p, compiled.reason_of(p)) for p in policy_ids),
        )

    authorize = _deciding(make_request)
    """Decide with explicit entities (the keyword arguments of
    ``privet.policy.request.make_request``); ``context`` holds plain values."""

    decide = _deciding(build_request)
    """The gateway's one call per request: build the Cedar request from plain values
    (the keyword arguments of ``privet.policy.request.build_request``) and decide it."""
