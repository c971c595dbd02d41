"""The engine on the shipped policies: ids, version hash, decisions, fail-closed, reload."""

from __future__ import annotations

import hashlib
import json
import re
import threading
from decimal import Decimal
from pathlib import Path

import pytest

from privet.policy import (
    Action,
    EntityRef,
    PolicyEngine,
    PolicyLoadError,
    PolicyRequestError,
    build_request,
    decimal_down,
    decimal_up,
)

from .helpers import MV_ATTRS, model_version_request, replace_in, submit_request


@pytest.fixture(scope="module")
def engine(shipped_dir: Path) -> PolicyEngine:
    return PolicyEngine.load(shipped_dir)


def submit(engine: PolicyEngine, *, epsilon: float, categories: tuple[str, ...] = ("financial",)):
    return engine.decide(**submit_request(epsilon=epsilon, categories=categories))


def test_every_policy_has_a_unique_id_and_location(engine: PolicyEngine) -> None:
    info = engine.info()
    ids = [p.id for p in info.policies]
    assert len(ids) == len(set(ids))
    assert {"role.admin", "role.data_steward", "role.ml_engineer", "role.approver"} <= set(ids)
    assert {"role.auditor", "role.predictor", "model.segregation-of-duties"} <= set(ids)
    admin = next(p for p in info.policies if p.id == "role.admin")
    assert (admin.file, admin.effect) == ("role_admin.cedar", "permit")
    assert (
        (Path(info.directory) / admin.file)
        .read_text()
        .splitlines()[admin.line - 1]
        .startswith('@id("role.admin")')
    )
    assert "schema.cedarschema" in info.files


def test_version_is_sha256_over_sorted_name_content_pairs(engine: PolicyEngine, shipped_dir: Path):
    files = sorted(
        [p for p in shipped_dir.iterdir() if p.suffix == ".cedar"]
        + [shipped_dir / "schema.cedarschema"],
        key=lambda p: p.name,
    )
    digest = hashlib.sha256()
    for p in files:
        name, body = p.name.encode(), p.read_bytes()
        digest.update(len(name).to_bytes(4, "big") + name + len(body).to_bytes(8, "big") + body)
    assert engine.version == "sha256:" + digest.hexdigest()


def test_version_ignores_test_cases_but_not_policies(policy_copy: Path) -> None:
    before = PolicyEngine.load(policy_copy).version
    (policy_copy / "tests" / "extra.json").write_text('{"cases": []}')
    assert PolicyEngine.load(policy_copy).version == before
    replace_in(policy_copy / "common.cedar", "// Rules", "// The rules")
    assert PolicyEngine.load(policy_copy).version != before


def test_schema_actions_match_the_action_enum(shipped_dir: Path) -> None:
    schema = (shipped_dir / "schema.cedarschema").read_text()
    declared = set(re.findall(r'^action "([^"]+)"', schema, flags=re.M))
    assert declared == {a.value for a in Action}
    for name in declared:
        assert re.fullmatch(r"[a-z_]+(\.[a-z_]+){1,2}", name), name


def test_every_action_has_policy_test_cases(shipped_dir: Path) -> None:
    covered = {
        case["action"]
        for path in (shipped_dir / "tests").glob("*.json")
        for case in json.loads(path.read_text())["cases"]
    }
    assert {a.value for a in Action} <= covered


def test_allow_carries_the_permit_ids(engine: PolicyEngine) -> None:
    decision = engine.decide(
        **model_version_request(
            principal_type="User", principal_id="alice", roles=["predictor", "approver"]
        )
    )
    assert decision.allowed and decision.outcome == "allow" and decision.reason == "permit"
    assert decision.policy_ids == ("role.predictor",)
    assert decision.errors == ()
    assert decision.policy_version == engine.version
    assert decision.principal == 'User::"alice"' and decision.resource == 'ModelVersion::"mv1"'


def test_forbid_carries_the_forbid_ids(engine: PolicyEngine) -> None:
    decision = engine.decide(
        **model_version_request(attributes={**MV_ATTRS, "state": "retired"}, purpose="marketing")
    )
    assert not decision.allowed and decision.reason == "forbid"
    assert decision.policy_ids == (
        "data.purpose-limitation.prediction",
        "model.only-approved-versions-serve",
    )


def test_no_permit_is_a_deny_by_default(engine: PolicyEngine) -> None:
    decision = engine.decide(
        principal_type="User",
        principal_id="mallory",
        action=Action.DATASET_EXPORT,
        resource_type="Dataset",
        resource_id="d1",
        project_id="p1",
        roles=["predictor"],
    )
    assert not decision.allowed
    assert decision.policy_ids == () and decision.reason == "default-deny"


def test_missing_fact_fails_closed(engine: PolicyEngine) -> None:
    # Without the purpose a forbid could not be evaluated: the request is denied, not allowed.
    decision = engine.decide(
        **model_version_request(
            principal_type="User", principal_id="alice", roles=["admin"], purpose=None
        )
    )
    assert not decision.allowed and decision.reason == "error"
    assert any("purpose" in e for e in decision.errors)


