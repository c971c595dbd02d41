"""Fixtures of the insider suite: the tiny BERT the job tests train (reused, not copied)."""

from __future__ import annotations

from tests.jobs.conftest import tiny_model

__all__ = ["tiny_model"]
