"""Blob stores: where ciphertext lives. They never see plaintext or keys.

`put` takes an `EncryptedStream` (what `encrypt_stream` returns) and checks the format's
magic, so plaintext cannot be stored by mistake. Keys are opaque '/'-separated names,
blobs are immutable and writes are all-or-nothing: the shape of an S3-compatible store
(multipart upload completes or aborts, no rename semantics exposed), which can be added
later behind the same Protocol.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from hashlib import sha256
from pathlib import Path
from typing import BinaryIO, Protocol, runtime_checkable

from privet.crypto.errors import (
    BlobExistsError,
    BlobNotFoundError,
    CiphertextIntegrityError,
    InvalidBlobKeyError,
)
from privet.crypto.stream import MAGIC, EncryptedStream
from privet.kit.secretfiles import pid_alive

_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}(/[A-Za-z0-9][A-Za-z0-9_.-]{0,127}){0,7}$")
_TEMP = re.compile(r"^\.(?P<name>.+)\.tmp-(?P<pid>\d+)-[0-9a-f]{16}$")
READ_CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class BlobInfo:
    key: str
    size: int
    sha256: str
    """Digest of the ciphertext as stored: lets a copy be checked without any key."""


@runtime_checkable
class BlobStore(Protocol):
    """Immutable ciphertext blobs by key; implementations must be atomic per blob."""

    def put(self, key: str, stream: EncryptedStream) -> BlobInfo:
        """Store a whole encrypted stream under a new key, all or nothing."""
        ...

    def open(self, key: str) -> BinaryIO:
        """A binary reader over the stored ciphertext."""
        ...

    def iter_chunks(self, key: str, *, chunk_size: int = READ_CHUNK) -> Iterator[bytes]:
        """The stored ciphertext in chunks (bounded memory)."""
        ...

    def exists(self, key: str) -> bool: ...

    def size(self, key: str) -> int: ...

    def delete(self, key: str) -> bool:
        """Remove a blob; False if it was not there."""
        ...

    def list(self, prefix: str = "") -> Iterator[str]:
        """Keys under a prefix (for sweeping orphans against the registry)."""
        ...


def check_blob_key(key: str) -> str:
    """Blob keys are up to 8 '/'-separated segments of [A-Za-z0-9_.-], no '.' or '..'."""
    if not _KEY.match(key) or any(p in {".", ".."} for p in key.split("/")):
        raise InvalidBlobKeyError(f"invalid blob key {key!r}")
    return key


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _mkdirs(root: Path, path: Path) -> None:
    # mkdir(parents=True) would give intermediate directories the umask default, not 0700.
    for part in reversed((path, *path.parents)):
        if part == root or root in part.parents:
            part.mkdir(mode=0o700, exist_ok=True)


class LocalBlobStore:
    """Blobs as 0600 files under a 0700 directory (PRIVET_HOME/blobs by default).

    A write goes to a hidden temp file in the target directory, is fsynced, hard-linked to
    its final name (which fails if the blob exists) and the directory is fsynced: a crash
    leaves either the whole blob or a temp file, and temp files of dead writers are
    removed when a store is opened.
    """

    def __init__(self, root: Path, *, clean_orphans: bool = True) -> None:
        self.root = root
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
        if clean_orphans:
            self.clean_orphans()

    def _path(self, key: str) -> Path:
        return self.root.joinpath(*check_blob_key(key).split("/"))

    def clean_orphans(self, *, max_age_s: float = 24 * 3600) -> int:
        """Delete temp files left by crashed writers (dead pid, or older than max_age_s)."""
        removed = 0
        now = time.time()
        for dirpath, _dirs, files in os.walk(self.root):
            for name in files:
                match = _TEMP.match(name)
                if not match:
                    continue
                path = Path(dirpath, name)
                try:
                    stale = not pid_alive(int(match["pid"])) or (
                        now - path.stat().st_mtime > max_age_s
                    )
                    if stale:
                        path.unlink()
                        removed += 1
                except FileNotFoundError:
                    continue
        return removed

    def put(self, key: str, stream: EncryptedStream) -> BlobInfo:
        if not isinstance(stream, EncryptedStream):
            raise TypeError("blob stores only accept an EncryptedStream (see encrypt_stream)")
        final = self._path(key)
        if final.exists():
            raise BlobExistsError(f"blob {key!r} already exists", key=key)
        _mkdirs(self.root, final.parent)
        temp = final.with_name(f".{final.name}.tmp-{os.getpid()}-{secrets.token_hex(8)}")
        digest = sha256()
        size = 0
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb", buffering=0) as handle:
                first = True
                for chunk in stream:
                    if first:
                        if not chunk.startswith(MAGIC):
                            raise CiphertextIntegrityError(
                                "refusing to store data that is not a privet encrypted stream"
                            )
                        first = False
                    view = memoryview(chunk)
                    while view:
                        written = handle.write(view)
                        view = view[written or 0 :]
                    digest.update(chunk)
                    size += len(chunk)
                if first:
                    raise CiphertextIntegrityError("refusing to store an empty stream")
                os.fsync(handle.fileno())
            try:
                os.link(temp, final)
            except FileExistsError:
                raise BlobExistsError(f"blob {key!r} already exists", key=key) from None
            _fsync_dir(final.parent)
        finally:
            with contextlib.suppress(FileNotFoundError):
                temp.unlink()
        return BlobInfo(key=key, size=size, sha256=digest.hexdigest())

    def open(self, key: str) -> BinaryIO:
        try:
            return self._path(key).open("rb")
        except FileNotFoundError:
            raise BlobNotFoundError(f"blob {key!r} not found", key=key) from None

    def iter_chunks(self, key: str, *, chunk_size: int = READ_CHUNK) -> Iterator[bytes]:
        handle = self.open(key)

        def generate() -> Iterator[bytes]:
            with handle:
                while chunk := handle.read(chunk_size):
                    yield chunk

        return generate()

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def size(self, key: str) -> int:
        try:
            return self._path(key).stat().st_size
        except FileNotFoundError:
            raise BlobNotFoundError(f"blob {key!r} not found", key=key) from None

    def delete(self, key: str) -> bool:
        path = self._path(key)
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        _fsync_dir(path.parent)
        return True

    def list(self, prefix: str = "") -> Iterator[str]:
        for dirpath, _dirs, files in os.walk(self.root):
            rel = Path(dirpath).relative_to(self.root)
            for name in sorted(files):
                if name.startswith("."):
                    continue
                key = "/".join((*rel.parts, name))
                if key.startswith(prefix):
                    yield key
