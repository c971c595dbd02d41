"""Datasets: streaming encrypted upload, declarations, immutable versions, erasure by data
subject and retention. See docs/DATASETS.md. One module per step: ``upload`` (stage),
``registration`` (record), ``catalog`` (look up), ``rows`` (read for training), ``usage``
(lineage), ``erasure`` and ``retention`` (both shred through ``shredding``)."""
