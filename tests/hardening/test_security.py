"""The gateway as an attacker sees it: every route without credentials, with another
project's credentials, with a revoked key, with forged JWTs; path traversal in upload file
names; oversized and deeply nested JSON; CSV formula injection in exported reports; header
injection; the API key comparison; and the secrets never leaving $PRIVET_HOME/secrets.

In-process (ASGI) on SQLite: the attacks are about the gateway's logic, which is the same on
both backends (tests/api covers PostgreSQL for the same code paths)."""

from __future__ import annotations

import csv
import inspect
import io
import json
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.conftest import Caller, token_claims, trust_oidc_key
from tests.datasets.conftest import declarations, make_rows, to_csv
from tests.hardening.secrets_scan import leaks


@pytest.fixture
def db_url(sqlite_template: Path, tmp_path: Path) -> str:
    """SQLite only (overrides the suite's SQLite + PostgreSQL parametrisation)."""
    import shutil

    shutil.copyfile(sqlite_template, tmp_path / "privet.db")
    return f"sqlite:///{tmp_path / 'privet.db'}"


PUBLIC = {"/healthz", "/readyz", "/metrics", "/v1/auth/config"}
ROLES = ("admin", "data_steward", "ml_engineer", "approver", "auditor", "predictor")
ISSUER, AUDIENCE = "https://idp.attack.test", "privet-api"


@dataclass
class World:
    client: Any
    app: Any
    runtime: Any
    admin: Caller
    victim: str  # project A
    attacker_project: str  # project B
    attackers: dict[str, Caller]  # role in project B → caller
    victim_dataset: str


def _routes(app: Any) -> list[tuple[str, str]]:
    from privet.api.deps import iter_api_routes

    found = []
    for route in iter_api_routes(app.routes):
        if route.path in PUBLIC:
            continue
        for method in sorted(route.methods - {"HEAD", "OPTIONS"}):
            found.append((method, route.path))
    return found


def _fill(path: str, world: World, project: str | None = None) -> str:
    values = {
        "project_id": project or world.victim,
        "dataset_id": world.victim_dataset,
    }
    return re.sub(r"\{([^}]+)\}", lambda m: values.get(m.group(1), "x1"), path)


def _upload(client: Any, caller: Caller, project: str, name: str = "loans", **kw: Any) -> Any:
    return client.post(
        f"/v1/projects/{project}/datasets",
        headers=caller.headers,
        files={
            "declarations": (None, json.dumps(declarations(name=name)), "application/json"),
            "file": (kw.get("filename", "loans.csv"), to_csv(make_rows(30)), "text/csv"),
        },
    )


@pytest.fixture
def world(app, client, admin, make_caller, runtime) -> World:  # type: ignore[no-untyped-def]
    victim = client.post("/v1/projects", json={"name": "victim"}, headers=admin.headers)
    other = client.post("/v1/projects", json={"name": "attacker"}, headers=admin.headers)
    assert victim.status_code == other.status_code == 201
    uploaded = _upload(client, admin, victim.json()["id"])
    assert uploaded.status_code == 201, uploaded.text
    attackers = {role: make_caller(role, other.json()["id"], name=f"eve-{role}") for role in ROLES}
    return World(
        client,
        app,
        runtime,
        admin,
        victim.json()["id"],
        other.json()["id"],
        attackers,
        uploaded.json()["dataset_id"],
    )


def _assert_problem(response: Any, status: int | tuple[int, ...]) -> dict[str, Any]:
    statuses = (status,) if isinstance(status, int) else status
    assert response.status_code in statuses, (response.status_code, response.text[:300])
    assert response.headers["content-type"].startswith("application/problem+json")
    body = dict(response.json())
    assert body["status"] == response.status_code and body["type"].startswith("https://")
    return body


def _call(world: World, method: str, url: str, headers: dict[str, str]) -> Any:
    kwargs: dict[str, Any] = {"headers": headers}
    if method in ("POST", "PUT", "PATCH"):
        kwargs["json"] = {}
    return world.client.request(method, url, **kwargs)


# --- authentication ---------------------------------------------------------------------


def test_every_route_refuses_a_caller_without_credentials(world: World) -> None:
    routes = _routes(world.app)
    assert len(routes) > 40
    for method, path in routes:
        response = _call(world, method, _fill(path, world), {})
        body = _assert_problem(response, 401)
        assert "Bearer" in body["detail"], (method, path, body)
        assert response.headers.get("www-authenticate") == "Bearer"


@pytest.mark.parametrize(
    "header",
    [
        "Bearer pvt_AAAAAAAAAAAAAAAA_" + "A" * 43,  # well formed, unknown
        "Bearer pvt_garbage",
        "Basic YWRtaW46YWRtaW4=",
        "Bearer ",
        "Bearer " + "x" * 10000,
    ],
)
def test_every_route_refuses_a_bad_key(world: World, header: str) -> None:
    for method, path in _routes(world.app):
        response = _call(world, method, _fill(path, world), {"Authorization": header})
        _assert_problem(response, 401)


