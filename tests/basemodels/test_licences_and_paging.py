"""Base-model licences (an SPDX id or expression the SPDX License List knows, normalised;
else free text marked `licence_text`; an unknown id is 422 `spdx-licence`) and keyset
paging of the registry list. The real API; SQLite and PostgreSQL."""

# ruff: noqa: F811 - the fixture is imported here and requested by name

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from privet.training.catalog import build_tiny_bert
from tests.basemodels.test_registry import _add, root  # noqa: F401 - fixture
from tests.jobs.conftest import WORDS, ledger_events


def _folder(root: Path, name: str, *, card: str | None = None, licence: str | None = None) -> Path:
    """A tiny BERT folder, with a model card's front-matter licence and a LICENSE file."""
    path = build_tiny_bert(root / name, name=name, words=WORDS).path
    if card is not None:
        (path / "README.md").write_text(f"---\nlanguage: en\nlicense: {card}\n---\n# {name}\n")
    if licence is not None:
        (path / "LICENSE").write_text(licence)
    return path


def _names(client: Any, admin: Any) -> set[str]:
    return {r["name"] for r in client.get("/v1/base-models", headers=admin.headers).json()}


CLASSPATH = "GPL-2.0-or-later WITH Classpath-exception-2.0"


@pytest.mark.parametrize(
    ("given", "normalised", "ids"),
    [
        ("apache-2.0", "Apache-2.0", ["Apache-2.0"]),
        ("mit or Apache-2.0", "MIT OR Apache-2.0", ["MIT", "Apache-2.0"]),
        (CLASSPATH, CLASSPATH, ["GPL-2.0-or-later", "Classpath-exception-2.0"]),
    ],
)
def test_an_spdx_licence_is_normalised_and_audited(
    client, runtime, admin, root, given: str, normalised: str, ids: list[str]
) -> None:  # type: ignore[no-untyped-def]
    r = _add(client, admin, _folder(root, "m"), "spdx-model", license=given)
    assert r.status_code == 201, r.text
    assert (r.json()["license"], r.json()["licence_text"]) == (normalised, None)
    shown = client.get("/v1/base-models/spdx-model", headers=admin.headers).json()
    assert shown["license"] == normalised
    (event,) = [e for e in ledger_events(runtime) if e["type"] == "base_model.registered"]
    details = event["details"]
    assert details["licence_kind"] == "spdx"
    assert details["licence_sha256"] == hashlib.sha256(normalised.encode()).hexdigest()
    assert details["license_ids"] == ids


@pytest.mark.parametrize(
    ("given", "unknown"),
    [
        ("Apache 2", ["Apache 2"]),
        ("MIT-2.0", ["MIT-2.0"]),
        ("LicenseRef-acme-model-terms", ["LicenseRef-acme-model-terms"]),
        ("MIT OR Foo-1.0", ["Foo-1.0"]),
        ("Apache-2.0 WITH MIT", ["MIT"]),  # MIT is a licence, not an exception
        ("(MIT", []),
    ],
)
def test_an_unknown_spdx_id_is_refused_naming_the_rule(
    client, runtime, admin, root, given: str, unknown: list[str]
) -> None:  # type: ignore[no-untyped-def]
    r = _add(client, admin, _folder(root, "m"), "bad-licence", license=given)
    assert r.status_code == 422, r.text
    problem = r.json()
    assert problem["rule"] == "spdx-licence" and problem["field"] == "license"
    assert problem["unknown"] == unknown
    assert "not an SPDX licence id or expression" in problem["detail"]
    assert "licence_text" in problem["detail"]  # says what to do instead
    assert _names(client, admin) == {"minilm-l6"}  # nothing written
    assert not [e for e in ledger_events(runtime) if e["type"] == "base_model.registered"]


