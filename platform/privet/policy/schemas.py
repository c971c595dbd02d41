"""Values that cross the policy engine's boundary: requests, decisions, policy listings.

Requests and decisions are frozen dataclasses (they are built on every HTTP request,
so they stay cheap); listings and test cases are pydantic models because they are
served as JSON and read from files.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


@dataclass(frozen=True, slots=True)
class EntityRef:
    """A Cedar entity uid: ``Type::"id"``."""

    type: str
    id: str

    def __str__(self) -> str:
        return f'{self.type}::"{self.id}"'

    def to_cedar(self) -> dict[str, str]:
        """The JSON form Cedar takes for a request's principal, action or resource."""
        return {"type": self.type, "id": self.id}


@dataclass(frozen=True, slots=True)
class Entity:
    """An entity with attributes (plain Python values; see ``request.to_cedar_value``)."""

    uid: EntityRef
    attrs: Mapping[str, Any] = field(default_factory=dict)
    parents: tuple[EntityRef, ...] = ()


@dataclass(frozen=True, slots=True)
class AuthzRequest:
    """A request ready for Cedar: built once by ``build_request``, evaluated by the engine.

    ``cedar_request`` and ``cedar_entities`` are already in Cedar's JSON form, so the
    engine does no conversion on the hot path.
    """

    principal: EntityRef
    action: str
    resource: EntityRef
    cedar_request: Mapping[str, Any]
    cedar_entities: str


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of one authorization request, with what is needed to audit it.

    ``policy_ids`` are the ``@id`` of the policies that determined the decision: the
    satisfied permits for an allow, the satisfied forbids for an explicit deny, and
    none for a deny by default. A request that Cedar could not evaluate cleanly
    (``errors`` non-empty) is always denied: fail closed.
    """

    allowed: bool
    principal: str
    action: str
    resource: str
    policy_ids: tuple[str, ...]
    errors: tuple[str, ...]
    policy_version: str

    @property
    def outcome(self) -> Literal["allow", "deny"]:
        """``allow`` or ``deny``, as written in audit events and policy tests."""
        return "allow" if self.allowed else "deny"

    @property
    def reason(self) -> str:
        """One word on why: ``permit``, ``forbid``, ``error`` or ``default-deny``."""
        if self.allowed:
            return "permit"
        if self.errors:
            return "error"
        return "forbid" if self.policy_ids else "default-deny"


class PolicyInfo(BaseModel):
    """One loaded policy, as listed by ``GET /v1/policies``."""

    model_config = ConfigDict(frozen=True)

    id: str
    effect: Literal["permit", "forbid"]
    file: str
    line: int
    reason: str | None = Field(
        default=None, description="The policy's @reason: what a refused caller is told."
    )


class PolicySetInfo(BaseModel):
    """The active policy set: what an auditor needs to pin a decision to its rules."""

    model_config = ConfigDict(frozen=True)

    version: str = Field(description="sha256:<hex> over the sorted (file name, content) pairs.")
    loaded_at: datetime
    directory: str
    files: tuple[str, ...]
    policies: tuple[PolicyInfo, ...]


class ReloadResult(BaseModel):
    """What a reload changed; the platform records it as an audit event."""

    model_config = ConfigDict(frozen=True)

    old_version: str
    new_version: str
    changed: bool
    policy_ids: tuple[str, ...]


class PolicyTestEntity(BaseModel):
    """Principal or resource of a policy test case."""

    model_config = ConfigDict(extra="forbid")

    type: str
    id: str
    attributes: dict[str, Any] = Field(default_factory=dict)


class PolicyTestExpectation(BaseModel):
    """Expected decision and the exact set of determining policy ids."""

    model_config = ConfigDict(extra="forbid")

    decision: Literal["allow", "deny"]
    policies: list[str] = Field(default_factory=list)


class PolicyTestCase(BaseModel):
    """One case of ``policies/tests/*.json``: a request and the decision it must get."""

    model_config = ConfigDict(extra="forbid")

    name: str
    principal: PolicyTestEntity
    roles: list[str] = Field(default_factory=list)
    grants: list[str] = Field(default_factory=list)
    project: str | None = None
    action: str
    resource: PolicyTestEntity
    context: dict[str, Any] = Field(default_factory=dict)
    expect: PolicyTestExpectation


class PolicyTestFile(BaseModel):
    """A file of policy test cases."""

    model_config = ConfigDict(extra="forbid")

    description: str = ""
    cases: list[PolicyTestCase]


class PolicyTestResult(BaseModel):
    """Outcome of one case."""

    file: str
    name: str
    passed: bool
    expected_decision: str
    expected_policies: tuple[str, ...]
    actual_decision: str
    actual_policies: tuple[str, ...]
    errors: tuple[str, ...] = ()

    @property
    def message(self) -> str:
        """A one-line account of a failure, naming the case."""
        text = (
            f"{self.file}::{self.name}: expected {self.expected_decision} "
            f"{list(self.expected_policies)}, got {self.actual_decision} "
            f"{list(self.actual_policies)}"
        )
        if self.errors:
            text += f" (errors: {'; '.join(self.errors)})"
        return text


class PolicyTestReport(BaseModel):
    """All results of a policy test run."""

    policy_version: str
    results: tuple[PolicyTestResult, ...]

    @property
    def passed(self) -> bool:
        """True when every case passed (and there was at least one)."""
        return bool(self.results) and all(r.passed for r in self.results)

    @property
    def failures(self) -> tuple[PolicyTestResult, ...]:
        """The failing cases, in file order."""
        return tuple(r for r in self.results if not r.passed)