def test_revoked_key_is_refused_on_every_route(world: World, make_caller) -> None:  # type: ignore[no-untyped-def]
    victim = make_caller("admin", world.victim, name="soon-revoked")
    key_id = "key_" + victim.key.split("_")[1]
    assert world.client.get("/v1/projects", headers=victim.headers).status_code == 200
    revoked = world.client.delete(f"/v1/api-keys/{key_id}", headers=world.admin.headers)
    assert revoked.status_code == 200, revoked.text
    for method, path in _routes(world.app):
        response = _call(world, method, _fill(path, world), victim.headers)
        assert "revoked" in _assert_problem(response, 401)["detail"]


def _jwks_runtime(world: World, tmp_path: Path) -> rsa.RSAPrivateKey:
    key: rsa.RSAPrivateKey = trust_oidc_key(
        world.runtime, tmp_path / "jwks.json", issuer=ISSUER, audience=AUDIENCE, kid="trusted"
    )
    return key


def test_forged_jwts_are_refused_on_every_route(world: World, tmp_path: Path) -> None:
    trusted = _jwks_runtime(world, tmp_path)
    claims = token_claims(ISSUER, AUDIENCE, "mallory", privet_roles=["admin"])  # platform admin
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_pem = trusted.public_key().public_bytes(
        encoding=__import__("cryptography").hazmat.primitives.serialization.Encoding.PEM,
        format=__import__(
            "cryptography"
        ).hazmat.primitives.serialization.PublicFormat.SubjectPublicKeyInfo,
    )
    unsigned = jwt.encode(claims, key=None, algorithm="none", headers={"kid": "trusted"})
    forged = {
        "alg none": (unsigned, "'none' is not accepted"),
        "alg none, no signature part": (unsigned.rstrip("."), "malformed"),
        "unknown key, trusted kid": (
            jwt.encode(claims, stranger, algorithm="RS256", headers={"kid": "trusted"}),
            "signature",
        ),
        "unknown kid": (
            jwt.encode(claims, stranger, algorithm="RS256", headers={"kid": "evil"}),
            "unknown",
        ),
        # HS256 keyed with the trusted public key (the algorithm-confusion attack)
        "HS256 with the public key": (
            _hs256_token(claims, public_pem, kid="trusted"),
            "not accepted",
        ),
    }
    # The trusted key itself works (the refusals below are not a broken set-up).
    good = jwt.encode(claims, trusted, algorithm="RS256", headers={"kid": "trusted"})
    ok = world.client.get("/v1/projects", headers={"Authorization": f"Bearer {good}"})
    assert ok.status_code == 200, ok.text
    for name, (token, message) in forged.items():
        for method, path in _routes(world.app):
            response = _call(
                world, method, _fill(path, world), {"Authorization": f"Bearer {token}"}
            )
            body = _assert_problem(response, 401)
            assert message in body["detail"], (name, method, path, body)


def _hs256_token(claims: dict[str, Any], secret: bytes, *, kid: str) -> str:
    import base64
    import hashlib
    import hmac

    def b64(data: bytes) -> bytes:
        return base64.urlsafe_b64encode(data).rstrip(b"=")

    header = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": kid}).encode())
    payload = b64(json.dumps(claims).encode())
    signature = b64(hmac.new(secret, header + b"." + payload, hashlib.sha256).digest())
    return (header + b"." + payload + b"." + signature).decode()


def test_jwts_are_refused_when_no_issuer_is_configured(world: World) -> None:
    token = jwt.encode({"sub": "x"}, key=None, algorithm="none")
    response = world.client.get("/v1/projects", headers={"Authorization": f"Bearer {token}"})
    assert "no OIDC issuer" in _assert_problem(response, 401)["detail"]


# --- authorization across projects --------------------------------------------------------


def test_another_projects_credentials_reach_nothing(world: World) -> None:
    """Every role bound in project B, on every route naming project A: 403 or 404, never a
    success, and the body never names A's objects."""
    secrets_of_victim = (world.victim_dataset,)
    scoped = [(m, p) for m, p in _routes(world.app) if "{project_id}" in p]
    assert len(scoped) > 20
    for role, caller in world.attackers.items():
        for method, path in scoped:
            response = _call(world, method, _fill(path, world), caller.headers)
            # 415: an upload route refuses the JSON body's media type before deciding
            assert response.status_code in (403, 404, 415, 422), (role, method, path, response.text)
            _assert_problem(response, response.status_code)
            assert not any(s in response.text for s in secrets_of_victim), (role, path)


