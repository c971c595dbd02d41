"""Every role's job from the command line, against the app: the team (members, service
accounts and their keys), the audit log over HTTP, the policy set, predictions after the
fact (review, contest, outcome, explain, the queue), and the output formats of every
listing (JSON and YAML parse to the same data; tables round numbers for people)."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from typing import Any

import yaml

from tests.cli.conftest import Run
from tests.inference.conftest import (  # noqa: F401 - fixtures
    _fast_state_ttl,
    make_version,
    tiny_base,
)


def _json(result: Any) -> Any:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _same_in_json_and_yaml(
    cli: Run, *args: str, key: str, pick: Callable[[Any], Any] = lambda data: data
) -> Any:
    """`pick`: the part that does not change between two reads (the log grows as it is read)."""
    as_json = _json(cli(*args, "--output", "json", key=key))
    as_yaml = cli(*args, "-o", "yaml", key=key)
    assert as_yaml.exit_code == 0, as_yaml.output
    assert pick(yaml.safe_load(as_yaml.stdout)) == pick(as_json), args
    default = cli(*args, key=key)  # not a terminal: JSON without asking
    assert pick(json.loads(default.stdout)) == pick(as_json), args
    table = cli(*args, "-o", "table", key=key)
    assert table.exit_code == 0 and table.stdout.strip(), (args, table.output)
    return as_json


def test_team_audit_and_policy_commands(cli: Run, admin: Any) -> None:
    key = admin.key
    project = cli("projects", "create", "retail-credit", "-q", key=key).stdout.strip()
    assert project.startswith("prj_")
    projects = _same_in_json_and_yaml(cli, "projects", "list", key=key)
    assert [p["id"] for p in projects] == [project]
    assert _json(cli("projects", "show", project, "-o", "json", key=key))["name"] == "retail-credit"
    changed = _json(
        cli("projects", "set-settings", project, "--controller", "Bank AG", "--recipient",
            "credit bureau", "-o", "json", key=key)
    )  # fmt: skip
    assert changed["controller"] == "Bank AG" and changed["recipients"] == ["credit bureau"]
    kept = _json(cli("projects", "settings", project, "-o", "json", key=key))
    assert kept["controller"] == "Bank AG"

    app = cli("members", "add", project, "--service-account", "scoring-app", "--role",
              "predictor", "-q", key=key).stdout.strip()  # fmt: skip
    both = cli("members", "add", project, "--role", "predictor", key=key)
    assert both.exit_code == 2 and "exactly one of" in both.output
    members = _same_in_json_and_yaml(cli, "members", "list", project, key=key)
    binding = next(m for m in members if m["principal_id"] == app)
    assert binding["role"] == "predictor"

    app_key = cli("api-keys", "create", "--name", "scoring", "--principal", app, "--project",
                  project, "-q", key=key).stdout.strip()  # fmt: skip
    assert re.fullmatch(r"pvt_\w+_[\w-]+", app_key), app_key
    me = _json(cli("whoami", "-o", "json", key=app_key))
    assert me["principal_id"] == app and me["roles"] == [
        {"role": "predictor", "project_id": project}
    ]
    own = _same_in_json_and_yaml(cli, "api-keys", "list", key=app_key)
    assert [k["name"] for k in own] == ["scoring"] and "key" not in own[0]
    revoked = _json(cli("api-keys", "revoke", own[0]["id"], "-o", "json", key=key))
    assert revoked["revoked_at"] is not None
    refused = cli("whoami", key=app_key)
    assert refused.exit_code == 1 and "revoked" in refused.output
    assert cli("members", "remove", project, binding["id"], key=key).exit_code == 0
    assert app not in {m["principal_id"] for m in _json(cli("members", "list", project, key=key))}

    page = _same_in_json_and_yaml(
        cli, "audit", "events", "--project", project, key=key, pick=lambda d: d["items"][:8]
    )
    types = [e["event"]["type"] for e in page["items"]]
    assert {"project.created", "api_key.revoked"} <= set(types), types
    small = _json(cli("audit", "events", "--limit", "2", key=key))
    assert len(small["items"]) == 2 and small["next_start"] == 2
    everything = _json(cli("audit", "events", "--limit", "2", "--all", key=key))
    assert len(everything["items"]) == everything["tree_size"] > 2
    index = page["items"][-1]["index"]
    deadline = time.monotonic() + 60  # the sequencer integrates appended events shortly after
    while (shown := cli("audit", "proof", str(index), key=key)).exit_code != 0:
        assert "is not in the tree" in shown.output and time.monotonic() < deadline, shown.output
        time.sleep(0.2)
    proof = _json(shown)
    assert proof["index"] == index and proof["leaf_hash"] == page["items"][-1]["leaf_hash"]
    consistency = _json(cli("audit", "consistency", "1", key=key))
    assert consistency["size1"] == 1 and consistency["size2"] >= index + 1
    note = cli("audit", "checkpoint", "--remote", key=key)
    assert note.exit_code == 0 and "— " in note.stdout  # a signed C2SP note
    verified = _json(cli("audit", "verify", "--remote", "--json", key=key))
    assert verified["ok"] is True

    policies = _same_in_json_and_yaml(cli, "policy", "show", key=key)
    assert "any.own-identity" in {p["id"] for p in policies["policies"]}
    assert _json(cli("policy", "reload", key=key))["changed"] is False

    for listing in (("datasets", "list", "--project", project), ("train", "list", project),
                    ("models", "list", project), ("dsr", "list"),
                    ("predictions", "queue", project)):  # fmt: skip
        _same_in_json_and_yaml(cli, *listing, key=key)


def test_prediction_commands(cli: Run, admin: Any, make_caller: Any, make_version: Any) -> None:  # noqa: F811
    project = cli("projects", "create", "credit", "-q", key=admin.key).stdout.strip()
    make_version(project)
    predictor = make_caller("predictor", project, name="scoring-app")
    approver = make_caller("approver", project, name="risk-officer")
    text = "late payment on the loan"
    made = cli("predict", "--project", project, "--model", "risk", "--purpose",
               "credit_scoring", "--json", text, key=predictor.key)  # fmt: skip
    assert made.exit_code == 0, made.output
    prediction = json.loads(made.stdout.splitlines()[0])
    pid, label = prediction["prediction_id"], prediction["label"]
    case = cli("predictions", "case", project, pid, key=approver.key)
    if prediction["decision"] == "final":  # no review case: no text kept
        assert case.exit_code == 1 and "kept no text" in case.output
    else:  # referred or held: the reviewer reads the case's text
        assert _json(case)["text"] == text
        shown = cli("predictions", "case", project, pid, "-o", "table", key=approver.key)
        assert shown.exit_code == 0 and text in shown.stdout, shown.output
        refused = cli("predictions", "case", project, pid, key=predictor.key)
        assert refused.exit_code == 1 and text not in refused.output

    contested = _json(
        cli("predictions", "contest", project, pid, "--reason", "not me", key=approver.key)
    )
    assert contested["kind"] == "contest" and contested["decision"] == "pending"
    other = "reject" if label != "reject" else "accept"
    reviewed = _json(
        cli("predictions", "review", project, pid, "--overturn-to", other, "--reason", "checked",
            key=approver.key)
    )  # fmt: skip
    assert reviewed["decision"] == "overturned" and reviewed["label"] == other
    if prediction["decision"] != "final":  # the review closed the case: text shredded
        second = make_caller("approver", project, name="second-officer")  # the decider
        gone = cli("predictions", "case", project, pid, key=second.key)  # may not any more
        assert gone.exit_code == 1 and "a review closed the case" in gone.output
    listed = _same_in_json_and_yaml(cli, "predictions", "reviews", project, pid, key=approver.key)
    assert [(r["kind"], r["reason"]) for r in listed] == [
        ("contest", "not me"),
        ("review", "checked"),
    ]
    outcome = _json(cli("predictions", "outcome", project, pid, other, key=predictor.key))
    assert outcome["label"] == other and outcome["correct"] is False

    exact = _json(cli("predictions", "explain", project, pid, text, key=approver.key))
    assert exact["prediction_id"] == pid and exact["tokens"]
    shown = cli("predictions", "explain", project, pid, text, "-o", "table", key=approver.key)
    assert shown.exit_code == 0, shown.output
    top = max(exact["tokens"], key=lambda t: abs(t["attribution"]))
    assert f"{top['attribution']:.4g}" in shown.stdout  # rounded for people
    if len(repr(top["attribution"])) > 8:
        assert repr(top["attribution"]) not in shown.stdout  # exact only in JSON
    wrong = cli("predictions", "explain", project, pid, "another text", key=approver.key)
    assert wrong.exit_code == 1 and "digest" in wrong.output

    queue = _same_in_json_and_yaml(cli, "predictions", "queue", project, "--status", "all",
                                   key=approver.key)  # fmt: skip
    assert "items" in queue and "open" in queue


def test_models_resolve_erasure_flags(
    cli: Run,
    admin: Any,
    runtime: Any,
    make_version: Any,  # noqa: F811
) -> None:
    from privet.db import session_scope
    from privet.models import service as models_service
    from privet.models.tables import FlagSource

    project = cli("projects", "create", "erased", "-q", key=admin.key).stdout.strip()
    version = make_version(project)  # DP-trained, ε = 3
    with session_scope(runtime.engine) as session:
        models_service.flag_erasure(
            session,
            version=session.merge(version),
            source=FlagSource.erasure_request,
            dataset_version_ids=["dsv_x"],
            remedy="keep_with_dp",
            remedy_rule="erasure.keep-dp",
            justification="test",
            actor=admin.principal_id,
        )
    done = _json(cli("models", "resolve-erasure-flags", project, version.id, "-o", "json",
                     key=admin.key))  # fmt: skip
    assert done["model_version_id"] == version.id
    assert [f["resolution"] for f in done["erasure_flags"]] == ["keep_with_dp"]
    again = cli("models", "resolve-erasure-flags", project, version.id, key=admin.key)
    assert again.exit_code == 1 and "no open erasure flag" in again.output
