"""A data steward tightens the ε ceiling of a data category in a .cedar file; after a reload
the API refuses what it allowed before — no code change (issue 5)."""

from __future__ import annotations

import shutil

from privet.policy import PolicyEngine, default_policy_dir
from tests.jobs.conftest import submit, upload_version


def test_tightening_a_category_ceiling_changes_what_the_api_allows(  # type: ignore[no-untyped-def]
    client, admin, project, engineer, runtime, tmp_path
) -> None:
    policy_dir = tmp_path / "policies"
    shutil.copytree(default_policy_dir(), policy_dir)
    runtime.authorizer.engine = PolicyEngine.load(policy_dir)
    version = upload_version(client, admin, project, data_categories=["financial"])
    allowed = submit(client, engineer, project, version["id"], target_epsilon=2.5)
    assert allowed.status_code in (201, 202), allowed.text

    ceilings = policy_dir / "privacy_ceilings.cedar"
    text = ceilings.read_text()
    assert (
        'categories.contains("financial") &&\n  context has epsilon &&\n  context.epsilon'
        '.greaterThan(decimal("3.0"))' in text
    )
    ceilings.write_text(
        text.replace('greaterThan(decimal("3.0"))', 'greaterThan(decimal("2.0"))', 1)
    )
    reloaded = client.post("/v1/policies:reload", headers=admin.headers)
    assert reloaded.status_code == 200 and reloaded.json()["changed"] is True

    refused = submit(client, engineer, project, version["id"], target_epsilon=2.5)
    assert refused.status_code == 403, refused.text
    assert "data.epsilon-ceiling.financial" in refused.text
    still_fine = submit(client, engineer, project, version["id"], target_epsilon=1.5)
    assert still_fine.status_code in (201, 202), still_fine.text
