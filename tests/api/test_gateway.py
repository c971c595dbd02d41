"""Gateway basics: health, readiness, metrics, problem+json, body limits, request ids."""

from __future__ import annotations

from sqlmodel import Session, func, select

from privet.auth.tables import Project

PROBLEM = "application/problem+json"


def _count_projects(runtime) -> int:  # type: ignore[no-untyped-def]
    with Session(runtime.engine) as session:
        return session.exec(select(func.count()).select_from(Project)).one()


def test_health_and_readiness(client) -> None:  # type: ignore[no-untyped-def]
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["status"] == "ready"
    assert ready.json()["migration"]


def test_readiness_fails_when_migrations_are_behind(client, runtime) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import text

    with runtime.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0000_old'"))
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.headers["content-type"] == PROBLEM
    assert "privet db upgrade" in response.json()["detail"]


def test_metrics_count_requests(client, admin) -> None:  # type: ignore[no-untyped-def]
    client.get("/v1/projects", headers=admin.headers)
    text = client.get("/metrics").text
    assert 'privet_http_requests_total{method="GET",route="/v1/projects",status="200"} 1.0' in text


def test_request_id_is_echoed_or_generated(client) -> None:  # type: ignore[no-untyped-def]
    assert (
        client.get("/healthz", headers={"X-Request-ID": "abc-123"}).headers["x-request-id"]
        == "abc-123"
    )
    generated = client.get("/healthz", headers={"X-Request-ID": "bad id\nwith newline"})
    assert len(generated.headers["x-request-id"]) == 32


def test_unknown_route_is_a_problem(client) -> None:  # type: ignore[no-untyped-def]
    response = client.get("/v1/nope")
    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["type"].endswith("/not-found") and "/v1/nope" in body["detail"]


def test_malformed_json_is_400_and_writes_nothing(client, admin, runtime) -> None:  # type: ignore[no-untyped-def]
    before = _count_projects(runtime)
    response = client.post(
        "/v1/projects",
        content=b'{"name": "x",',
        headers={**admin.headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["type"].endswith("/malformed-json")
    assert _count_projects(runtime) == before


def test_unknown_field_is_422_naming_it(client, admin, runtime) -> None:  # type: ignore[no-untyped-def]
    before = _count_projects(runtime)
    response = client.post(
        "/v1/projects", json={"name": "ok-name", "colour": "red"}, headers=admin.headers
    )
    assert response.status_code == 422
    body = response.json()
    assert body["type"].endswith("/invalid-input")
    assert "colour" in body["detail"]
    assert _count_projects(runtime) == before


def test_invalid_value_is_422(client, admin) -> None:  # type: ignore[no-untyped-def]
    response = client.post("/v1/projects", json={"name": "Not Valid!"}, headers=admin.headers)
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["body", "name"]


def test_body_over_limit_with_content_length(client, admin, runtime) -> None:  # type: ignore[no-untyped-def]
    limit = runtime.settings.max_body_bytes
    before = _count_projects(runtime)
    payload = b'{"name": "big", "description": "' + b"x" * limit + b'"}'
    response = client.post(
        "/v1/projects",
        content=payload,
        headers={**admin.headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 413
    assert response.headers["content-type"] == PROBLEM
    assert str(limit) in response.json()["detail"]
    assert _count_projects(runtime) == before


def test_body_over_limit_when_chunked(client, admin, runtime) -> None:  # type: ignore[no-untyped-def]
    limit = runtime.settings.max_body_bytes
    before = _count_projects(runtime)

    def chunks():  # type: ignore[no-untyped-def]
        yield b'{"name": "big", "description": "'
        for _ in range(limit // 4096 + 2):
            yield b"x" * 4096
        yield b'"}'

    response = client.post(
        "/v1/projects",
        content=chunks(),
        headers={**admin.headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 413
    assert response.json()["type"].endswith("/payload-too-large")
    assert _count_projects(runtime) == before


def test_serving_keeps_startup_objects_out_of_full_collections(app) -> None:  # type: ignore[no-untyped-def]
    """While the app serves, what startup made is frozen out of the collector's full passes
    (each walked ~600,000 objects: a 0.5 s pause of every request at 64 clients); once it
    stops, nothing is left frozen in the process."""
    import gc

    from fastapi.testclient import TestClient

    assert gc.get_freeze_count() == 0
    with TestClient(app) as client:
        assert client.get("/healthz").status_code == 200
        assert gc.get_freeze_count() > 0
    assert gc.get_freeze_count() == 0
