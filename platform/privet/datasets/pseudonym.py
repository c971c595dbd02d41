"""Pseudonymous subject ids for audit events: HMAC-SHA256 under a server-held key.

The key is derived (HKDF-SHA256) from a 32-byte secret in a 0600 file under
``settings.secrets_dir`` (``subject_pseudonym_secret``), created on first use. The same
subject id always gives the same pseudonym on this platform, so a reviewer holding a
subject id (and access to the server) can find its events, while the log itself holds
no identifier. Destroying the secret makes the pseudonyms unlinkable.
"""

from __future__ import annotations

from pathlib import Path

from privet.config import Settings
from privet.kit.secretfiles import derived_hmac_key, hmac_tag

SECRET_FILE = "subject_pseudonym_secret"  # noqa: S105 - a file name, not a secret
_INFO = b"privet/datasets/subject-pseudonym/v1"


def secret_path(settings: Settings) -> Path:
    return settings.secrets_dir / SECRET_FILE


def pseudonymisation_key(settings: Settings) -> bytes:
    """The HMAC key for subject pseudonyms (derived from the 0600 secret file)."""
    return derived_hmac_key(secret_path(settings), _INFO)


def pseudonymise(key: bytes, subject_id: str) -> str:
    """``hmac-sha256:<hex>`` of a subject id: the only form a subject id takes in events."""
    return hmac_tag(key, subject_id)
