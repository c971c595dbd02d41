"""Hostile-input limits shared by the readers: each refusal is a 413 naming the setting.

Checked as the bytes arrive, never after the file was read (see ``DatasetSettings``).
"""

from __future__ import annotations

from collections.abc import Iterable

from privet.datasets.items import Row
from privet.datasets.settings import DatasetSettings, get_dataset_settings
from privet.kit.errors import PayloadTooLargeError


def resolve(limits: DatasetSettings | None) -> DatasetSettings:
    """The limits given, else the environment's (PRIVET_DATASETS_*)."""
    return limits if limits is not None else get_dataset_settings()


def text_too_long(
    limits: DatasetSettings, line: int, what: str, length: int
) -> PayloadTooLargeError:
    limit = limits.max_text_chars
    return PayloadTooLargeError(
        f"line {line}: the {what} has {length} characters, more than the limit of {limit} "
        f"(PRIVET_DATASETS_MAX_TEXT_CHARS): shorten or split long texts (training reads only "
        "the first few hundred tokens of each), or ask the operator to raise the limit",
        limit="max_text_chars",
        value=limit,
        line=line,
    )


def decoded_too_large(
    limits: DatasetSettings, allowed: int, *, ratio: bool
) -> PayloadTooLargeError:
    if ratio:
        return PayloadTooLargeError(
            f"the Parquet file decodes to more than {allowed} bytes of text, over "
            f"{limits.parquet_max_expansion} times its own size "
            "(PRIVET_DATASETS_PARQUET_MAX_EXPANSION, a compression-bomb guard): upload it "
            "with lighter compression or as CSV/JSON Lines, or ask the operator to raise the limit",
            limit="parquet_max_expansion",
            value=limits.parquet_max_expansion,
            allowed_bytes=allowed,
        )
    return PayloadTooLargeError(
        f"the file decodes to more than {allowed} bytes of text, the limit "
        "(PRIVET_DATASETS_MAX_DECODED_BYTES): split it into several dataset versions, or ask "
        "the operator to raise the limit",
        limit="max_decoded_bytes",
        value=limits.max_decoded_bytes,
    )


def check_lengths(
    limits: DatasetSettings, start: int, columns: Iterable[tuple[str, list[str] | None]]
) -> None:
    """Refuse the first value longer than max_text_chars (C-level max() per column)."""
    cap = limits.max_text_chars
    for what, values in columns:
        if values and max(map(len, values)) > cap:
            i = next(i for i, v in enumerate(values) if len(v) > cap)
            raise text_too_long(limits, start + i, what, len(values[i]))


def check_row(limits: DatasetSettings, row: Row) -> None:
    """One row's values under max_text_chars (the slow path; cheap when none is long)."""
    line, text, label, subject = row
    cap = limits.max_text_chars
    if len(text) > cap or len(label or "") > cap or len(subject or "") > cap:
        check_lengths(
            limits,
            line,
            (("text", [text]), ("label", [label or ""]), ("subject id", [subject or ""])),
        )
