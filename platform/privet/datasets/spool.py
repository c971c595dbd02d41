"""An encrypted, seekable spool file for uploads that need random access (Parquet).

Parquet keeps its schema at the end of the file, so it cannot be parsed as it streams in.
The upload is spooled to a temporary file *encrypted* under a random key that exists only
in this process's memory (AES-256-GCM, 64 KiB segments, nonce = segment number, the
segment count and final length authenticated as associated data of the last segment), and
read back through a decrypting, seekable file object. A spool left by a crash is ciphertext
under a key that died with the process; ``clean_orphans`` removes such files at start.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import secrets
import time
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from privet.kit.secretfiles import ensure_private_dir, pid_alive

SEGMENT = 64 * 1024
TAG = 16
_NAME = re.compile(r"^\.spool-(?P<pid>\d+)-[0-9a-f]{16}\.tmp$")


def clean_orphans(directory: Path, *, max_age_s: float = 24 * 3600) -> int:
    """Delete spool files whose writer is dead (or that are older than max_age_s)."""
    if not directory.is_dir():
        return 0
    removed = 0
    now = time.time()
    for path in directory.iterdir():
        match = _NAME.match(path.name)
        if not match:
            continue
        try:
            if not pid_alive(int(match["pid"])) or now - path.stat().st_mtime > max_age_s:
                path.unlink()
                removed += 1
        except FileNotFoundError:
            continue
    return removed


class EncryptedSpool:
    """Write plaintext in, read it back seekably; only ciphertext reaches the disk."""

    def __init__(self, directory: Path) -> None:
        ensure_private_dir(directory)
        self.path = directory / f".spool-{os.getpid()}-{secrets.token_hex(8)}.tmp"
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        self._file = os.fdopen(fd, "r+b", buffering=0)
        self._aead = AESGCM(AESGCM.generate_key(bit_length=256))
        self._buf = bytearray()
        self._segments = 0
        self.size = 0
        self._finished = False

    def _seal(self, data: bytes, *, last: bool) -> None:
        aad = b"last:" + self.size.to_bytes(8, "big") if last else b""
        nonce = self._segments.to_bytes(12, "big")
        self._file.write(self._aead.encrypt(nonce, data, aad))
        self._segments += 1

    def write(self, data: bytes) -> None:
        if self._finished:
            raise ValueError("spool already finished")
        self._buf += data
        self.size += len(data)
        while len(self._buf) > SEGMENT:
            self._seal(bytes(self._buf[:SEGMENT]), last=False)
            del self._buf[:SEGMENT]

    def finish(self) -> None:
        self._seal(bytes(self._buf), last=True)
        self._buf.clear()
        self._finished = True

    def reader(self) -> io.BufferedReader:
        if not self._finished:
            self.finish()
        return io.BufferedReader(_SpoolReader(self), buffer_size=SEGMENT)

    def _segment(self, index: int) -> bytes:
        last = index == self._segments - 1
        self._file.seek(index * (SEGMENT + TAG))
        blob = self._file.read(SEGMENT + TAG)
        aad = b"last:" + self.size.to_bytes(8, "big") if last else b""
        try:
            return self._aead.decrypt(index.to_bytes(12, "big"), blob, aad)
        except InvalidTag:
            raise OSError("spool segment failed authentication") from None

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._file.close()
        self.path.unlink(missing_ok=True)

    def __enter__(self) -> EncryptedSpool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _SpoolReader(io.RawIOBase):
    def __init__(self, spool: EncryptedSpool) -> None:
        super().__init__()
        self._spool = spool
        self._pos = 0
        self._cache: tuple[int, bytes] = (-1, b"")

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._spool.size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        if self._pos >= self._spool.size:
            return 0
        index, offset = divmod(self._pos, SEGMENT)
        if self._cache[0] != index:
            self._cache = (index, self._spool._segment(index))
        data = self._cache[1]
        n = min(len(buffer), len(data) - offset)
        buffer[:n] = data[offset : offset + n]
        self._pos += n
        return n
