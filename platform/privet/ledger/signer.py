"""The checkpoint signing key: Ed25519, in a 0600 PEM file under settings.secrets_dir.

The key never enters the database, so whoever can rewrite the database (its owner, a
backup restore) still cannot produce checkpoints that verify under the log's key.
"""

from __future__ import annotations

from pathlib import Path

from privet.kit.process_state import ProcessRegistry
from privet.kit.secretfiles import write_secret_file
from privet_audit.checkpoint import Signer, Verifier, generate_signing_key

__all__ = ["load_signer", "signing_key_path"]

_signers: ProcessRegistry[tuple[Path, str], Signer] = ProcessRegistry(
    "ledger.signers",
    why="the signing key file is read (or created) once per process, whichever Runtime, "
    "worker or CLI command signs first",
)


def signing_key_path(secrets_dir: Path, file_name: str) -> Path:
    return secrets_dir / file_name


def load_signer(secrets_dir: Path, file_name: str, origin: str) -> Signer:
    """The log's signer (key name = origin), creating the key file on first start.

    Creation is atomic and exclusive (hard link into place), so processes starting at
    once agree on one key.
    """
    path = signing_key_path(secrets_dir, file_name)

    def load() -> Signer:
        if not path.exists():
            write_secret_file(path, generate_signing_key())
        return Signer.from_pem(origin, path.read_bytes())

    return _signers.get_or_create((path, origin), load)


def verifier_for(signer: Signer) -> Verifier:
    return signer.verifier
