"""Data-subject requests (access, erasure, objection), their deadlines and the request log.

- ``service``: the request log, sealed subject ids, objections, project settings (RoPA);
- ``discovery``: where a subject's data is (datasets, models, predictions);
- ``flows``: carrying a request out (intake, access, erasure and its retraining);
- ``remedies``: what happens to a model version trained on erased rows.

The reports that answer reviewers are built by ``privet.reports``. See docs/COMPLIANCE.md.
"""
