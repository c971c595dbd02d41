"""Authorization for privet: Cedar policies in ``policies/``, deny by default, every
decision explained by the ids of the policies that made it. No HTTP here."""

from privet.policy.actions import Action
from privet.policy.engine import PolicyEngine
from privet.policy.errors import PolicyError, PolicyLoadError, PolicyRequestError
from privet.policy.request import (
    build_request,
    decimal_down,
    decimal_up,
    make_request,
    predict_context,
    principal_ref,
    training_context,
    upload_context,
)
from privet.policy.schemas import (
    AuthzRequest,
    Decision,
    Entity,
    EntityRef,
    PolicyInfo,
    PolicySetInfo,
    PolicyTestReport,
    PolicyTestResult,
    ReloadResult,
)
from privet.policy.source import default_policy_dir, version_hash
from privet.policy.testing import run_policy_tests

__all__ = [
    "Action",
    "AuthzRequest",
    "Decision",
    "Entity",
    "EntityRef",
    "PolicyEngine",
    "PolicyError",
    "PolicyInfo",
    "PolicyLoadError",
    "PolicyRequestError",
    "PolicySetInfo",
    "PolicyTestReport",
    "PolicyTestResult",
    "ReloadResult",
    "build_request",
    "decimal_down",
    "decimal_up",
    "default_policy_dir",
    "make_request",
    "predict_context",
    "principal_ref",
    "run_policy_tests",
    "training_context",
    "upload_context",
    "version_hash",
]
