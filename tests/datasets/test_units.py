"""Unit tests: PII detectors, the split, the encrypted spool, the multipart reader, formats."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest

from privet.datasets import formats, pii, split
from privet.datasets.delimited import read_csv
from privet.datasets.ingest import Ingest, decode_rows, encode_row
from privet.datasets.items import RowError
from privet.datasets.multipart import MultipartReader, boundary_of
from privet.datasets.schemas import Declarations
from privet.datasets.spool import EncryptedSpool, clean_orphans
from privet.datasets.upload import open_form_upload
from privet.kit.errors import InvalidInputError, UnsupportedMediaTypeError
from tests.datasets.conftest import reader_declarations


@pytest.mark.parametrize(
    ("text", "kinds"),
    [
        ("write to j.smith@bank.co.uk today", {"email"}),
        ("call +1 (415) 555-0132 now", {"phone"}),
        ("tel 020 7946 0958", {"phone"}),
        ("IBAN GB82 WEST 1234 5698 7654 32 please", {"iban"}),
        ("DE89370400440532013000", {"iban"}),
        ("card 4111-1111-1111-1111", {"card"}),
        ("card 4111 1111 1111 1112", set()),  # fails Luhn
        ("ssn 123-45-6789", {"national_id"}),
        ("NI number AB 12 34 56 C", {"national_id"}),
        ("DNI 12345678Z", {"national_id"}),
        ("it was released in 2003 and ran 117 minutes", set()),
        ("a fine film , rated 8/10", set()),
        ("the 1,000,000 dollar question", set()),
    ],
)
def test_pii_kinds(text: str, kinds: set[str]) -> None:
    assert pii.find_kinds(text) == kinds


def test_pii_scan_records_counts_and_lines_only() -> None:
    scan = pii.PiiScan()
    scan.scan("mail a@b.io", 3)
    scan.scan("nothing here", 4)
    scan.scan("again c@d.io", 9)
    assert scan.as_dict() == {
        "suspected": True,
        "counts": {"email": 2},
        "first_lines": {"email": [3, 9]},
    }
    assert "a@b.io" not in json.dumps(scan.as_dict())


def test_split_is_deterministic_stratified_and_matches_counts() -> None:
    labels = ["a"] * 100 + ["b"] * 37 + ["c"] * 3
    first = split.assign(labels, seed=7, validation=0.1, test=0.2)
    assert first == split.assign(labels, seed=7, validation=0.1, test=0.2)
    assert first != split.assign(labels, seed=8, validation=0.1, test=0.2)
    record = split.split_record({"a": 100, "b": 37, "c": 3}, seed=7, validation=0.1, test=0.2)
    for label in "abc":
        got = {s: 0 for s in split.SPLITS}
        for lab, s in zip(labels, first, strict=True):
            if lab == label:
                got[s] += 1
        assert got == record["label_counts"][label]
    assert record["label_counts"]["c"] == {"train": 1, "validation": 1, "test": 1}
    assert record["counts"] == {"train": 97, "validation": 15, "test": 28}


def test_spool_roundtrip_seek_and_ciphertext(tmp_path: Path) -> None:
    data = bytes(range(256)) * 1000 + b"CANARY-spool"
    with EncryptedSpool(tmp_path) as spool:
        for i in range(0, len(data), 7777):
            spool.write(data[i : i + 7777])
        reader = spool.reader()
        assert b"CANARY" not in spool.path.read_bytes()
        assert reader.read() == data
        reader.seek(-12, io.SEEK_END)
        assert reader.read() == b"CANARY-spool"
        reader.seek(65530)
        assert reader.read(20) == data[65530:65550]
        path = spool.path
    assert not path.exists()


def test_spool_orphans_of_dead_processes_are_removed(tmp_path: Path) -> None:
    dead = tmp_path / ".spool-999999999-0123456789abcdef.tmp"
    dead.write_bytes(b"x")
    other = tmp_path / "keep.txt"
    other.write_bytes(b"x")
    assert clean_orphans(tmp_path) == 1
    assert not dead.exists() and other.exists()


def _body(parts: list[tuple[str, str | None, bytes]], boundary: str = "XyZ") -> bytes:
    out = b""
    for name, filename, content in parts:
        disp = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        out += f"--{boundary}\r\nContent-Disposition: {disp}\r\n\r\n".encode() + content + b"\r\n"
    return out + f"--{boundary}--\r\n".encode()


def test_multipart_reader_streams_parts_in_tiny_chunks() -> None:
    body = _body([("declarations", None, b'{"a": 1}'), ("file", "x.csv", b"t,l\r\n" * 1000)])
    chunks = iter([body[i : i + 13] for i in range(0, len(body), 13)])
    reader = MultipartReader(chunks, boundary_of("multipart/form-data; boundary=XyZ"))
    first = reader.next_part()
    assert first is not None and first.name == "declarations"
    assert first.read_all(100) == b'{"a": 1}'
    second = reader.next_part()
    assert second is not None and (second.name, second.filename) == ("file", "x.csv")
    assert b"".join(second.chunks()) == b"t,l\r\n" * 1000
    assert reader.next_part() is None


def test_multipart_errors() -> None:
    with pytest.raises(UnsupportedMediaTypeError):
        boundary_of("application/json")
    with pytest.raises(InvalidInputError):
        boundary_of("multipart/form-data")
    body = _body([("declarations", None, b"x" * 200)])
    reader = MultipartReader(iter([body]), b"XyZ")
    part = reader.next_part()
    assert part is not None
    with pytest.raises(InvalidInputError, match="larger than"):
        part.read_all(100)


def test_csv_quoted_newlines_bom_and_line_numbers() -> None:
    data = '\ufefftext,label\r\n"multi\r\nline, quoted",1\r\nplain,0\r\n"bad"x,1\r\n'.encode()
    rows = list(read_csv([data[:5], data[5:17], data[17:]], reader_declarations()))
    assert rows[0] == (2, "multi\r\nline, quoted", "1", None)
    assert rows[1] == (4, "plain", "0", None)
    assert isinstance(rows[2], RowError) and rows[2].line == 5


def test_format_detection() -> None:
    assert formats.detect_format(None, "a.TSV", None) is formats.DataFormat.tsv
    assert formats.detect_format(None, "blob", "application/x-ndjson") is formats.DataFormat.jsonl
    with pytest.raises(UnsupportedMediaTypeError):
        formats.detect_format(None, "a.xlsx", None)


def test_canonical_form_roundtrip_and_digest() -> None:
    ingest = Ingest(reader_declarations(), check_minimums=False)
    rows = [(1, 'héllo "x"', "a", None), (2, "b\nc", "b", None)]
    content = b"".join(ingest.canonical(rows))
    assert content == encode_row('héllo "x"', "a", None) + encode_row("b\nc", "b", None)
    assert content.splitlines()[0] == '["héllo \\"x\\"","a",null]'.encode()
    assert list(decode_rows([content[:3], content[3:]])) == [
        ('héllo "x"', "a", None),
        ("b\nc", "b", None),
    ]
    import hashlib

    assert ingest.digest == "sha256:" + hashlib.sha256(content).hexdigest()


def _ingest_content(fmt: str, data: bytes, decl: Declarations) -> tuple[Ingest, bytes]:
    ingest = Ingest(decl)
    chunks = [data[i : i + 4099] for i in range(0, len(data), 4099)]
    rows = formats.read_rows(formats.DataFormat(fmt), chunks, decl, spool_dir=Path("/nonexistent"))
    return ingest, b"".join(ingest.canonical(rows))


def test_batched_fast_path_equals_row_path_across_formats() -> None:
    from tests.datasets.conftest import make_rows, to_csv, to_jsonl, to_tsv

    rows = make_rows(5000, seed=4)
    rows[1500]["text"] = 'two\nlines, "quoted"'  # multi-line CSV record inside a batch
    rows[3000]["text"] = "mail me: x@y.org"
    decl = reader_declarations(subject_id_column="customer", contains_personal_data=True)
    csv_ingest, csv_content = _ingest_content("csv", to_csv(rows), decl)
    rows[1500]["text"] = "two lines, quoted"
    csv_rows = list(decode_rows([csv_content]))
    assert len(csv_rows) == 5000 and csv_rows[1500][0] == 'two\nlines, "quoted"'
    assert csv_ingest.pii.as_dict()["first_lines"] == {"email": [3003]}  # one extra line
    tsv_ingest, tsv_content = _ingest_content("tsv", to_tsv(rows), decl)
    jsonl_ingest, jsonl_content = _ingest_content("jsonl", to_jsonl(rows), decl)
    assert tsv_content == jsonl_content
    assert tsv_ingest.digest == jsonl_ingest.digest
    assert tsv_ingest.pii.as_dict()["first_lines"] == {"email": [3002]}
    assert jsonl_ingest.pii.as_dict()["first_lines"] == {"email": [3001]}
    assert tsv_ingest.label_counts == jsonl_ingest.label_counts == {"0": 2500, "1": 2500}


def test_errors_in_later_batches_have_exact_line_numbers() -> None:
    from tests.datasets.conftest import make_rows, to_csv, to_tsv

    rows = make_rows(4000, seed=5)
    rows[1999]["text"] = " "  # line 2001
    decl = reader_declarations(subject_id_column="customer", contains_personal_data=True)
    for fmt, encode in (("csv", to_csv), ("tsv", to_tsv)):
        lines = encode(rows).split(b"\r\n")
        lines[3499] = b"caf\xe9" + lines[3499]  # line 3500: bad UTF-8
        with pytest.raises(InvalidInputError) as caught:
            _ingest_content(fmt, b"\r\n".join(lines), decl)
        assert caught.value.extensions["line_numbers"] == [2001, 3500], fmt


def _form(fields: list[tuple[str, str]]) -> list[tuple[str, str | None, bytes]]:
    return [(name, None, value.encode()) for name, value in fields]


FORM = [
    ("csrf", "ignored"),
    ("name", "tickets"),
    ("purposes", "support, credit_scoring"),
    ("legal_basis", "contract"),
    ("contains_personal_data", "on"),
    ("subject_id_column", "customer"),
    ("text_column", "text"),
    ("label_column", "label"),
    ("retention_days", "30"),
    ("epsilon_total", "6"),
    ("data_categories", ""),
]


def test_form_upload_reads_the_console_form_fields_before_the_file() -> None:
    body = _body([*_form(FORM), ("file", "t.csv", b"customer,text,label\r\nc,a,b\r\n")])
    upload = open_form_upload(body=iter([body]), content_type="multipart/form-data; boundary=XyZ")
    decl = upload.declarations
    assert (upload.name, decl.purposes, decl.legal_basis) == (
        "tickets",
        ["credit_scoring", "support"],
        "contract",
    )
    assert decl.contains_personal_data and not decl.subject_ids_unique
    assert (decl.privacy_budget.epsilon_total, decl.data_categories) == (6.0, [])


@pytest.mark.parametrize(
    ("fields", "rule"),
    [
        ([("name", "x")], "no `file` part"),
        ([("purposes", "Not A Token"), *FORM[3:]], "purposes.0"),
        ([("retention_days", "0"), *FORM[1:8]], "retention_days"),
        ([(f"f{i}", "") for i in range(40)], "exceed 32 fields"),
        ([("description", "x" * 70_000)], "larger than"),
    ],
)
def test_form_upload_refuses_bad_forms_naming_the_rule(
    fields: list[tuple[str, str]], rule: str
) -> None:
    parts = _form(fields)
    if rule != "no `file` part":
        parts.append(("file", "t.csv", b"text,label\r\na,b\r\n"))
    with pytest.raises(InvalidInputError, match=re.escape(rule)):
        open_form_upload(
            body=iter([_body(parts)]), content_type="multipart/form-data; boundary=XyZ"
        )
