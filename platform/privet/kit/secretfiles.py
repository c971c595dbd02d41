"""Local secret files (API-key pepper, signing key, local master key) with 0600 permissions.

Creation is atomic and exclusive, so two processes starting at once agree on one secret.
"""

from __future__ import annotations

import hmac
import os
import secrets
from hashlib import sha256
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


def ensure_private_dir(path: Path) -> Path:
    """Create `path` (mode 0700) if missing and return it."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def write_secret_file(path: Path, data: bytes) -> bool:
    """Write `data` to a new 0600 file; False if the file already exists (it is kept).

    The data is written to a temporary file first and hard-linked into place, so a reader
    never sees a half-written secret.
    """
    ensure_private_dir(path.parent)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        return True
    finally:
        tmp.unlink(missing_ok=True)


def read_or_create_secret(path: Path, size: int = 32) -> bytes:
    """The random secret stored at `path`, created on first use."""
    write_secret_file(path, secrets.token_bytes(size))
    data = path.read_bytes()
    if len(data) != size:
        raise RuntimeError(f"secret file {path} is corrupt: expected {size} bytes")
    return data


def derived_hmac_key(path: Path, info: bytes) -> bytes:
    """An HMAC key derived (HKDF-SHA256, ``info`` naming its one use) from the secret file at
    ``path``: one secret per use, so destroying one (e.g. the subject pseudonyms') leaves the
    others working."""
    secret = read_or_create_secret(path)
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(secret)


def hmac_tag(key: bytes, text: str) -> str:
    """``hmac-sha256:<hex>`` of the UTF-8 bytes of ``text``: the form keyed digests take in
    events (a plain hash of a short text could be found by hashing guesses)."""
    return "hmac-sha256:" + hmac.new(key, text.encode("utf-8"), sha256).hexdigest()


def pid_alive(pid: int) -> bool:
    """Whether process `pid` still runs (a temp file named after a live writer is kept)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
