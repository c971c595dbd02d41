"""Role x route matrix: for every route of the app and every default role, the decision the
route's own action gets from the shipped Cedar policies, against the table below (the spec).

Each role is bound in the resource's project (project routes) or platform-wide (platform
routes). Objects belong to that project; model versions are approved and were trained by
someone else (so segregation of duties allows approval; predictions were made by an
application someone else answers for); contexts are the benign ones the services would
supply. HTTP-level denials and cross-project 404s are tested elsewhere
(test_auth, test_bola, each domain's API tests)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from privet.api.deps import Resource, iter_api_routes, route_actions
from privet.auth.identity import Identity
from privet.authorization import CedarAuthorizer
from privet.policy import PolicyEngine, predict_context, upload_context
from tests.policy.helpers import credit_training_context

ROLES = ("admin", "data_steward", "ml_engineer", "approver", "auditor", "predictor")
ALL = frozenset(ROLES)
READERS = frozenset({"admin", "data_steward", "ml_engineer", "approver", "auditor"})
MODEL_READERS = READERS | {"predictor"}
STEWARD = frozenset({"admin", "data_steward"})
AUDIT = frozenset({"admin", "auditor"})
APPROVE = frozenset({"admin", "approver"})
ADMIN = frozenset({"admin"})

# (method, path) → (scope, roles allowed)
MATRIX: dict[tuple[str, str], tuple[str, frozenset[str]]] = {
    ("POST", "/v1/projects"): ("platform", ADMIN),
    ("GET", "/v1/projects"): ("platform", ALL),
    ("GET", "/v1/projects/{project_id}"): ("project", READERS),
    ("GET", "/v1/projects/{project_id}/members"): ("project", STEWARD | {"auditor"}),
    ("POST", "/v1/projects/{project_id}/members"): ("project", ADMIN),
    ("DELETE", "/v1/projects/{project_id}/members/{binding_id}"): ("project", ADMIN),
    ("POST", "/v1/api-keys"): ("own", ALL),
    ("GET", "/v1/api-keys"): ("own", ALL),
    ("DELETE", "/v1/api-keys/{key_id}"): ("own", ALL),
    ("GET", "/v1/me"): ("own", ALL),
    ("POST", "/v1/projects/{project_id}/invitations"): ("project", ADMIN),
    ("GET", "/v1/projects/{project_id}/invitations"): ("project", AUDIT),
    ("DELETE", "/v1/projects/{project_id}/invitations/{invitation_id}"): ("project", ADMIN),
    # Only an invitation token accepts (an `Invitation` principal): no role does.
    ("POST", "/v1/invitations:accept"): ("project", frozenset()),
    ("GET", "/v1/policies"): ("platform", AUDIT),
    ("POST", "/v1/policies:reload"): ("platform", ADMIN),
    ("GET", "/v1/admin/master-key"): ("platform", AUDIT),
    ("POST", "/v1/base-models"): ("platform", ADMIN),
    ("GET", "/v1/base-models"): ("platform", ALL),
    ("GET", "/v1/base-models/{name}"): ("platform", ALL),
    ("POST", "/v1/base-models/{name}:retire"): ("platform", ADMIN),
    ("GET", "/v1/audit/checkpoint"): ("platform", AUDIT),
    ("GET", "/v1/audit/events"): ("platform", AUDIT),
    ("GET", "/v1/audit/proofs/inclusion"): ("platform", AUDIT),
    ("GET", "/v1/audit/proofs/consistency"): ("platform", AUDIT),
    ("GET", "/v1/audit/export"): ("platform", AUDIT),
    ("POST", "/v1/audit:verify"): ("platform", AUDIT),
    ("POST", "/v1/projects/{project_id}/datasets"): ("project", STEWARD),
    ("POST", "/v1/projects/{project_id}/datasets/{dataset_id}/versions"): ("project", STEWARD),
    ("GET", "/v1/projects/{project_id}/datasets"): ("project", READERS),
    ("GET", "/v1/projects/{project_id}/datasets/{dataset_id}"): ("project", READERS),
    ("GET", "/v1/projects/{project_id}/datasets/{dataset_id}/versions/{version}"): (
        "project",
        READERS,
    ),
    ("GET", "/v1/projects/{project_id}/datasets/{dataset_id}/versions/{version}/export"): (
        "project",
        STEWARD,
    ),
    ("POST", "/v1/projects/{project_id}/datasets/{dataset_id}:erase-subjects"): (
        "project",
        STEWARD,
    ),
    ("POST", "/v1/projects/{project_id}/datasets:sweep"): ("project", STEWARD),
    ("POST", "/v1/projects/{project_id}/models/{model}/versions/{version}:predict"): (
        "project",
        frozenset({"admin", "predictor"}),
    ),
    ("POST", "/v1/projects/{project_id}/models/{model}:predict"): (
        "project",
        frozenset({"admin", "predictor"}),
    ),
    ("POST", "/v1/projects/{project_id}/predictions/{prediction_id}:review"): ("project", APPROVE),
    # The case's text: read by whoever may decide its review (the same action).
    ("GET", "/v1/projects/{project_id}/predictions/{prediction_id}/case"): ("project", APPROVE),
    ("GET", "/v1/projects/{project_id}/predictions/{prediction_id}/reviews"): (
        "project",
        AUDIT | {"approver"},
    ),
    ("POST", "/v1/projects/{project_id}/predictions/{prediction_id}:explain"): (
        "project",
        APPROVE | {"predictor"},
    ),
    ("POST", "/v1/projects/{project_id}/predictions/{prediction_id}:outcome"): (
        "project",
        APPROVE | {"predictor"},
    ),
    ("POST", "/v1/projects/{project_id}/training-jobs"): (
        "project",
        frozenset({"admin", "ml_engineer"}),
    ),
    ("GET", "/v1/projects/{project_id}/training-jobs"): ("project", READERS),
    ("GET", "/v1/projects/{project_id}/training-jobs/{job_id}"): ("project", READERS),
    ("GET", "/v1/projects/{project_id}/training-jobs/{job_id}/history"): ("project", READERS),
    ("POST", "/v1/projects/{project_id}/training-jobs/{job_id}:cancel"): ("project", ADMIN),
    ("GET", "/v1/projects/{project_id}/models"): ("project", MODEL_READERS),
    ("GET", "/v1/projects/{project_id}/models/{model_id}"): ("project", MODEL_READERS),
    ("GET", "/v1/projects/{project_id}/model-versions/{version_id}"): ("project", MODEL_READERS),
    ("GET", "/v1/projects/{project_id}/model-versions/{version_id}/card"): (
        "project",
        MODEL_READERS,
    ),
    ("POST", "/v1/projects/{project_id}/model-versions/{version_id}:approve"): ("project", APPROVE),
    ("POST", "/v1/projects/{project_id}/model-versions/{version_id}:retire"): ("project", APPROVE),
    ("POST", "/v1/projects/{project_id}/model-versions/{version_id}:resolve-erasure-flags"): (
        "project",
        STEWARD,
    ),
    ("GET", "/v1/projects/{project_id}/model-versions/{version_id}/export"): ("project", ADMIN),
    ("POST", "/v1/data-subject-requests"): ("platform", STEWARD),
    ("GET", "/v1/data-subject-requests"): ("platform", STEWARD | {"auditor"}),
    ("GET", "/v1/data-subject-requests/{request_id}"): ("platform", STEWARD | {"auditor"}),
    ("GET", "/v1/data-subject-requests/{request_id}/report"): ("platform", STEWARD | {"auditor"}),
    ("GET", "/v1/projects/{project_id}/compliance-settings"): ("project", READERS),
    ("PUT", "/v1/projects/{project_id}/compliance-settings"): ("project", ADMIN),
    ("GET", "/v1/reports/ropa"): ("project", STEWARD | {"auditor"}),
    ("GET", "/v1/reports/model-lineage"): ("project", READERS),
    ("GET", "/v1/reports/privacy-budget"): ("project", STEWARD | {"auditor", "ml_engineer"}),
    ("GET", "/v1/reports/access-log"): ("project", AUDIT),
    # Platform-wide: data-subject requests span every project (report.platform-wide-...).
    ("GET", "/v1/reports/dsr-log"): ("platform", STEWARD | {"auditor"}),
    ("GET", "/v1/reports/monitoring"): ("project", AUDIT | {"approver", "ml_engineer"}),
    ("GET", "/v1/projects/{project_id}/review-queue"): ("project", AUDIT | {"approver"}),
    ("GET", "/v1/projects/{project_id}/models/{model}/versions/{version}/monitoring"): (
        "project",
        AUDIT | {"approver", "ml_engineer"},
    ),
    ("POST", "/v1/projects/{project_id}/models/{model}/versions/{version}:resume"): (
        "project",
        APPROVE,
    ),
    (
        "POST",
        "/v1/projects/{project_id}/models/{model}/versions/{version}:monitoring-reference",
    ): ("project", APPROVE),
}

PROJECT = "prj_matrix"
SCHEMA = Path(__file__).resolve().parents[2] / "policies" / "schema.cedarschema"


def _resource_types() -> dict[str, list[str]]:
    text = SCHEMA.read_text()
    found = re.findall(r'action "([a-z_.]+)" appliesTo \{[^}]*?resource: \[([\w, ]+)\]', text)
    return {action: [t.strip() for t in types.split(",")] for action, types in found}


def _resource(action: str, type_: str, path: str, caller: str) -> Resource:
    attrs: dict[str, Any] = {}
    project: str | None = PROJECT
    if type_ in ("Platform", "AuditLog", "DataSubjectRequest"):
        project = None
    elif type_ == "Principal":
        project = None
        attrs = {"principal": caller, "kind": "user", "home_project": "", "scope": ""}
    elif type_ == "TrainingJob":
        attrs = {"submitted_by": "User:someone-else"}
    elif type_ == "ModelVersion":
        attrs = {
            "state": "approved",
            "submitted_by": "User:someone-else",
            "submitted_by_accountable": "someone-else",
            "purposes": frozenset({"credit_scoring"}),
        }
    elif type_ == "Prediction":
        # made by an application someone else answers for, reviewed by nobody yet
        attrs = {"caller_accountable": "someone-else", "decided_by": frozenset()}
    elif type_ == "Report":
        attrs = {"kind": path.rsplit("/", 1)[1]}
    return Resource(
        type=type_, id=PROJECT if type_ == "Project" else "obj", project_id=project, attrs=attrs
    )


def _context(action: str) -> dict[str, Any]:
    if action in ("member.add", "project.invite"):
        return {"role": "predictor"}
    if action == "api_key.create":
        return {"self": True, "within_lifetime": True, "caller_scope": ""}
    if action == "api_key.revoke":
        return {"self": True, "platform_admin": False}
    if action in ("dataset.upload", "dataset.new_version"):
        return upload_context(contains_personal_data=True, pii_suspected=False)
    if action == "training_job.submit":
        return credit_training_context(epsilon=3, categories=["contact"], epsilon_limit=8)
    if action == "model_version.predict":
        return predict_context(purpose="credit_scoring")
    return {}


@pytest.fixture(scope="module")
def routes(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[str, str, str]]:
    from privet.api.app import create_app
    from privet.config import Settings

    settings = Settings(home=tmp_path_factory.mktemp("matrix") / "home")
    app = create_app(settings=settings)
    found = []
    for route in iter_api_routes(app.routes):
        for action in route_actions(route.dependant):
            for method in route.methods:
                found.append((method, route.path, action))
    return found


def test_matrix_covers_every_route(routes) -> None:  # type: ignore[no-untyped-def]
    assert {(m, p) for m, p, _ in routes} == set(MATRIX)


@pytest.mark.parametrize("role", ROLES)
def test_each_role_gets_exactly_the_routes_in_the_table(routes, role) -> None:  # type: ignore[no-untyped-def]
    authorizer = CedarAuthorizer(PolicyEngine.load())
    types = _resource_types()
    wrong = []
    for method, path, action in routes:
        scope, allowed = MATRIX[(method, path)]
        caller = "usr_matrix"
        bound = None if scope in ("platform", "own") else PROJECT
        identity = Identity(
            principal_id=caller,
            kind="user",
            name="m",
            bindings=frozenset({(role, bound)}),
            method="api_key",
        )
        candidates = types[action]
        project_path = path.startswith("/v1/projects/{project_id}")
        type_ = "Project" if project_path and "Project" in candidates else candidates[0]
        resource = _resource(action, type_, path, caller)
        if scope == "platform":  # a platform-wide route is asked without a project
            resource.project_id = None
        decision = authorizer.decide(
            identity=identity, action=action, resource=resource, context=_context(action)
        )
        if decision.allowed != (role in allowed):
            wrong.append((method, path, action, decision.allowed, decision.errors))
    assert not wrong, wrong