def test_free_text_is_kept_marked_as_such(client, runtime, admin, root) -> None:  # type: ignore[no-untyped-def]
    words = "Acme Bank model licence v3: internal use by Acme Bank group companies only."
    r = _add(client, admin, _folder(root, "m"), "acme", license=None, licence_text=words)
    assert r.status_code == 201, r.text
    assert (r.json()["license"], r.json()["licence_text"]) == (None, words)
    (event,) = [e for e in ledger_events(runtime) if e["type"] == "base_model.registered"]
    assert event["details"]["licence_kind"] == "text"
    assert event["details"]["licence_sha256"] == hashlib.sha256(words.encode()).hexdigest()
    assert "license_ids" not in event["details"]

    both = _add(client, admin, _folder(root, "n"), "both", licence_text=words)  # + license
    assert both.status_code == 422 and both.json()["rule"] == "licence-one-of", both.text
    blank = _add(client, admin, _folder(root, "o"), "blank", license=None, licence_text="  ")
    assert blank.status_code == 422 and blank.json()["rule"] == "licence-text", blank.text
    assert _names(client, admin) == {"minilm-l6", "acme"}


def test_a_licence_read_from_the_folder(client, admin, root) -> None:  # type: ignore[no-untyped-def]
    def add(name: str, **folder: str) -> Any:
        return _add(client, admin, _folder(root, name, **folder), name, license=None)

    card = add("card", card="mit")
    assert card.status_code == 201 and card.json()["license"] == "MIT", card.text
    # A card's id the SPDX list does not know: the LICENSE file's words, marked as text.
    other = add("other", card="other", licence="The Acme licence, in full.")
    assert other.status_code == 201, other.text
    assert (other.json()["license"], other.json()["licence_text"]) == (
        None,
        "The Acme licence, in full.",
    )
    unknown = add("unknown", card="openrail-acme")
    assert unknown.status_code == 422, unknown.text
    assert (
        unknown.json()["rule"] == "spdx-licence" and unknown.json()["field"] == "README.md license"
    )
    none = add("none")
    assert none.status_code == 422 and none.json()["rule"] == "licence", none.text


def test_the_shipped_minilm_licence_is_normalised(client, admin) -> None:  # type: ignore[no-untyped-def]
    shown = client.get("/v1/base-models/minilm-l6", headers=admin.headers).json()
    assert (shown["license"], shown["licence_text"]) == ("Apache-2.0", None)  # migration 0024


def insert_base_models(runtime: Any, names: list[str]) -> None:
    """Registry rows written directly (the paging reads them; registration is tested above)."""
    from privet.basemodels.tables import BaseModelRow
    from privet.db import session_scope

    with session_scope(runtime.engine) as session:
        for name in names:
            session.add(
                BaseModelRow(
                    id=f"bm_{name}",
                    name=name,
                    path=f"/models/{name}",
                    digests={"config.json": "0" * 64},
                    sizes={"config.json": 2},
                    model_type="bert",
                    architecture="BertModel",
                    vocab_size=10,
                    vocab_coverage={},
                    max_positions=64,
                    pooling="cls",
                    pooling_source="test",
                    license="MIT",
                    registered_by="prn_test",
                    registered_at=datetime(2026, 12, 7, tzinfo=UTC),
                )
            )


PAGED = [f"bm-{i:02d}" for i in range(7)]


def test_the_list_is_keyset_paged_by_name(client, runtime, admin, make_caller, project) -> None:  # type: ignore[no-untyped-def]
    insert_base_models(runtime, list(reversed(PAGED)))
    reader = make_caller("ml_engineer", project, name="reader")
    seen: list[str] = []
    url: str | None = "/v1/base-models?limit=3"
    pages = 0
    while url is not None:
        r = client.get(url, headers=reader.headers)
        assert r.status_code == 200, r.text
        assert len(r.json()) <= 3
        seen += [row["name"] for row in r.json()]
        url = r.links.get("next", {}).get("url")
        pages += 1
        if url is not None:
            insert_base_models(runtime, [f"zz-late-{pages}"])  # a row added while paging
    everything = sorted([*PAGED, "minilm-l6"])
    assert seen[: len(everything)] == everything  # in name order, none skipped or repeated
    assert len(seen) == len(set(seen))
    assert pages >= 3
    whole = client.get("/v1/base-models", headers=reader.headers)
    assert "link" not in whole.headers and len(whole.json()) == len(set(seen))
    bad = client.get("/v1/base-models?after=not-a-cursor", headers=reader.headers)
    assert bad.status_code == 422 and bad.json()["rule"] == "cursor", bad.text
    assert client.get("/v1/base-models?limit=0", headers=reader.headers).status_code == 422
    assert client.get("/v1/base-models?limit=1001", headers=reader.headers).status_code == 422
