"""Unlabelled uploads (issue 22 item 6): texts with no label column, which the steward
declares non-personal, stored as one stratum with a null label in the canonical content.
The parser path without a label column gets the hostile inputs the labelled one does:
huge cells, non-ASCII text, empty files; each refusal is a 4xx naming the rule or limit
and leaves nothing behind."""

from __future__ import annotations

import hashlib
import io
import json
from typing import Any

import pytest

from privet.config import clear_settings_caches
from tests.datasets.conftest import declarations, make_rows, to_csv, upload
from tests.datasets.test_validation import _nothing_left, _problem

TEXTS = [
    "loan approved after the second review",
    "कृपया मेरा खाता बंद करें",  # Hindi
    "外卖送得很快，味道不错",  # Chinese  # noqa: RUF001 - the fullwidth comma is the point
    'a "quoted", comma-laden text 🙂',
    "café naïve façade – ünïcode",  # noqa: RUF001 - an en dash on purpose
]


def unlabelled_declarations(**overrides: Any) -> dict[str, Any]:
    """Non-personal, unlabelled texts: no label or subject-id column, no categories."""
    base = declarations(
        name="public-texts",
        label_column=None,
        subject_id_column=None,
        contains_personal_data=False,
        data_categories=[],
        unlabelled=True,
    )
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def _texts(n: int) -> list[str]:
    return [TEXTS[i % len(TEXTS)] + f" #{i}" for i in range(n)]


def _csv(texts: list[str]) -> bytes:
    return to_csv([{"text": t} for t in texts], columns=("text",))


def _tsv(texts: list[str]) -> bytes:
    return ("text\r\n" + "".join(t + "\r\n" for t in texts)).encode()


def _jsonl(texts: list[str]) -> bytes:
    return b"".join(json.dumps({"text": t}).encode() + b"\n" for t in texts)


def _parquet(texts: list[str]) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    sink = io.BytesIO()
    pq.write_table(pa.table({"text": texts}), sink, row_group_size=7)
    return sink.getvalue()


def _canonical_digest(texts: list[str]) -> str:
    """The canonical content recomputed with json.dumps: [text, null, null] per row."""
    digest = hashlib.sha256()
    for text in texts:
        line = json.dumps([text, None, None], ensure_ascii=False, separators=(",", ":"))
        digest.update((line + "\n").encode())
    return "sha256:" + digest.hexdigest()


@pytest.mark.parametrize(
    ("filename", "encode"),
    [("t.csv", _csv), ("t.tsv", _tsv), ("t.jsonl", _jsonl), ("t.parquet", _parquet)],
)
def test_unlabelled_upload_in_every_format(  # type: ignore[no-untyped-def]
    client, admin, project, runtime, filename, encode
) -> None:
    from privet.datasets.rows import load_version_rows
    from privet.datasets.split import NO_LABEL
    from privet.db import session_scope

    texts = _texts(50)
    decl = unlabelled_declarations()
    response = upload(client, admin.headers, project, encode(texts), filename=filename, decl=decl)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["row_count"] == 50 and body["label_counts"] == {}
    assert body["digest"] == _canonical_digest(texts)  # the same content in every format
    assert body["declarations"]["unlabelled"] is True
    assert body["declarations"]["label_column"] is None
    assert body["split"]["unlabelled"] is True and body["split"]["label_counts"] == {}
    assert body["split"]["counts"] == {"train": 40, "validation": 5, "test": 5}
    with session_scope(runtime.engine) as session:
        loaded = load_version_rows(
            session, provider=runtime.key_provider, store=runtime.blobs, version_id=body["id"]
        )
    assert loaded.unlabelled and loaded.label_names == []
    assert loaded.texts == texts and set(loaded.labels) == {NO_LABEL}
    assert sorted(loaded.splits).count("test") == 5  # the recorded split, recomputed


def test_unlabelled_rows_export_with_a_null_label(client, admin, project) -> None:  # type: ignore[no-untyped-def]
    texts = _texts(12)
    body = upload(
        client, admin.headers, project, b"\xef\xbb\xbf" + _csv(texts),  # with a BOM
        filename="t.csv", decl=unlabelled_declarations(),
    ).json()  # fmt: skip
    exported = client.get(
        f"/v1/projects/{project}/datasets/{body['dataset_id']}/versions/1/export",
        headers=admin.headers,
    )
    assert exported.status_code == 200, exported.text
    rows = [json.loads(line) for line in exported.text.splitlines()]
    assert rows == [{"text": t, "label": None, "subject_id": None} for t in texts]


