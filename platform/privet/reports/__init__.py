"""Compliance reports: RoPA, model lineage, privacy budget, access log, DSR log,
monitoring, and the answer to each data-subject request, in JSON, CSV, HTML and PDF.

``registry`` names the kinds (``kind.ReportKind``: builder, description, parameters,
formats); each kind's builder lives in ``kinds/`` and assembles a ``model.Report``
citing ledger events (``evidence``); ``render`` turns it into a format. See
docs/COMPLIANCE.md.
"""

from privet.reports.kind import ReportKind
from privet.reports.kinds.request_report import build_request_report
from privet.reports.model import Report
from privet.reports.registry import KINDS, REGISTRY, build, get_kind
from privet.reports.render import FORMATS, MEDIA_TYPES, filename, render

__all__ = [
    "FORMATS",
    "KINDS",
    "MEDIA_TYPES",
    "REGISTRY",
    "Report",
    "ReportKind",
    "build",
    "build_request_report",
    "filename",
    "get_kind",
    "render",
]
