"""The secrets under $PRIVET_HOME/secrets (master key, ledger signing key, API key pepper and
the other HMAC secrets) in every encoding they could leak in: raw bytes, hex, base64 (plain
and URL-safe, with and without padding) and, for PEM files, each base64 body line."""

from __future__ import annotations

import base64
from pathlib import Path


def secret_needles(home: Path) -> dict[str, list[bytes]]:
    found: dict[str, list[bytes]] = {}
    for path in sorted((home / "secrets").rglob("*")):
        if not path.is_file():
            continue
        data = path.read_bytes()
        needles: list[bytes] = []
        if data.startswith(b"-----BEGIN"):
            needles += [
                line.strip()
                for line in data.splitlines()
                if line.strip() and not line.startswith(b"-----")
            ]
            # the raw private key behind the PEM as well
            from cryptography.hazmat.primitives import serialization

            key = serialization.load_pem_private_key(data, password=None)
            try:
                raw = key.private_bytes(  # type: ignore[union-attr]
                    serialization.Encoding.Raw,
                    serialization.PrivateFormat.Raw,
                    serialization.NoEncryption(),
                )
            except (ValueError, TypeError):
                raw = b""
            data = raw
        if len(data) >= 16:
            needles += [
                data,
                data.hex().encode(),
                data.hex().upper().encode(),
                base64.b64encode(data),
                base64.b64encode(data).rstrip(b"="),
                base64.urlsafe_b64encode(data).rstrip(b"="),
            ]
        found[str(path.relative_to(home))] = [n for n in needles if len(n) >= 16]
    return found


def leaks(home: Path, blob: bytes | str) -> list[str]:
    """Which secrets (by file) appear in `blob`."""
    data = blob.encode() if isinstance(blob, str) else blob
    return [
        name for name, needles in secret_needles(home).items() if any(n in data for n in needles)
    ]
