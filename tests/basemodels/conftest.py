from tests.jobs.conftest import (  # noqa: F401
    approver,
    dataset_version,
    engineer,
    job_settings,
    make_worker,
    project,
    tiny_model,
)