def test_missing_resource_attribute_fails_closed(engine: PolicyEngine) -> None:
    attrs = {k: v for k, v in MV_ATTRS.items() if k != "submitted_by"}
    decision = engine.decide(
        **model_version_request(
            principal_type="User",
            principal_id="alice",
            action=Action.MODEL_VERSION_APPROVE,
            roles=["approver"],
            attributes=attrs,
            purpose=None,
        )
    )
    assert not decision.allowed and decision.errors


def test_unknown_action_is_denied(engine: PolicyEngine) -> None:
    decision = engine.decide(
        principal_type="User",
        principal_id="root",
        action="dataset.destroy_everything",
        resource_type="Project",
        resource_id="p1",
        project_id="p1",
        roles=["admin"],
    )
    assert not decision.allowed and decision.errors


def test_authorize_with_explicit_entities(engine: PolicyEngine) -> None:
    from privet.policy import Entity

    decision = engine.authorize(
        principal=EntityRef("User", "carol"),
        action="audit.events.read",
        resource=EntityRef("AuditLog", "ledger"),
        context={"roles": {"auditor"}, "grants": set()},
        entities=[Entity(EntityRef("User", "carol"), {"id": "carol", "ref": "User:carol"})],
    )
    assert decision.allowed and decision.policy_ids == ("role.auditor",)


def test_decimal_rounding_never_lets_a_job_through(engine: PolicyEngine) -> None:
    assert decimal_up(3.00001) == Decimal("3.0001")
    assert decimal_down(2.99999) == Decimal("2.9999")
    assert submit(engine, epsilon=3.0).allowed
    tiny_over = submit(engine, epsilon=3.00001)
    assert tiny_over.policy_ids == ("data.epsilon-ceiling.financial",)


@pytest.mark.parametrize(
    ("action", "context"),
    [("training_job.submit", {"epsilon": 3.00001}), ("project.read", {"when": object()})],
    ids=["too-precise-decimal", "not-a-cedar-value"],
)
def test_too_precise_decimals_are_refused(action: str, context: dict[str, object]) -> None:
    with pytest.raises(PolicyRequestError):
        build_request(
            principal_type="User",
            principal_id="a",
            action=action,
            resource_type="Project",
            resource_id="p1",
            context=context,
        )


def test_tightening_a_ceiling_changes_the_decision_after_reload(policy_copy: Path) -> None:
    engine = PolicyEngine.load(policy_copy)
    assert submit(engine, epsilon=2.5).allowed
    replace_in(
        policy_copy / "privacy_ceilings.cedar",
        'categories.contains("financial") &&\n  context has epsilon &&\n'
        '  context.epsilon.greaterThan(decimal("3.0"))',
        'categories.contains("financial") &&\n  context has epsilon &&\n'
        '  context.epsilon.greaterThan(decimal("2.0"))',
    )
    assert submit(engine, epsilon=2.5).allowed  # nothing changes until reload
    old = engine.version
    result = engine.reload()
    assert result.changed and result.old_version == old and result.new_version == engine.version
    assert "data.epsilon-ceiling.financial" in result.policy_ids
    denied = submit(engine, epsilon=2.5)
    assert not denied.allowed
    assert denied.policy_ids == ("data.epsilon-ceiling.financial",)
    assert denied.policy_version == result.new_version
    # Health is untouched by the edit.
    assert submit(engine, epsilon=2.5, categories=("health",)).allowed


def test_reload_without_change_reports_unchanged(policy_copy: Path) -> None:
    engine = PolicyEngine.load(policy_copy)
    result = engine.reload()
    assert not result.changed and result.old_version == result.new_version


def test_failed_reload_keeps_the_active_set(policy_copy: Path) -> None:
    engine = PolicyEngine.load(policy_copy)
    version = engine.version
    (policy_copy / "broken.cedar").write_text('@id("x")\npermit (principal, action, resource\n')
    with pytest.raises(PolicyLoadError) as info:
        engine.reload()
    assert "broken.cedar" in str(info.value)
    assert engine.version == version
    assert submit(engine, epsilon=2.0).allowed


def test_reload_is_atomic_under_concurrent_decisions(policy_copy: Path) -> None:
    engine = PolicyEngine.load(policy_copy)
    ceilings = policy_copy / "privacy_ceilings.cedar"
    original = ceilings.read_text()
    tightened = original.replace('greaterThan(decimal("3.0"))', 'greaterThan(decimal("2.0"))')
    versions = {engine.version}
    problems: list[str] = []
    stop = threading.Event()

    def decide_forever() -> None:
        while not stop.is_set():
            d = submit(engine, epsilon=2.5)
            if d.errors or d.policy_version not in versions:
                problems.append(repr(d))

    threads = [threading.Thread(target=decide_forever) for _ in range(2)]
    ceilings.write_text(tightened)
    versions.add(PolicyEngine.load(policy_copy).version)
    ceilings.write_text(original)
    for t in threads:
        t.start()
    try:
        for i in range(6):
            ceilings.write_text(tightened if i % 2 == 0 else original)
            engine.reload()
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert problems == []
