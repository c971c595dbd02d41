"""Lines of a text upload from byte chunks, under the line-length and total-size limits.

The text readers (CSV, TSV, JSON Lines) share this so that every one of them refuses an
over-long line or an over-large file as soon as the bytes arrive, holding at most one
block of lines in memory.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator

from privet.datasets.limits import decoded_too_large
from privet.datasets.settings import DatasetSettings
from privet.kit.errors import PayloadTooLargeError

BOM = "\ufeff"


def blocks(chunks: Iterable[bytes], limits: DatasetSettings) -> Iterator[bytes]:
    """Runs of whole lines: every block but possibly the last ends with b"\\n". Refuses a
    line over max_line_bytes and a file over max_decoded_bytes as soon as it arrives."""
    pending = b""
    max_line, max_total = limits.max_line_bytes, limits.max_decoded_bytes
    total = lines = 0
    for chunk in chunks:
        total += len(chunk)
        if total > max_total:
            raise decoded_too_large(limits, max_total, ratio=False)
        data = pending + chunk if pending else chunk
        cut = data.rfind(b"\n") + 1
        pending = data[cut:]
        if len(pending) > max_line:
            line = lines + data.count(b"\n", 0, cut) + 1
            raise PayloadTooLargeError(
                f"line {line} is longer than {max_line} bytes, the limit "
                "(PRIVET_DATASETS_MAX_LINE_BYTES): shorten or split long texts, or ask the "
                "operator to raise the limit",
                limit="max_line_bytes",
                value=max_line,
                line=line,
            )
        if cut:
            lines += data.count(b"\n", 0, cut)
            yield data[:cut]
    if pending:
        yield pending


def split_keepends(block: bytes) -> list[bytes]:
    """A block's lines, each with its b"\\n" (the last may lack one)."""
    parts = block.split(b"\n")
    last = parts.pop()
    out = [p + b"\n" for p in parts]
    if last:
        out.append(last)
    return out


def physical_lines(chunks: Iterable[bytes], limits: DatasetSettings) -> Iterator[bytes]:
    """Physical lines (with their line end) from byte chunks; the last may lack one."""
    for block in blocks(chunks, limits):
        yield from split_keepends(block)


def text_lines(
    chunks: Iterable[bytes], bad: list[int], limits: DatasetSettings
) -> Iterator[list[str]]:
    """UTF-8 lines with their line ends, a block (list) at a time. A block that does not
    decode is decoded line by line: bad lines are replaced and their numbers put in `bad`.
    Blocks are decoded whole and split in C, which is what keeps ingest near csv speed."""
    number = 0
    first = True
    for block in blocks(chunks, limits):
        try:
            text = block.decode("utf-8")
        except UnicodeDecodeError:
            lines = []
            for raw in split_keepends(block):
                number += 1
                try:
                    lines.append(raw.decode("utf-8"))
                except UnicodeDecodeError:
                    bad.append(number)
                    lines.append(raw.decode("utf-8", "replace"))
        else:
            lines = text.split("\n")
            last = lines.pop()
            lines = [line + "\n" for line in lines]
            if last:
                lines.append(last)
            number += len(lines)
        if first and lines:
            first = False
            if lines[0].startswith(BOM):
                lines[0] = lines[0][1:]
        yield lines


def decoded(chunks: Iterable[bytes], bad: list[int], limits: DatasetSettings) -> Iterator[str]:
    """``text_lines`` one line at a time: what ``csv.reader`` consumes."""
    return itertools.chain.from_iterable(text_lines(chunks, bad, limits))
