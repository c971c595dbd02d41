"""What the registry knows about a report kind: its builder, what it is for, the query
parameters it reads (and which it cannot do without) and the formats it renders to.

The API routes, the CLI and docs/COMPLIANCE.md all follow ``privet.reports.registry``,
so a kind is added in one place.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from sqlmodel import Session

from privet.authorization import CedarAuthorizer
from privet.crypto.context import ServiceRuntime
from privet.kit.errors import InvalidInputError
from privet.reports.model import Report
from privet.reports.render import FORMATS


class ReportRuntime(ServiceRuntime, Protocol):
    """What a report may use of the runtime (a ``privet.runtime.Runtime``, which stands
    above reports): its storage (a request's sealed subject, the subject's rows) and its
    authorizer (the policy version in force)."""

    @property
    def authorizer(self) -> CedarAuthorizer: ...


class Builder(Protocol):
    def __call__(
        self, session: Session, runtime: ReportRuntime, *, actor: str, params: Mapping[str, Any]
    ) -> Report: ...


@dataclass(frozen=True)
class ReportKind:
    name: str
    description: str
    parameters: tuple[str, ...]
    builder: Builder
    required: tuple[str, ...] = ()
    formats: tuple[str, ...] = FORMATS

    def build(
        self, session: Session, runtime: ReportRuntime, *, actor: str, params: Mapping[str, Any]
    ) -> Report:
        """Refuse a missing required parameter (422), then build (unused params ignored)."""
        for name in self.required:
            if not params.get(name):
                raise InvalidInputError(f"{self.name} needs {name}=<id>", field=name)
        return self.builder(session, runtime, actor=actor, params=params)
