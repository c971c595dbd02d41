"""The privet streaming AEAD format (docs/ENCRYPTION.md): AES-256-GCM over 64 KiB segments.

Encryption and decryption are generators that hold at most about two segments, so a blob
of any size streams in bounded memory. Every way a stored stream can be damaged (modified
header, flipped bit, dropped/duplicated/reordered segment, truncation, a blob moved to
another object) raises `CiphertextIntegrityError`; plaintext is only ever yielded after its
segment authenticated.
"""

from __future__ import annotations

import hmac
import io
import os
import struct
from collections.abc import Iterable, Iterator
from hashlib import sha256
from typing import BinaryIO, Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from privet.crypto.errors import CiphertextIntegrityError
from privet.crypto.refs import ObjectRef, check_part

MAGIC: Final = b"\x89PRIVET\n"
FORMAT_VERSION: Final = 1
ALG_AES256GCM_HKDF_SHA256: Final = 1
SEGMENT_SIZE: Final = 64 * 1024
TAG_SIZE: Final = 16
SALT_SIZE: Final = 32
MAC_SIZE: Final = 32
DATA_KEY_SIZE: Final = 32
_MIN_SEGMENT: Final = 4 * 1024
_MAX_SEGMENT: Final = 16 * 1024 * 1024
_MAX_SEGMENTS: Final = 1 << 48
_INFO_LABEL: Final = b"privet/stream/v1"
_FIXED: Final = struct.Struct(">8sBBIB")  # magic, version, alg, segment size, key-ref length

Source = Iterable[bytes] | BinaryIO


def _lp(value: str) -> bytes:
    raw = value.encode()
    return struct.pack(">H", len(raw)) + raw


def _derive(data_key: bytes, salt: bytes, key_ref: str, ref: ObjectRef, part: str) -> bytes:
    if len(data_key) != DATA_KEY_SIZE:
        raise ValueError("data keys are 32 bytes")
    info = b"".join(
        (
            _INFO_LABEL,
            _lp(key_ref),
            _lp(ref.kind),
            _lp(ref.object_id),
            _lp(ref.project_id),
            _lp(part),
        )
    )
    return HKDF(algorithm=hashes.SHA256(), length=64, salt=salt, info=info).derive(data_key)


def _nonce(counter: int, last: bool) -> bytes:
    if counter >= _MAX_SEGMENTS:
        raise CiphertextIntegrityError("stream has too many segments")
    return counter.to_bytes(11, "big") + (b"\x01" if last else b"\x00")


def _header_body(key_ref: str, salt: bytes, segment_size: int) -> bytes:
    ref = key_ref.encode()
    if not 0 < len(ref) < 256:
        raise ValueError("key_ref must be 1-255 bytes")
    fixed = _FIXED.pack(MAGIC, FORMAT_VERSION, ALG_AES256GCM_HKDF_SHA256, segment_size, len(ref))
    return fixed + ref + salt


def _as_chunks(source: Source, size: int) -> Iterator[bytes]:
    read = getattr(source, "read", None)
    if read is not None:
        while True:
            chunk = read(size)
            if not chunk:
                return
            yield chunk
    else:
        yield from source


def _segments(chunks: Iterable[bytes], size: int) -> Iterator[tuple[bytes | memoryview, bool]]:
    """Cut chunks into `size`-byte segments, flagging the last; zero-copy when aligned.

    A segment is released only once more data is known to follow it, because the last
    segment must be encrypted with the last-segment flag.
    """
    held: list[memoryview] = []
    held_len = 0

    def take(n: int) -> bytes | memoryview:
        nonlocal held_len
        first = held[0]
        if len(first) >= n:
            held[0] = first[n:]
            if not len(held[0]):
                held.pop(0)
            held_len -= n
            return first[:n]
        out = bytearray()
        while len(out) < n:
            piece = held[0]
            need = n - len(out)
            out += piece[:need]
            if len(piece) > need:
                held[0] = piece[need:]
            else:
                held.pop(0)
        held_len -= n
        return bytes(out)

    for chunk in chunks:
        if not chunk:
            continue
        # Views only of immutable bytes: a caller may reuse a bytearray after yielding it.
        view = memoryview(chunk if isinstance(chunk, bytes) else bytes(chunk))
        held.append(view)
        held_len += len(view)
        while held_len > size:
            yield take(size), False
    yield (take(held_len) if held_len else b""), True


