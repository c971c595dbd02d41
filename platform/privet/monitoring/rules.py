"""Decision rules: Cedar policies on each prediction's output (``decision.finalize``).

A prediction is evaluated as ``ServiceAccount::"decision-rules"`` performing
``Action::"decision.finalize"`` on its ``ModelVersion`` with context ``{purpose, label,
score (decimal, 4 places), model}``. ``policies/decision_rules.cedar`` permits every
decision and forbids the ones that must not be final: a forbid whose id starts with
``decision.review.`` makes the prediction ``pending_review`` (a person decides), one
starting with ``decision.refer.`` makes it ``refer``; review wins over refer. Other deny
reasons (an evaluation error, an unknown rule) fail safe to ``pending_review``.

Decisions depend only on (policy set, model, purpose, label, score to 4 places), so they
are cached per process: evaluating a batch costs dictionary lookups once warm.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from privet.monitoring.tables import FINAL, PENDING_REVIEW, REFER

ACTION = "decision.finalize"
PRINCIPAL_TYPE = "ServiceAccount"
PRINCIPAL_ID = "decision-rules"
REVIEW_PREFIX = "decision.review."
REFER_PREFIX = "decision.refer."
_CACHE_MAX = 100_000


@dataclass(frozen=True, slots=True)
class RuleDecision:
    status: str
    rules: tuple[str, ...]

    @property
    def final(self) -> bool:
        return self.status == FINAL


FINAL_DECISION = RuleDecision(FINAL, ())


def classify(allowed: bool, reasons: tuple[str, ...], errors: bool) -> RuleDecision:
    """The status a Cedar decision means (see the module's docstring)."""
    if allowed and not errors:
        return RuleDecision(FINAL, tuple(r for r in reasons if r.startswith("decision.")))
    shaping = tuple(sorted(reasons))
    if any(r.startswith(REVIEW_PREFIX) for r in reasons):
        return RuleDecision(PENDING_REVIEW, shaping)
    if reasons and all(r.startswith(REFER_PREFIX) for r in reasons):
        return RuleDecision(REFER, shaping)
    # Denied for another reason (no permit, an error): never final without a person.
    return RuleDecision(PENDING_REVIEW, shaping or ("decision.error",))


class DecisionRules:
    """Evaluates and caches decision rules against one policy engine."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self._lock = threading.Lock()
        self._cache: dict[tuple[str, str, str, str, str], RuleDecision] = {}

    def decide(
        self,
        *,
        project_id: str,
        model_version_id: str,
        model: str,
        purpose: str,
        label: str,
        score: float,
    ) -> RuleDecision:
        score4 = f"{min(max(score, 0.0), 1.0):.4f}"
        key = (self.engine.version, model, purpose, label, score4)
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        decision = self.engine.decide(
            principal_type=PRINCIPAL_TYPE,
            principal_id=PRINCIPAL_ID,
            action=ACTION,
            resource_type="ModelVersion",
            resource_id=model_version_id,
            resource_attributes={
                "project": project_id,
                "state": "approved",
                "submitted_by": "",
                "purposes": frozenset({purpose}),
            },
            project_id=project_id,
            context={
                "purpose": purpose,
                "label": label,
                "score": Decimal(score4),
                "model": model,
            },
        )
        result = classify(decision.allowed, tuple(decision.policy_ids), bool(decision.errors))
        with self._lock:
            if len(self._cache) >= _CACHE_MAX:
                self._cache.clear()
            self._cache[key] = result
        return result
