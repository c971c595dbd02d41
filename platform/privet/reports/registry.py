"""The report kinds served under ``GET /v1/reports/{kind}``, by name.

The API adds one route per kind from here, the CLI offers these kinds and
docs/COMPLIANCE.md lists them (tests/compliance/test_registry.py keeps the three in
step). A new kind is a module in ``privet.reports.kinds`` with a ``KIND`` and a line
below. The answer to a data-subject request (``dsr``) is not here: it is served under
its request (``kinds.request_report``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlmodel import Session

from privet.kit.errors import NotFoundError
from privet.reports.kind import ReportKind, ReportRuntime
from privet.reports.kinds import (
    access_log,
    dsr_log,
    model_lineage,
    monitoring,
    privacy_budget,
    ropa,
)
from privet.reports.model import Report

REGISTRY: dict[str, ReportKind] = {
    k.name: k
    for k in (
        ropa.KIND,
        model_lineage.KIND,
        privacy_budget.KIND,
        access_log.KIND,
        dsr_log.KIND,
        monitoring.KIND,
    )
}
KINDS: tuple[str, ...] = tuple(REGISTRY)


def get_kind(kind: str) -> ReportKind:
    spec = REGISTRY.get(kind)
    if spec is None:
        raise NotFoundError(f"no report of kind {kind!r}; kinds: {', '.join(KINDS)}")
    return spec


def build(
    kind: str, session: Session, runtime: ReportRuntime, *, actor: str, params: Mapping[str, Any]
) -> Report:
    """Build ``kind`` with the route's parameters (unused ones ignored)."""
    return get_kind(kind).build(session, runtime, actor=actor, params=params)