class EncryptedStream(Iterator[bytes]):
    """Ciphertext chunks of the privet format: the only thing a BlobStore accepts."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks

    def __iter__(self) -> EncryptedStream:
        return self

    def __next__(self) -> bytes:
        return next(self._chunks)


def encrypt_stream(
    source: Source,
    *,
    data_key: bytes,
    key_ref: str,
    ref: ObjectRef,
    part: str = "data",
    segment_size: int = SEGMENT_SIZE,
) -> EncryptedStream:
    """Encrypt plaintext chunks (or a binary file) into the privet streaming format.

    `key_ref` names the data key (its registry id) in the header; the key itself never
    enters the blob, so rotation rewraps it without touching data and shredding it
    leaves no copy behind.
    """
    check_part(part)
    if not _MIN_SEGMENT <= segment_size <= _MAX_SEGMENT:
        raise ValueError("segment_size out of range")
    salt = os.urandom(SALT_SIZE)
    okm = _derive(data_key, salt, key_ref, ref, part)
    body = _header_body(key_ref, salt, segment_size)
    header = body + hmac.new(okm[32:], body, sha256).digest()
    aead = AESGCM(okm[:32])

    def generate() -> Iterator[bytes]:
        yield header
        for counter, (segment, last) in enumerate(
            _segments(_as_chunks(source, segment_size), segment_size)
        ):
            yield aead.encrypt(_nonce(counter, last), segment, None)

    return EncryptedStream(generate())


class _Reader:
    """Exact-size reads over a file or an iterator of arbitrary chunks."""

    def __init__(self, source: Source) -> None:
        self._read = getattr(source, "read", None)
        self._iter = None if self._read is not None else iter(source)
        self._buf = bytearray()

    def read(self, n: int) -> bytes:
        """`n` bytes, fewer only at end of stream."""
        if self._read is not None:
            data = self._read(n)
            if len(data) == n or not data:
                return bytes(data)
            parts = [data]
            got = len(data)
            while got < n:
                more = self._read(n - got)
                if not more:
                    break
                parts.append(more)
                got += len(more)
            return b"".join(parts)
        assert self._iter is not None
        while len(self._buf) < n:
            chunk = next(self._iter, None)
            if chunk is None:
                break
            if not self._buf and len(chunk) == n:
                return bytes(chunk)
            self._buf += chunk
        out = bytes(self._buf[:n])
        del self._buf[:n]
        return out


def read_header_key_ref(prefix: bytes) -> str:
    """The data-key id named in a stream's header (unauthenticated: for lookups only)."""
    if len(prefix) < _FIXED.size:
        raise CiphertextIntegrityError("not a privet encrypted stream: too short")
    magic, _version, _alg, _seg, ref_len = _FIXED.unpack_from(prefix)
    if magic != MAGIC or len(prefix) < _FIXED.size + ref_len:
        raise CiphertextIntegrityError("not a privet encrypted stream")
    return prefix[_FIXED.size : _FIXED.size + ref_len].decode("ascii", "replace")


