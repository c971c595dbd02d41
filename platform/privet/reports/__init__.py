"""Compliance reports: RoPA, model lineage, privacy budget, access log, DSR log, and the
answer to each data-subject request, in JSON, CSV, HTML and PDF.

``builders`` assembles a ``model.Report`` from the registry and cites ledger events
(``evidence``); ``render`` turns it into a format. See docs/COMPLIANCE.md.
"""

from privet.reports.builders import KINDS, build, build_request_report
from privet.reports.model import Report
from privet.reports.render import FORMATS, MEDIA_TYPES, filename, render

__all__ = [
    "FORMATS",
    "KINDS",
    "MEDIA_TYPES",
    "Report",
    "build",
    "build_request_report",
    "filename",
    "render",
]