def test_platform_wide_routes_show_attackers_nothing_of_the_victim(world: World) -> None:
    """Routes without a project in the path (lists, audit, reports, DSRs): an attacker's
    roles in B never list, export or report A's objects."""
    unscoped = [
        (m, p)
        for m, p in _routes(world.app)
        if "{project_id}" not in p and m == "GET" and "{" not in p
    ]
    for role, caller in world.attackers.items():
        for _method, path in unscoped:
            for params in ({}, {"project": world.victim}):
                response = world.client.get(path, headers=caller.headers, params=params)
                assert response.status_code < 500, (role, path, response.text)
                if response.status_code == 200:
                    assert world.victim not in response.text, (role, path, params)
                    assert world.victim_dataset not in response.text, (role, path, params)


# --- input attacks -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "filename",
    [
        "../../../../escape.csv",
        "..\\..\\..\\escape.csv",
        "/etc/passwd.csv",
        "%2e%2e%2f%2e%2e%2fescape.csv",
        "loans.csv\x00.exe",
        "....//....//escape.csv",
    ],
)
def test_path_traversal_in_upload_file_names(world: World, tmp_path: Path, filename: str) -> None:
    before = {p for p in tmp_path.rglob("*")}
    response = _upload(world.client, world.admin, world.victim, name=None, filename=filename)  # type: ignore[arg-type]
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        _assert_problem(response, response.status_code)
    else:
        name = response.json()["dataset_name"]
        assert "/" not in name and "\\" not in name and ".." not in name, name
    created = {p for p in tmp_path.rglob("*")} - before
    home = world.runtime.settings.home
    outside = [p for p in created if home not in p.parents and p != home]
    assert outside == [], outside
    assert not Path("/etc/passwd.csv").exists()


def test_oversized_json_is_refused_with_413(world: World) -> None:
    limit = world.runtime.settings.max_body_bytes
    body = json.dumps({"name": "x", "description": "a" * (limit + 10)})
    for headers in (
        {"Content-Type": "application/json"},
        {"Content-Type": "application/json", "Transfer-Encoding": "chunked"},
    ):
        response = world.client.post(
            "/v1/projects", content=body, headers={**world.admin.headers, **headers}
        )
        assert str(limit) in _assert_problem(response, 413)["detail"]


def test_oversized_json_without_content_length_is_refused(world: World) -> None:
    limit = world.runtime.settings.max_body_bytes

    def chunks() -> Iterator[bytes]:
        yield b'{"name": "x", "description": "'
        for _ in range(limit // 65536 + 2):
            yield b"a" * 65536
        yield b'"}'

    response = world.client.post(
        "/v1/projects",
        content=chunks(),
        headers={**world.admin.headers, "Content-Type": "application/json"},
    )
    _assert_problem(response, 413)


@pytest.mark.parametrize("depth", [1000, 100_000, 400_000])
def test_deeply_nested_json_is_a_4xx(world: World, depth: int) -> None:
    for opener, closer in (("[", "]"), ('{"a":', "}")):
        body = opener * depth + "1" + closer * depth
        for path in ("/v1/projects", f"/v1/projects/{world.victim}/training-jobs"):
            response = world.client.post(
                path,
                content=body,
                headers={**world.admin.headers, "Content-Type": "application/json"},
            )
            assert 400 <= response.status_code < 500, (depth, path, response.status_code)
            _assert_problem(response, response.status_code)


@pytest.mark.parametrize(
    "body",
    [b"\xff\xfe\x00garbage", b'{"name": "\\ud800"}', b'{"name": NaN}', b"", b"null", b"[]"],
)
def test_malformed_json_bodies_are_4xx(world: World, body: bytes) -> None:
    response = world.client.post(
        "/v1/projects",
        content=body,
        headers={**world.admin.headers, "Content-Type": "application/json"},
    )
    assert 400 <= response.status_code < 500, (body, response.status_code, response.text)
    _assert_problem(response, response.status_code)


FORMULAS = [
    '=HYPERLINK("http://evil","x")',
    "+1+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(A1)",
    "\t=1",
    "\r=1",
]


def test_csv_reports_neutralise_formula_cells(world: World) -> None:
    """User-controlled strings that reach the CSV reports (project description, dataset
    purposes, report filters, a DSR requester) start with = + - @ tab CR (the DSR channel
    is an enumeration now):
    no cell of any CSV report starts with one of them."""
    client, admin = world.client, world.admin
    project = client.post(
        "/v1/projects",
        json={"name": "formulas", "description": FORMULAS[0]},
        headers=admin.headers,
    ).json()["id"]
    client.put(
        f"/v1/projects/{project}/compliance-settings",
        json={},
        headers=admin.headers,
    )
    uploaded = client.post(
        f"/v1/projects/{project}/datasets",
        headers=admin.headers,
        files={
            "declarations": (
                None,
                json.dumps(declarations(name="formula-data")),
                "application/json",
            ),
            "file": ("f.csv", to_csv(make_rows(20)), "text/csv"),
        },
    )
    assert uploaded.status_code == 201, uploaded.text
    for formula in FORMULAS[:4]:
        client.post(
            "/v1/data-subject-requests",
            json={
                "type": "access",
                "subject_id": "cust-00001",
                "requester": formula,
                "channel": "letter",
            },
            headers=admin.headers,
        )
    from privet.reports import KINDS

    checked = 0
    for kind in KINDS:
        for params in ({}, {"project": project}, {"action": FORMULAS[0]}, {"principal": "=x"}):
            response = client.get(
                f"/v1/reports/{kind}", params={"format": "csv", **params}, headers=admin.headers
            )
            if response.status_code != 200:
                assert response.status_code < 500, (kind, params, response.text)
                continue
            rows = list(csv.reader(io.StringIO(response.text)))
            for row in rows:
                for cell in row:
                    assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), (kind, cell)
            checked += 1
    assert checked >= len(KINDS)