def decrypt_stream(
    source: Source,
    *,
    data_key: bytes,
    key_ref: str,
    ref: ObjectRef,
    part: str = "data",
) -> Iterator[bytes]:
    """Decrypt a privet stream, yielding each segment's plaintext once it authenticated.

    Raises `CiphertextIntegrityError` on any damage. Segments before the damage were
    authentic and may already have been yielded: callers must treat an exception as the
    failure of the whole read (discard what they got), as with any streaming AEAD.
    """
    check_part(part)
    reader = _Reader(source)
    fixed = reader.read(_FIXED.size)
    if len(fixed) < _FIXED.size:
        raise CiphertextIntegrityError("truncated header: not a privet encrypted stream")
    magic, version, alg, segment_size, ref_len = _FIXED.unpack(fixed)
    if magic != MAGIC:
        raise CiphertextIntegrityError("bad magic: not a privet encrypted stream")
    if version != FORMAT_VERSION or alg != ALG_AES256GCM_HKDF_SHA256:
        raise CiphertextIntegrityError(
            f"unsupported format version {version} / algorithm {alg} (header modified?)"
        )
    if not _MIN_SEGMENT <= segment_size <= _MAX_SEGMENT:
        raise CiphertextIntegrityError("segment size out of range (header modified?)")
    rest = reader.read(ref_len + SALT_SIZE + MAC_SIZE)
    if len(rest) < ref_len + SALT_SIZE + MAC_SIZE:
        raise CiphertextIntegrityError("truncated header")
    stored_ref = rest[:ref_len]
    salt = rest[ref_len : ref_len + SALT_SIZE]
    mac = rest[ref_len + SALT_SIZE :]
    if stored_ref != key_ref.encode():
        raise CiphertextIntegrityError(
            "blob is encrypted under another data key: it belongs to another object "
            "(blobs swapped?) or its header was modified",
            stored_key_ref=stored_ref.decode("ascii", "replace"),
            expected_key_ref=key_ref,
        )
    okm = _derive(data_key, salt, key_ref, ref, part)
    body = fixed + rest[: ref_len + SALT_SIZE]
    if not hmac.compare_digest(hmac.new(okm[32:], body, sha256).digest(), mac):
        raise CiphertextIntegrityError(
            "header authentication failed: header modified, or blob bound to another "
            "object, kind, project or part"
        )
    return _decrypt_segments(reader, AESGCM(okm[:32]), segment_size + TAG_SIZE)


def _decrypt_segments(reader: _Reader, aead: AESGCM, ct_size: int) -> Iterator[bytes]:
    current = reader.read(ct_size)
    if not current:
        raise CiphertextIntegrityError("truncated stream: no segments after the header")
    counter = 0
    while True:
        following = reader.read(ct_size) if len(current) == ct_size else b""
        last = not following
        if len(current) < TAG_SIZE:
            raise CiphertextIntegrityError(f"truncated stream: segment {counter} is cut short")
        try:
            plain = aead.decrypt(_nonce(counter, last), current, None)
        except InvalidTag:
            if last and _opens(aead, counter, current, last=False):
                raise CiphertextIntegrityError(
                    f"truncated stream: segment {counter} is not the last one; "
                    "the segments after it are missing"
                ) from None
            raise CiphertextIntegrityError(
                f"segment {counter} failed authentication: modified, reordered, duplicated, "
                "or taken from another stream"
            ) from None
        if last and counter > 0 and not plain:
            raise CiphertextIntegrityError("non-canonical stream: empty final segment")
        yield plain
        if last:
            return
        current = following
        counter += 1


def _opens(aead: AESGCM, counter: int, segment: bytes, *, last: bool) -> bool:
    try:
        aead.decrypt(_nonce(counter, last), segment, None)
    except InvalidTag:
        return False
    return True


def seal(
    plaintext: bytes, *, data_key: bytes, key_ref: str, ref: ObjectRef, part: str = "data"
) -> bytes:
    """One-shot encryption of a small object (same format as the stream)."""
    return b"".join(
        encrypt_stream([plaintext], data_key=data_key, key_ref=key_ref, ref=ref, part=part)
    )


def unseal(
    ciphertext: bytes, *, data_key: bytes, key_ref: str, ref: ObjectRef, part: str = "data"
) -> bytes:
    """One-shot decryption; returns nothing unless the whole object authenticated."""
    return b"".join(
        decrypt_stream(
            io.BytesIO(ciphertext), data_key=data_key, key_ref=key_ref, ref=ref, part=part
        )
    )


class ChunkReader(io.RawIOBase):
    """A read-only binary file over an iterator of chunks (e.g. `decrypt_stream`)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        super().__init__()
        self._chunks = chunks
        self._pending = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        while not len(self._pending):
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._pending = memoryview(chunk)
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n

    def close(self) -> None:
        close = getattr(self._chunks, "close", None)
        if close is not None:
            close()
        super().close()
