"""`privet base-models add|list` through the real command tree: an SPDX licence or its
words, the 422 that names the rule for an unknown id, and the list paged like the API's
(one page with the next cursor on stderr, --after to go on, --all to the end)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from privet.config import clear_settings_caches
from privet.training.catalog import build_tiny_bert
from tests.basemodels.test_licences_and_paging import PAGED, insert_base_models
from tests.jobs.conftest import WORDS


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A tiny BERT folder under the server's PRIVET_BASE_MODELS_ROOTS."""
    root = tmp_path / "models"
    root.mkdir()
    monkeypatch.setenv("PRIVET_BASE_MODELS_ROOTS", str(root))
    clear_settings_caches()
    return build_tiny_bert(root / "m", name="m", words=WORDS).path


def test_add_takes_an_spdx_id_or_the_licence_text(cli, admin, folder) -> None:  # type: ignore[no-untyped-def]
    key = admin.key
    bad = cli("base-models", "add", str(folder), "--name", "typo", "--license", "Apache 2", key=key)
    assert bad.exit_code == 1
    out = " ".join(bad.output.split())
    assert "not an SPDX licence id or expression" in out and "Apache" in out, out
    ok = cli(
        "base-models",
        "add",
        str(folder),
        "--name",
        "spdx",
        "--license",
        "apache-2.0",
        "-o",
        "json",
        key=key,
    )
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.stdout)["license"] == "Apache-2.0"
    words = "Acme model terms: internal use only."
    text = cli(
        "base-models",
        "add",
        str(folder),
        "--name",
        "text",
        "--licence-text",
        words,
        "-o",
        "json",
        key=key,
    )
    assert text.exit_code == 0, text.output
    body: dict[str, Any] = json.loads(text.stdout)
    assert (body["license"], body["licence_text"]) == (None, words)


def test_list_follows_the_cursor(cli, admin, runtime) -> None:  # type: ignore[no-untyped-def]
    insert_base_models(runtime, PAGED)
    key = admin.key
    first = cli("base-models", "list", "--limit", "3", "-o", "json", key=key)
    assert first.exit_code == 0, first.output
    assert [r["name"] for r in json.loads(first.stdout)] == PAGED[:3]
    cursor = first.stderr.split("--after ")[1].split()[0]
    second = cli("base-models", "list", "--limit", "3", "--after", cursor, "-o", "json", key=key)
    assert [r["name"] for r in json.loads(second.stdout)] == PAGED[3:6]
    everything = cli("base-models", "list", "--limit", "2", "--all", "-o", "json", key=key)
    names = [r["name"] for r in json.loads(everything.stdout)]
    assert names == [*PAGED, "minilm-l6"] and "--after" not in everything.stderr
    bad = cli("base-models", "list", "--after", "nope", key=key)
    assert bad.exit_code == 1 and "cursor" in bad.output
