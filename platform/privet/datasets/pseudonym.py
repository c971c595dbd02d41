"""Pseudonymous subject ids for audit events: HMAC-SHA256 under a server-held key.

The key is derived (HKDF-SHA256) from a 32-byte secret in a 0600 file under
``settings.secrets_dir`` (``subject_pseudonym_secret``), created on first use. The same
subject id always gives the same pseudonym on this platform, so a reviewer holding a
subject id (and access to the server) can find its events, while the log itself holds
no identifier. Destroying the secret makes the pseudonyms unlinkable.
"""

from __future__ import annotations

import hmac
from hashlib import sha256
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from privet.config import Settings
from privet.kit.secretfiles import read_or_create_secret

SECRET_FILE = "subject_pseudonym_secret"  # noqa: S105 - a file name, not a secret
_INFO = b"privet/datasets/subject-pseudonym/v1"


def secret_path(settings: Settings) -> Path:
    return settings.secrets_dir / SECRET_FILE


def pseudonymisation_key(settings: Settings) -> bytes:
    """The HMAC key for subject pseudonyms (derived from the 0600 secret file)."""
    secret = read_or_create_secret(secret_path(settings))
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(secret)


def pseudonymise(key: bytes, subject_id: str) -> str:
    """``hmac-sha256:<hex>`` of a subject id: the only form a subject id takes in events."""
    return "hmac-sha256:" + hmac.new(key, subject_id.encode("utf-8"), sha256).hexdigest()
