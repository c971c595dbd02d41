"""One module per report kind: each builds a ``privet.reports.model.Report`` from the
domain services and cites the ledger events it relies on. ``privet.reports.registry``
lists the kinds served under ``/v1/reports/{kind}``; ``request_report`` is the answer to
one data-subject request, served under that request.

Call builders with a read session (``privet.db.read_session``) after ``integrate_now``,
so the data and the checkpoint are one consistent snapshot. Reports hold ids, digests,
declarations and counts: never a row's text, and a subject id only in the subject's own
access report.
"""
