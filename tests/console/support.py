"""What the console's HTTP tests and the console page benchmark share: a client signed in
through the sign-in form like a browser, and a candidate model version registered through
the model registry."""

from __future__ import annotations

import re
from typing import Any

import httpx

CSRF_INPUT = re.compile(r'name="csrf" value="([^"]+)"')


def signed_in(url: str, api_key: str) -> httpx.Client:
    """A client holding a console session, signed in through the form."""
    http = httpx.Client(base_url=url, timeout=120)
    match = CSRF_INPUT.search(http.get("/sign-in").text)
    assert match is not None
    answer = http.post(
        "/sign-in",
        data={"api_key": api_key, "csrf": match.group(1), "next": "/"},
        headers={"Origin": url},
    )
    assert answer.status_code == 303, answer.text[-500:]
    return http


def register_version(
    runtime: Any, *, project: str, model_name: str, job_id: str, submitted_by: str
) -> Any:
    """A candidate version of ``model_name`` in ``project`` (made if new), trained (as
    far as the registry knows) by ``submitted_by``'s job ``job_id``."""
    from privet.auth.identity import Identity
    from privet.authorization import principal_ref
    from privet.db import session_scope
    from privet.models import service

    who = Identity(
        principal_id=submitted_by, kind="user", name="", bindings=frozenset(), method="api_key"
    )
    with session_scope(runtime.engine) as session:
        return service.register_version(
            session,
            runtime=runtime,
            reg=service.Registration(
                project_id=project,
                model_name=model_name,
                job_id=job_id,
                submitted_by=principal_ref(who),
                base_model="tiny",
                base_model_sha256="0" * 64,
                label_names=["no", "yes"],
                purposes=["credit_scoring"],
                dataset_versions=[],
                private=True,
                privacy={"epsilon": 3.0, "delta": 1e-5},
                metrics={"accuracy": 0.81, "macro_f1": 0.79},
                training={"max_length": 64},
                weights=b"registered for a console test",
                policy_version=None,
            ),
        )
