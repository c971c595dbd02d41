"""Data-subject requests (access, erasure, objection), their deadlines and the request log.

Service functions are in ``privet.compliance.service``; the reports that answer reviewers
are built by ``privet.reports``. See docs/COMPLIANCE.md.
"""
