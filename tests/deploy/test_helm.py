"""deploy/helm/privet: values and templates agree, and, where the helm binary is installed
(sh deploy/tools/install-validators.sh), the rendered manifests keep the chart's promises:
probes, Pod Security "restricted", NetworkPolicies, Secret references by name, and env and
args that the real settings and CLI know."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

from tests.deploy._support import (
    CHART,
    DEPLOY,
    check_cli_args,
    parse_dockerfile,
    setting_for,
    tool,
    unknown_settings,
)

TEMPLATES = CHART / "templates"
VALUES = yaml.safe_load((CHART / "values.yaml").read_text("utf-8"))
#: Volume types the Pod Security "restricted" standard allows.
RESTRICTED_VOLUMES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
}
SECRET_VALUE = re.compile(r"(postgres(ql)?(\+\w+)?://[^@/\s]*:[^@/\s]*@|BEGIN .*PRIVATE KEY)")


def _image_entrypoint() -> list[str]:
    _, stages = parse_dockerfile((DEPLOY / "Dockerfile").read_text("utf-8"))
    (entrypoint,) = stages[-1].all("ENTRYPOINT")
    argv = entrypoint.exec_form()
    assert argv is not None
    return argv


# --- without helm ------------------------------------------------------------------------


def _values_has(path: list[str]) -> bool:
    node: Any = VALUES
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return False
        node = node[key]
    return True


def test_every_values_reference_exists_in_values_yaml() -> None:
    missing: list[str] = []
    for template in sorted(TEMPLATES.glob("*")):
        text = template.read_text("utf-8")
        aliases = dict(re.findall(r"\$(\w+)\s*:=\s*\.Values((?:\.\w+)+)", text))
        refs = [m.split(".")[1:] for m in re.findall(r"\.Values((?:\.\w+)+)", text)]
        for var, rest in re.findall(r"\$(\w+)((?:\.\w+)+)", text):
            if var in aliases:
                refs.append((aliases[var] + rest).split(".")[1:])
        missing += [f"{template.name}: .Values.{'.'.join(r)}" for r in refs if not _values_has(r)]
    assert missing == []


def test_values_defaults() -> None:
    assert VALUES["gateway"]["readinessProbe"]["path"] == "/readyz"
    assert VALUES["gateway"]["livenessProbe"]["path"] == "/healthz"
    assert VALUES["keyProvider"]["type"] == "pkcs11"
    assert VALUES["networkPolicy"]["enabled"] is True
    assert VALUES["persistence"]["accessModes"] == ["ReadWriteMany"]
    pod, ctr = VALUES["podSecurityContext"], VALUES["containerSecurityContext"]
    assert pod["runAsNonRoot"] is True and pod["seccompProfile"] == {"type": "RuntimeDefault"}
    assert ctr["allowPrivilegeEscalation"] is False
    assert ctr["readOnlyRootFilesystem"] is True
    assert ctr["capabilities"] == {"drop": ["ALL"]}
    assert VALUES["namespace"]["podSecurity"]["enforce"] == "restricted"
    assert unknown_settings(list(VALUES["settings"])) == []
    # no secret material in values: only names of existing Secrets
    text = (CHART / "values.yaml").read_text("utf-8")
    assert not SECRET_VALUE.search(
        "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    )


def test_templates_reference_probes_policies_and_security() -> None:
    text = {p.name: p.read_text("utf-8") for p in TEMPLATES.glob("*.yaml")}
    gateway = text["gateway-deployment.yaml"]
    for needle in ("readinessProbe", "livenessProbe", "privet.containerSecurityContext"):
        assert needle in gateway
    assert "kind: NetworkPolicy" in text["networkpolicy.yaml"]
    assert "pod-security.kubernetes.io/enforce" in text["namespace.yaml"]
    assert "kind: Secret\n" not in "".join(text.values()), "Secrets are referenced, not made"


def test_worker_pods_mount_blobs_and_the_master_key_only() -> None:
    """Least secrets per process: a worker pod mounts the claim's blobs/ and secrets/kek/
    (read-only) by subPath, never the whole PRIVET_HOME with the pepper and signing key."""
    worker = (TEMPLATES / "worker-deployment.yaml").read_text("utf-8")
    helpers = (TEMPLATES / "_helpers.tpl").read_text("utf-8")
    assert 'include "privet.volumeMounts"' not in worker
    assert 'include "privet.workerVolumeMounts"' in worker
    mounts = helpers.split('define "privet.workerVolumeMounts"')[1].split('define "')[0]
    assert "subPath: blobs" in mounts and "subPath: secrets/kek" in mounts
    assert "- name: worker-home\n  mountPath: /var/lib/privet\n" in mounts
    assert "- name: home\n  mountPath: /var/lib/privet\n" not in mounts
    assert "PRIVET_TRAINING_TRUSTED_NETWORK" in worker
    assert VALUES["ray"]["trustedNetwork"] is False


def test_app_grants_sql_is_shared_with_compose() -> None:
    compose = (DEPLOY / "compose.yaml").read_text("utf-8")
    assert "./helm/privet/files/app-grants.sql:" in compose
    assert '.Files.Get "files/app-grants.sql"' in (TEMPLATES / "migrate-job.yaml").read_text()
    # the Job runs it through SQLAlchemy/psycopg, which would take a percent sign for a
    # placeholder
    assert "%" not in (CHART / "files" / "app-grants.sql").read_text("utf-8")


# --- with helm -----------------------------------------------------------------------------

HELM = tool("helm")
needs_helm = pytest.mark.skipif(
    HELM is None, reason="helm is not installed (sh deploy/tools/install-validators.sh)"
)

VARIANT_SETS = [
    "ray.address=ray-head.ray.svc:6379",
    "worker.gpus=1",
    "image.variant=cuda",
    "oidc.issuer=https://id.example.com",
    "oidc.audience=privet",
    "oidc.jwks=https://id.example.com/.well-known/jwks.json",
    "networkPolicy.postgres.cidr=10.20.0.0/24",
    "namespace.create=true",
    "policies.configMap=reviewed-policies",
    "settings.PRIVET_API_KEY_TTL_DAYS=30",
    "settings.PRIVET_JOBS_HEARTBEAT_TIMEOUT_S=120",
]


def helm(*args: str) -> subprocess.CompletedProcess[str]:
    assert HELM is not None
    return subprocess.run([HELM, *args], capture_output=True, text=True, timeout=120, check=False)


def render(*sets: str) -> list[dict[str, Any]]:
    argv = ["template", "rel", str(CHART), "--namespace", "privet"]
    for s in sets:
        argv += ["--set", s]
    result = helm(*argv)
    assert result.returncode == 0, result.stderr
    return [d for d in yaml.safe_load_all(result.stdout) if d]


@pytest.fixture(scope="module")
def default_docs() -> list[dict[str, Any]]:
    return render()


@pytest.fixture(scope="module")
def variant_docs() -> list[dict[str, Any]]:
    return render(*VARIANT_SETS)


def by_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def pod_specs(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {
        f"{d['kind']}/{d['metadata']['name']}": d["spec"]["template"]["spec"]
        for d in docs
        if d["kind"] in ("Deployment", "Job")
    }


@needs_helm
def test_helm_lint_strict() -> None:
    result = helm("lint", "--strict", str(CHART))
    assert result.returncode == 0, result.stdout + result.stderr


@needs_helm
def test_rendered_objects(default_docs: list[dict[str, Any]]) -> None:
    kinds = sorted(d["kind"] for d in default_docs)
    assert kinds == sorted(
        [
            "ConfigMap",
            "Deployment",
            "Deployment",
            "Job",
            "NetworkPolicy",
            "NetworkPolicy",
            "NetworkPolicy",
            "PersistentVolumeClaim",
            "PodDisruptionBudget",
            "Service",
            "ServiceAccount",
        ]
    )
    assert "Secret" not in kinds and "Namespace" not in kinds


@needs_helm
@pytest.mark.parametrize("which", ["default_docs", "variant_docs"])
def test_pods_meet_restricted_pod_security(which: str, request: pytest.FixtureRequest) -> None:
    docs = request.getfixturevalue(which)
    for name, spec in pod_specs(docs).items():
        pod = spec["securityContext"]
        assert pod["runAsNonRoot"] is True, name
        assert pod["seccompProfile"]["type"] == "RuntimeDefault", name
        assert spec["automountServiceAccountToken"] is False, name
        for key in ("hostNetwork", "hostPID", "hostIPC"):
            assert not spec.get(key), name
        for volume in spec["volumes"]:
            types = set(volume) - {"name"}
            assert types <= RESTRICTED_VOLUMES, f"{name}: volume {volume}"
        volumes = {v["name"]: v for v in spec["volumes"]}
        for ctr in [*spec.get("initContainers", []), *spec["containers"]]:
            sc = ctr["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False, name
            assert sc["readOnlyRootFilesystem"] is True, name
            assert sc["capabilities"]["drop"] == ["ALL"], name
            assert not sc.get("capabilities", {}).get("add"), name
            assert sc["runAsNonRoot"] is True and sc["runAsUser"] >= 1000, name
            assert sc["seccompProfile"]["type"] == "RuntimeDefault", name
            assert not sc.get("privileged"), name
            mounts = {m["mountPath"]: m for m in ctr["volumeMounts"]}
            assert "emptyDir" in volumes[mounts["/tmp"]["name"]], f"{name}: writable /tmp"
            for m in ctr["volumeMounts"]:
                assert m["name"] in volumes, f"{name}: mount of a missing volume {m['name']}"


@needs_helm
def test_namespace_is_labelled_restricted(variant_docs: list[dict[str, Any]]) -> None:
    (ns,) = by_kind(variant_docs, "Namespace").values()
    assert ns["metadata"]["name"] == "privet"
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


def _container(docs: list[dict[str, Any]], deployment: str) -> dict[str, Any]:
    spec = by_kind(docs, "Deployment")[f"rel-privet-{deployment}"]["spec"]["template"]["spec"]
    (ctr,) = spec["containers"]
    return ctr


@needs_helm
def test_gateway_probes_port_and_service(default_docs: list[dict[str, Any]]) -> None:
    gw = _container(default_docs, "gateway")
    assert gw["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert gw["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert gw["ports"] == [{"name": "http", "containerPort": 8000, "protocol": "TCP"}]
    (svc,) = by_kind(default_docs, "Service").values()
    assert svc["spec"]["selector"]["app.kubernetes.io/component"] == "gateway"
    assert svc["spec"]["ports"][0]["targetPort"] == "http"
    (pvc,) = by_kind(default_docs, "PersistentVolumeClaim").values()
    assert pvc["spec"]["accessModes"] == ["ReadWriteMany"]
    mounts = {m["mountPath"]: m["name"] for m in gw["volumeMounts"]}
    assert mounts["/var/lib/privet"] == "home"


@needs_helm
@pytest.mark.parametrize("which", ["default_docs", "variant_docs"])
def test_args_exist_in_the_cli(which: str, request: pytest.FixtureRequest) -> None:
    docs = request.getfixturevalue(which)
    entrypoint = _image_entrypoint()
    assert entrypoint[-1] == "privet"
    seen = set()
    for name, spec in pod_specs(docs).items():
        for ctr in [*spec.get("initContainers", []), *spec["containers"]]:
            if "command" in ctr:  # replaces the entrypoint: must still go through it
                assert ctr["command"][0] == entrypoint[0], name
                continue
            assert check_cli_args(ctr["args"]) == [], f"{name}: {ctr['args']}"
            seen.add(ctr["args"][0])
    assert seen == {"serve", "worker", "db"}
    gw = _container(docs, "gateway")["args"]
    assert gw[0] == "serve" and "--no-worker" in gw and gw[gw.index("--host") + 1] == "0.0.0.0"


@needs_helm
@pytest.mark.parametrize("which", ["default_docs", "variant_docs"])
def test_env_is_real_settings_and_secrets_are_files(
    which: str, request: pytest.FixtureRequest
) -> None:
    docs = request.getfixturevalue(which)
    for name, spec in pod_specs(docs).items():
        volumes = {v["name"]: v for v in spec["volumes"]}
        for ctr in [*spec.get("initContainers", []), *spec["containers"]]:
            env = {e["name"]: e for e in ctr.get("env", [])}
            assert unknown_settings(list(env)) == [], name
            for key in ("PRIVET_DATABASE_URL", "PRIVET_PKCS11_PIN"):
                assert key not in env, f"{name}: {key} must come from a file"
            for key, entry in env.items():
                assert not SECRET_VALUE.search(str(entry.get("value", ""))), f"{name}: {key}"
                if setting_for(key) != key or key == "RAY_AUTH_TOKEN_PATH":
                    path = PurePosixPath(entry["value"])
                    mount = next(
                        m
                        for m in ctr["volumeMounts"]
                        if path.parent == PurePosixPath(m["mountPath"])
                    )
                    secret = volumes[mount["name"]]["secret"]
                    assert [i["path"] for i in secret["items"]] == [path.name], key
                    assert secret["defaultMode"] == 0o440


@needs_helm
def test_secret_references_by_name(variant_docs: list[dict[str, Any]]) -> None:
    def secret_names(docs: list[dict[str, Any]]) -> set[str]:
        names: set[str] = set()
        for spec in pod_specs(docs).values():
            names |= {v["secret"]["secretName"] for v in spec["volumes"] if "secret" in v}
        return names

    database = {
        VALUES["database"]["existingSecret"],
        VALUES["database"]["migrations"]["existingSecret"],
    }
    hsm = VALUES["keyProvider"]["pkcs11"]["pinSecret"]["name"]
    assert secret_names(variant_docs) == database | {hsm, VALUES["ray"]["authTokenSecret"]["name"]}
    # the local provider (evaluation only) needs no HSM PIN and sets no PKCS#11 variable
    local = render("keyProvider.type=local")
    assert secret_names(local) == database
    gw = _container(local, "gateway")
    env = {e["name"]: e.get("value") for e in gw["env"]}
    assert env["PRIVET_KEY_PROVIDER"] == "local"
    assert not [k for k in env if k.startswith("PRIVET_PKCS11_")]


@needs_helm
def test_migration_job_runs_as_owner_only(default_docs: list[dict[str, Any]]) -> None:
    (job,) = by_kind(default_docs, "Job").values()
    hooks = job["metadata"]["annotations"]["helm.sh/hook"]
    assert hooks == "pre-install,pre-upgrade"
    spec = job["spec"]["template"]["spec"]
    (migrate,) = spec["initContainers"]
    assert migrate["args"] == ["db", "upgrade"]
    owner = VALUES["database"]["migrations"]["existingSecret"]
    for name, other in pod_specs(default_docs).items():
        if name.startswith("Deployment/"):
            secrets = {v["secret"]["secretName"] for v in other["volumes"] if "secret" in v}
            assert owner not in secrets, f"{name} must not see the owner's credentials"
    (cm,) = by_kind(default_docs, "ConfigMap").values()
    sql = (CHART / "files" / "app-grants.sql").read_text("utf-8")
    assert cm["data"]["app-grants.sql"].strip() == sql.strip()


@needs_helm
def test_network_policies(default_docs: list[dict[str, Any]]) -> None:
    policies = by_kind(default_docs, "NetworkPolicy")
    gateway = policies["rel-privet-gateway"]["spec"]
    assert set(gateway["policyTypes"]) == {"Ingress", "Egress"}
    (rule,) = gateway["ingress"]
    assert rule["ports"] == [{"protocol": "TCP", "port": 8000}]
    (source,) = rule["from"]
    assert (
        source["namespaceSelector"]
        == VALUES["networkPolicy"]["gatewayIngressFrom"]["namespaceSelector"]
    )
    worker = policies["rel-privet-worker"]["spec"]
    assert set(worker["policyTypes"]) == {"Ingress", "Egress"}
    assert worker["ingress"] == []
    for name in ("rel-privet-gateway", "rel-privet-worker", "rel-privet-migrate"):
        egress = policies[name]["spec"]["egress"]
        ports = [p["port"] for rule in egress for p in rule["ports"]]
        assert 5432 in ports, f"{name}: egress to PostgreSQL"
        assert set(ports) <= {5432, 53}, f"{name}: unexpected egress {ports}"


@needs_helm
def test_worker_without_gpus_leaves_the_device_to_auto(default_docs: list[dict[str, Any]]) -> None:
    env = {e["name"]: e.get("value") for e in _container(default_docs, "worker")["env"]}
    assert "PRIVET_TRAINING_DEVICE" not in env and env["PRIVET_TRAINING_PRECISION"] == "fp32"
    assert "nvidia.com/gpu" not in (
        _container(default_docs, "worker")["resources"].get("limits") or {}
    )


@needs_helm
def test_variant_values(variant_docs: list[dict[str, Any]]) -> None:
    worker = _container(variant_docs, "worker")
    env = {e["name"]: e.get("value") for e in worker["env"]}
    assert env["PRIVET_RAY_ADDRESS"] == "ray-head.ray.svc:6379"
    assert env["RAY_AUTH_MODE"] == "token"
    assert env["PRIVET_API_KEY_TTL_DAYS"] == "30"
    assert worker["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert env["PRIVET_TRAINING_DEVICE"] == "cuda"  # the GPU it holds is the one it uses
    assert env["PRIVET_TRAINING_PRECISION"] == "fp32"
    assert worker["image"].endswith("-cuda")
    policies = by_kind(variant_docs, "NetworkPolicy")
    egress = policies["rel-privet-worker"]["spec"]["egress"]
    ray_ports = {p["port"] for rule in egress for p in rule["ports"]} - {5432, 53}
    assert ray_ports == {6379, 10001}
    pg_rule = policies["rel-privet-gateway"]["spec"]["egress"][0]
    assert pg_rule["to"] == [{"ipBlock": {"cidr": "10.20.0.0/24"}}]
    gw = _container(variant_docs, "gateway")
    assert {e["name"] for e in gw["env"]} >= {"PRIVET_OIDC_ISSUER", "PRIVET_OIDC_JWKS"}
    mounts = {m["mountPath"]: m["name"] for m in gw["volumeMounts"]}
    assert mounts["/opt/privet/policies"] == "policies"


@needs_helm
@pytest.mark.parametrize(
    ("sets", "message"),
    [
        (["keyProvider.type=kms"], "keyProvider.type must be local or pkcs11"),
        (["worker.gpus=1"], "worker.gpus needs image.variant: cuda"),
        (["containerSecurityContext.readOnlyRootFilesystem=false"], "readOnlyRootFilesystem"),
        (["containerSecurityContext.allowPrivilegeEscalation=true"], "allowPrivilegeEscalation"),
        (["podSecurityContext.runAsNonRoot=false"], "runAsNonRoot"),
        (["oidc.issuer=https://id.example.com"], "oidc.audience is required"),
        (["ray.address=x:6379", "ray.authTokenSecret.name="], "ray.authTokenSecret.name"),
    ],
)
def test_unsafe_or_incomplete_values_are_refused(sets: list[str], message: str) -> None:
    argv = ["template", "rel", str(CHART)]
    for s in sets:
        argv += ["--set", s]
    result = helm(*argv)
    assert result.returncode != 0 and message in result.stderr, result.stderr


def test_chart_has_no_stray_files() -> None:
    allowed = {".helmignore", "Chart.yaml", "values.yaml"}
    for path in CHART.iterdir():
        if path.is_file():
            assert path.name in allowed, path
    assert {p.name for p in Path(CHART / "files").iterdir()} == {"app-grants.sql"}
