"""Fixtures for the insider suite: registered model versions on the tiny BERT of the
inference tests (through the registry's own service, no training), and the tiny BERT the
job tests train (reused, not copied)."""

from tests.inference.conftest import (  # noqa: F401
    _fast_state_ttl,
    make_version,
    project,
    tiny_base,
)
from tests.jobs.conftest import tiny_model  # noqa: F401