def test_declaration_rules(client, admin, project, runtime) -> None:  # type: ignore[no-untyped-def]
    texts = _csv(_texts(20))
    personal = unlabelled_declarations(contains_personal_data=True, subject_id_column="customer")
    problem = _problem(upload(client, admin.headers, project, texts, decl=personal), 422)
    assert "datasets.unlabelled.non-personal" in problem["detail"]
    assert "contains_personal_data: false" in problem["detail"]

    with_label = unlabelled_declarations(label_column="label")
    problem = _problem(upload(client, admin.headers, project, texts, decl=with_label), 422)
    assert "omit label_column" in problem["detail"]

    neither = unlabelled_declarations(unlabelled=False)
    problem = _problem(upload(client, admin.headers, project, texts, decl=neither), 422)
    assert "label_column is required" in problem["detail"]

    # a file that has a label column is not unlabelled: exactly the declared columns
    labelled = to_csv(make_rows(20), columns=("text", "label"))
    decl = unlabelled_declarations()
    problem = _problem(upload(client, admin.headers, project, labelled, decl=decl), 422)
    assert problem["extra_columns"] == ["label"]
    problem = _problem(
        upload(
            client, admin.headers, project, b'{"text": "a", "label": "1"}\n',
            filename="t.jsonl", decl=decl,
        ),
        422,
    )  # fmt: skip
    assert "extra key(s) ['label']" in problem["detail"]
    _nothing_left(client, admin, project, runtime)


@pytest.mark.parametrize(
    ("filename", "encode"),
    [("t.csv", _csv), ("t.tsv", _tsv), ("t.jsonl", _jsonl), ("t.parquet", _parquet)],
)
def test_a_huge_cell_is_a_413_naming_the_limit(  # type: ignore[no-untyped-def]
    client, admin, project, runtime, monkeypatch, filename, encode
) -> None:
    monkeypatch.setenv("PRIVET_DATASETS_MAX_TEXT_CHARS", "5000")
    clear_settings_caches()
    texts = _texts(30)
    texts[4] = "ü" * 30_000  # CSV, TSV: line 6 (the header is line 1); JSON Lines, Parquet: 5
    response = upload(
        client, admin.headers, project, encode(texts), filename=filename,
        decl=unlabelled_declarations(),
    )  # fmt: skip
    body = _problem(response, 413)
    assert "PRIVET_DATASETS_MAX_TEXT_CHARS" in body["detail"] and "5000" in body["detail"]
    assert body["limit"] == "max_text_chars"
    assert body["line"] == (6 if filename.endswith(("csv", "tsv")) else 5)
    _nothing_left(client, admin, project, runtime)


@pytest.mark.parametrize(
    ("content", "filename", "detail"),
    [
        (b"", "t.csv", "the file is empty"),
        (b"", "t.tsv", "the file is empty"),
        (b"text\r\n", "t.csv", "no rows"),
        (b"\n\n", "t.jsonl", "no rows"),
        (b"text\r\nfine\r\n   \r\n", "t.csv", "line 3: empty text"),
        (b"text\r\n\xff\xfe broken\r\n", "t.csv", "not valid UTF-8"),
        (b'{"text": "\\ud800 lone"}\n', "t.jsonl", "lone surrogate"),
        (b'{"text": 7}\n', "t.jsonl", "must be a string"),
    ],
)
def test_empty_and_malformed_files_are_refused(  # type: ignore[no-untyped-def]
    client, admin, project, runtime, content, filename, detail
) -> None:
    response = upload(
        client, admin.headers, project, content, filename=filename,
        decl=unlabelled_declarations(),
    )  # fmt: skip
    problem = _problem(response, 422)
    assert detail in problem["detail"], problem["detail"]
    _nothing_left(client, admin, project, runtime)


def test_blank_lines_take_the_slow_path_and_keep_line_numbers(client, admin, project) -> None:  # type: ignore[no-untyped-def]
    """A blank line sends CSV and TSV rows down the row-by-row path (no label column
    there either); the rows and their order are what the fast path stores."""
    texts = _texts(8)
    csv_body = _csv(texts).replace(b"\r\n", b"\r\n\r\n", 1)
    tsv_body = _tsv(texts).replace(b"\r\n", b"\r\n\r\n", 2)
    digests = []
    for i, (content, filename) in enumerate(((csv_body, "t.csv"), (tsv_body, "t.tsv"))):
        decl = unlabelled_declarations(name=f"texts-{i}")
        response = upload(client, admin.headers, project, content, filename=filename, decl=decl)
        assert response.status_code == 201, response.text
        digests.append(response.json()["digest"])
    assert digests == [_canonical_digest(texts)] * 2


def test_form_declarations_accept_the_unlabelled_checkbox() -> None:
    """The console's form: the checkbox declares it, the prefilled label column is dropped."""
    from privet.datasets.upload import declarations_from_form

    fields = {
        "text_column": "text", "label_column": "label", "unlabelled": "on",
        "purposes": "credit_scoring", "legal_basis": "contract", "retention_days": "30",
    }  # fmt: skip
    decl = declarations_from_form(fields)
    assert decl.unlabelled and decl.label_column is None and not decl.contains_personal_data
