"""Keyed digests of prediction inputs, and pseudonyms of subject ids.

An input is logged only as HMAC-SHA256 under a key derived (HKDF) from a 32-byte secret in
a 0600 file under ``settings.secrets_dir`` (``prediction_input_secret``). A plain hash of a
short text ("approve", a name, an account number) could be found by hashing guesses; the
keyed digest cannot be checked without the server's secret. Explanations recompute the
digest of a resubmitted text and compare it in constant time.

Subject ids reuse the datasets' pseudonymisation (``privet.datasets.pseudonym``), so one
subject has the same pseudonym in training lineage and in prediction events.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from pathlib import Path

from privet.config import Settings
from privet.datasets.pseudonym import pseudonymisation_key, pseudonymise
from privet.kit.secretfiles import derived_hmac_key, hmac_tag

SECRET_FILE = "prediction_input_secret"  # noqa: S105 - a file name, not a secret
_INFO = b"privet/inference/input-digest/v1"


def secret_path(settings: Settings) -> Path:
    return settings.secrets_dir / SECRET_FILE


def input_digest_key(settings: Settings) -> bytes:
    """The HMAC key for input digests (derived from the 0600 secret file)."""
    return derived_hmac_key(secret_path(settings), _INFO)


def input_digest(key: bytes, text: str) -> str:
    """``hmac-sha256:<hex>`` of the exact UTF-8 bytes of a text."""
    return hmac_tag(key, text)


@dataclass(frozen=True, slots=True)
class Digester:
    """Both keys, loaded once per process."""

    input_key: bytes
    subject_key: bytes

    @classmethod
    def from_settings(cls, settings: Settings) -> Digester:
        return cls(input_digest_key(settings), pseudonymisation_key(settings))

    def text(self, text: str) -> str:
        return input_digest(self.input_key, text)

    def subject(self, subject_id: str | None) -> str | None:
        return None if subject_id is None else pseudonymise(self.subject_key, subject_id)

    def matches(self, text: str, digest: str) -> bool:
        return hmac.compare_digest(self.text(text), digest)
