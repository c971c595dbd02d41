"""API key format and digests. Keys are shown once and stored only as HMAC-SHA256 digests.

Format: `pvt_<key id>_<secret>`. The recognizable prefix lets secret scanners find leaked
keys; the key id lets the server find the row and compare digests in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

PREFIX = "pvt"
_KEY_RE = re.compile(r"^pvt_([A-Za-z0-9]{16})_([A-Za-z0-9_-]{43})$")


def generate() -> tuple[str, str]:
    """A new (key id, full key). The full key is returned to the caller once, never stored."""
    key_id = "".join(
        secrets.choice("ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789")
        for _ in range(16)
    )
    return f"key_{key_id}", f"{PREFIX}_{key_id}_{secrets.token_urlsafe(32)}"


def parse_key_id(key: str) -> str | None:
    """The row id named by a presented key, or None if it is not shaped like a privet key."""
    match = _KEY_RE.match(key)
    return f"key_{match.group(1)}" if match else None


def digest(pepper: bytes, key: str) -> str:
    """HMAC-SHA256 of the key under the server's pepper, hex."""
    return hmac.new(pepper, key.encode(), hashlib.sha256).hexdigest()


def matches(pepper: bytes, key: str, stored_digest: str) -> bool:
    """Constant-time comparison of a presented key against the stored digest."""
    return hmac.compare_digest(digest(pepper, key), stored_digest)
