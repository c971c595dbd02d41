"""Which `privet` command performs each HTTP operation of the API: the one place that says
so. A test (tests/cli/test_coverage.py) fails for an operation of the app that is in
neither table, and for a command named here that does not exist.

Operations are "METHOD /path" with every path parameter written `{}` (names may differ).
The mapping goes from the API to the CLI: server-side commands with no route (`privet db
upgrade`, `privet worker`, `privet dev seed`, which must never be reachable over HTTP)
have nothing to map.
"""

from __future__ import annotations

COMMANDS: dict[str, str] = {
    "GET /v1/me": "whoami",
    "GET /v1/auth/config": "login --oidc",
    "GET /v1/projects": "projects list",
    "POST /v1/projects": "projects create",
    "GET /v1/projects/{}": "projects show",
    "GET /v1/projects/{}/compliance-settings": "projects settings",
    "PUT /v1/projects/{}/compliance-settings": "projects set-settings",
    "GET /v1/projects/{}/members": "members list",
    "POST /v1/projects/{}/members": "members add",
    "DELETE /v1/projects/{}/members/{}": "members remove",
    "POST /v1/projects/{}/invitations": "members invite",
    "GET /v1/projects/{}/invitations": "invitations list",
    "DELETE /v1/projects/{}/invitations/{}": "invitations revoke",
    "POST /v1/invitations:accept": "invitations accept",
    "GET /v1/api-keys": "api-keys list",
    "POST /v1/api-keys": "api-keys create",
    "DELETE /v1/api-keys/{}": "api-keys revoke",
    "GET /v1/policies": "policy show",
    "POST /v1/policies:reload": "policy reload",
    "GET /v1/audit/checkpoint": "audit checkpoint --remote",
    "GET /v1/audit/events": "audit events",
    "GET /v1/audit/proofs/inclusion": "audit proof",
    "GET /v1/audit/proofs/consistency": "audit consistency",
    "GET /v1/audit/export": "audit export --remote",
    "POST /v1/audit:verify": "audit verify --remote",
    "POST /v1/projects/{}/datasets": "datasets upload",
    "GET /v1/projects/{}/datasets": "datasets list",
    "POST /v1/projects/{}/datasets/{}/versions": "datasets upload --dataset",
    "GET /v1/projects/{}/datasets/{}": "datasets show",
    "GET /v1/projects/{}/datasets/{}/versions/{}": "datasets show --version",
    "GET /v1/projects/{}/datasets/{}/versions/{}/export": "datasets export",
    "POST /v1/projects/{}/datasets/{}:erase-subjects": "datasets erase-subjects",
    "POST /v1/projects/{}/datasets:sweep": "datasets sweep --remote",
    "POST /v1/projects/{}/models/{}/versions/{}:predict": "predict --model",
    "POST /v1/projects/{}/models/{}:predict": "predict",
    "POST /v1/projects/{}/predictions/{}:review": "predictions review",
    "POST /v1/projects/{}/predictions/{}:explain": "predictions explain",
    "GET /v1/projects/{}/predictions/{}/reviews": "predictions reviews",
    "POST /v1/projects/{}/predictions/{}:outcome": "predictions outcome",
    "GET /v1/projects/{}/review-queue": "predictions queue",
    "POST /v1/projects/{}/training-jobs": "train submit",
    "GET /v1/projects/{}/training-jobs": "train list",
    "GET /v1/projects/{}/training-jobs/{}": "train show",
    "GET /v1/projects/{}/training-jobs/{}/history": "train history",
    "POST /v1/projects/{}/training-jobs/{}:cancel": "train cancel",
    "GET /v1/projects/{}/models": "models list",
    "GET /v1/projects/{}/models/{}": "models list",
    "GET /v1/projects/{}/model-versions/{}": "models show",
    "GET /v1/projects/{}/model-versions/{}/card": "models show --card",
    "POST /v1/projects/{}/model-versions/{}:approve": "models approve",
    "POST /v1/projects/{}/model-versions/{}:retire": "models retire",
    "POST /v1/projects/{}/model-versions/{}:resolve-erasure-flags": "models resolve-erasure-flags",
    "GET /v1/projects/{}/model-versions/{}/export": "models export",
    "POST /v1/projects/{}/models/{}/versions/{}:resume": "models resume",
    "GET /v1/projects/{}/models/{}/versions/{}/monitoring": "monitor show",
    "POST /v1/projects/{}/models/{}/versions/{}:monitoring-reference": "monitor reference",
    "POST /v1/data-subject-requests": "dsr submit",
    "GET /v1/data-subject-requests": "dsr list",
    "GET /v1/data-subject-requests/{}": "dsr show",
    "GET /v1/data-subject-requests/{}/report": "dsr report",
    "GET /v1/reports/ropa": "reports export --kind",
    "GET /v1/reports/model-lineage": "reports export --kind",
    "GET /v1/reports/privacy-budget": "reports export --kind",
    "GET /v1/reports/access-log": "reports export --kind",
    "GET /v1/reports/dsr-log": "reports export --kind",
    "GET /v1/reports/monitoring": "reports export --kind",
}

MACHINE_ONLY: dict[str, str] = {
    "GET /healthz": "liveness probe for load balancers and orchestrators",
    "GET /readyz": "readiness probe for load balancers and orchestrators",
    "GET /metrics": "Prometheus scrape endpoint",
}
