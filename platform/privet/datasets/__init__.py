"""Datasets: streaming encrypted upload, declarations, immutable versions, erasure by data
subject and retention. See docs/DATASETS.md and ``privet.datasets.service``."""
