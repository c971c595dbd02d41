"""Least secrets per process: a training worker opens the master key and nothing else of
the secrets directory (no API-key pepper, no ledger signing key, no prediction or
pseudonym HMAC secret), and multi-host DP training is refused on an untrusted network."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.jobs.conftest import (  # noqa: F401
    dataset_version,
    engineer,
    job_settings,
    project,
    submit,
    tiny_model,
)

#: Runs `privet worker --once` with an audit hook that records every file it opens under
#: the secrets directory (argv[1]) into argv[2].
_WORKER = """
import json, os, sys
secrets, out = os.path.realpath(sys.argv[1]), sys.argv[2]
opened = set()
def hook(event, args):
    if event == "open" and isinstance(args[0], (str, bytes, os.PathLike)):
        path = os.path.realpath(os.fsdecode(args[0]))
        if path.startswith(secrets + os.sep):
            opened.add(os.path.relpath(path, secrets))
sys.addaudithook(hook)
sys.argv = ["privet-worker", "--once", "--idle-exit", "30"]
import typer
from privet.cli.worker import worker
try:
    typer.run(worker)
except SystemExit:
    pass
with open(out, "w") as f:
    json.dump(sorted(opened), f)
"""


def test_the_worker_opens_only_the_master_key(  # type: ignore[no-untyped-def]
    client,
    runtime,
    project,  # noqa: F811
    engineer,  # noqa: F811
    dataset_version,  # noqa: F811
    tiny_model,  # noqa: F811
    db_url,
    tmp_path: Path,
) -> None:
    from privet.datasets.pseudonym import pseudonymisation_key
    from privet.inference.digests import input_digest_key
    from privet.ledger.settings import get_ledger_settings
    from privet.ledger.signer import load_signer

    settings = runtime.settings
    secrets = settings.secrets_dir
    # Every secret the gateway holds exists, so a worker that reads them would find them.
    load_signer(secrets, get_ledger_settings().signing_key_file, "test")
    pseudonymisation_key(settings)
    input_digest_key(settings)
    held = {p.relative_to(secrets).as_posix() for p in secrets.rglob("*") if p.is_file()}
    assert {"api_key_pepper", get_ledger_settings().signing_key_file} <= held, held

    job = submit(client, engineer, project, dataset_version["id"], epochs=1)
    assert job.status_code == 201, job.text
    out = tmp_path / "opened.json"
    env = {
        **os.environ,
        "PRIVET_HOME": str(settings.home),
        "PRIVET_DATABASE_URL": db_url,
        "PRIVET_JOBS_EXTRA_CATALOG": str(tiny_model),
        "PRIVET_JOBS_SECURE_NOISE": "false",
        "PRIVET_EXECUTOR": "local",
    }
    env.pop("PRIVET_RAY_ADDRESS", None)
    result = subprocess.run(
        [sys.executable, "-c", _WORKER, str(secrets), str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.exists(), result.stdout[-2000:] + result.stderr[-4000:]
    done = client.get(
        f"/v1/projects/{project}/training-jobs/{job.json()['id']}", headers=engineer.headers
    ).json()
    assert done["state"] == "succeeded", (done, result.stderr[-3000:])
    opened = json.loads(out.read_text())
    assert opened, "the worker must have opened the master key"
    assert all(p.startswith("kek/") for p in opened), f"the worker opened {opened}"


def test_multi_host_training_is_refused_unless_the_network_is_trusted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Ranks on several nodes all-reduce un-noised clipped gradients in plaintext over
    gloo/NCCL: refused unless PRIVET_TRAINING_TRUSTED_NETWORK=true; ranks on one node talk
    over loopback."""
    from privet.config import clear_settings_caches
    from privet.executors.ray_executor import UntrustedNetworkError, collective_network
    from privet.executors.settings import get_executor_settings

    monkeypatch.delenv("PRIVET_TRAINING_TRUSTED_NETWORK", raising=False)
    clear_settings_caches()
    settings = get_executor_settings()
    assert settings.training_trusted_network is False
    assert collective_network(["10.0.0.5", "10.0.0.5"], settings) == "loopback"
    with pytest.raises(UntrustedNetworkError, match="PRIVET_TRAINING_TRUSTED_NETWORK"):
        collective_network(["10.0.0.5", "10.0.0.6"], settings)
    monkeypatch.setenv("PRIVET_TRAINING_TRUSTED_NETWORK", "true")
    clear_settings_caches()
    assert collective_network(["10.0.0.5", "10.0.0.6"], get_executor_settings()) == "network"
