"""Issuing a rendered report: each issued document's SHA-256 is recorded in the ledger
(``report.issued``), so a copy can later be matched to what the platform issued.

A streamed report is hashed as it is sent and recorded once its last byte is out; a
stream cut short (client gone, error) is not recorded as issued.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from contextlib import ExitStack

from sqlalchemy import Engine
from sqlmodel import Session

from privet import ledger
from privet.db import read_session, session_scope
from privet.reports.model import Report
from privet.reports.render import check_format, iter_render, render


def record_issued(
    engine: Engine, report: Report, fmt: str, digest: str, *, actor: str, project: str | None
) -> None:
    """The ``report.issued`` event of one document."""
    objects = {"report": report.kind}
    if report.kind == "dsr":
        objects["data_subject_request"] = report.data["request_id"]
    with session_scope(engine) as session:
        ledger.emit(
            session,
            type="report.issued",
            actor=actor,
            project=project,
            objects=objects,
            digests={"document": digest},
            details={
                "format": fmt,
                "tree_size": report.ledger.get("tree_size"),
                "cited_events": len(report.ledger.get("events", [])),
                "range": report.range,
            },
        )


def issue_whole(
    engine: Engine, report: Report, fmt: str, *, actor: str, project: str | None
) -> tuple[bytes, str]:
    """Render in memory, record, and return (document, digest): for the PDF and for a
    data-subject request's answer (one subject's data), whose digest goes in a header."""
    content = render(report, fmt)
    digest = "sha256:" + hashlib.sha256(content).hexdigest()
    record_issued(engine, report, fmt, digest, actor=actor, project=project)
    return content, digest


def issue_stream(
    engine: Engine,
    report: Report,
    fmt: str,
    *,
    actor: str,
    project: str | None,
    close: Callable[[], None],
) -> Iterator[bytes]:
    """The document as chunks (bounded memory), recorded when complete; ``close`` (the
    read session the report's rows come from) runs when the stream ends either way.
    Refusals (``check_format``) are raised here, before the first byte."""
    check_format(report, fmt)

    def chunks() -> Iterator[bytes]:
        sha = hashlib.sha256()
        try:
            for chunk in iter_render(report, fmt):
                sha.update(chunk)
                yield chunk
            record_issued(
                engine, report, fmt, "sha256:" + sha.hexdigest(), actor=actor, project=project
            )
        finally:
            close()

    return chunks()


def stream_report(
    engine: Engine,
    build: Callable[[Session], Report],
    fmt: str,
    *,
    actor: str,
    project: str | None,
) -> tuple[Report, Iterator[bytes]]:
    """Build a report on a read session held until its stream ends (its rows and cited
    events are read again as it is rendered) and return it with its chunks; a refusal
    or a failed build closes the session and raises before any byte is sent."""
    stack = ExitStack()
    try:
        report = build(stack.enter_context(read_session(engine)))
        chunks = issue_stream(engine, report, fmt, actor=actor, project=project, close=stack.close)
    except BaseException:
        stack.close()
        raise
    return report, chunks