def test_csv_neutralise_unit() -> None:
    from privet.reports.render import neutralise

    for formula in FORMULAS:
        assert neutralise(formula).startswith("'")
    assert neutralise("plain") == "plain"


# --- headers ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "supplied",
    ["abc\r\nSet-Cookie: evil=1", "x" * 65, "<script>", "a b", "../../etc", "a\x00b"],
)
def test_request_id_header_is_not_reflected_unless_safe(world: World, supplied: str) -> None:
    response = world.client.get(
        "/v1/projects",
        headers={**world.admin.headers, "X-Request-Id": supplied},
    )
    assert response.status_code == 200
    echoed = response.headers["x-request-id"]
    assert echoed != supplied and re.fullmatch(r"[A-Za-z0-9._-]{1,64}", echoed)
    assert "set-cookie" not in response.headers


def test_a_safe_request_id_is_echoed_and_quoted_in_problems(world: World) -> None:
    response = world.client.get(
        "/v1/projects/nope", headers={**world.admin.headers, "X-Request-Id": "trace-42"}
    )
    assert response.headers["x-request-id"] == "trace-42"
    assert _assert_problem(response, (403, 404))["instance"] == "urn:privet:request:trace-42"


def test_report_downloads_carry_safe_headers(world: World) -> None:
    response = world.client.get(
        "/v1/reports/ropa", params={"format": "csv"}, headers=world.admin.headers
    )
    assert response.status_code == 200
    disposition = response.headers["content-disposition"]
    assert re.fullmatch(r'attachment; filename="privet-ropa-\d{8}T\d{6}Z\.csv"', disposition)
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"] == "no-store"


# --- secrets -----------------------------------------------------------------------------------


def test_api_key_comparison_is_constant_time() -> None:
    """The digest comparison is hmac.compare_digest, and the authenticator uses it. (A
    statistical timing test is not run: on a shared 2-core machine it would be flaky.)"""
    from privet.auth import api_keys, service

    assert "hmac.compare_digest(" in inspect.getsource(api_keys.matches)
    source = inspect.getsource(service.authenticate_api_key)
    # an unknown key id is compared too (against a dummy digest): no early return before it
    assert "_NO_DIGEST" in source
    assert (
        "api_keys.matches(" in source
        and "==" not in source.split("api_keys.matches")[1].split("\n")[0]
    )
    # the stored value is a keyed digest, never the key
    assert len(api_keys.digest(b"p" * 32, "pvt_x")) == 64


def test_secrets_never_in_responses_reports_or_logs(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    home = world.runtime.settings.home
    client, admin = world.client, world.admin
    bodies: list[bytes] = []
    # errors of every kind
    for method, path in _routes(world.app):
        for headers in ({}, admin.headers):
            bodies.append(_call(world, method, _fill(path, world), headers).content)
    bodies.append(
        client.post(
            "/v1/projects",
            content=b"{",
            headers={**admin.headers, "Content-Type": "application/json"},
        ).content
    )
    # every report in every format, the audit export, the policy info, metrics
    from privet.reports import KINDS

    for kind in KINDS:
        for fmt in ("json", "csv", "html"):
            bodies.append(
                client.get(
                    f"/v1/reports/{kind}", params={"format": fmt}, headers=admin.headers
                ).content
            )
    bodies.append(client.get("/v1/audit/export", headers=admin.headers).content)
    bodies.append(client.get("/v1/audit/checkpoint", headers=admin.headers).content)
    bodies.append(client.get("/metrics").content)
    bodies.append(client.get("/openapi.json").content)
    for body in bodies:
        assert leaks(home, body) == []
    logs = "\n".join(
        r.getMessage() + " " + json.dumps(r.__dict__, default=str) for r in caplog.records
    )
    assert leaks(home, logs) == []
    assert admin.key not in logs
