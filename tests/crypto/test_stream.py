"""The streaming format: round trips, and every kind of damage is an error, never garbage."""

from __future__ import annotations

import io
import os
import tracemalloc
from collections.abc import Callable, Iterator

import pytest

from privet.crypto import CiphertextIntegrityError, ObjectRef
from privet.crypto.stream import (
    MAGIC,
    SEGMENT_SIZE,
    TAG_SIZE,
    ChunkReader,
    decrypt_stream,
    encrypt_stream,
    read_header_key_ref,
    seal,
    unseal,
)

KEY = bytes(range(32))
KEY_REF = "dk_test0000000000"
REF = ObjectRef("dataset_version", "dsv_1", "prj_1")
CT_SEG = SEGMENT_SIZE + TAG_SIZE
HEADER_LEN = 8 + 1 + 1 + 4 + 1 + len(KEY_REF) + 32 + 32


def enc(plain: bytes, *, chunk: int = 10_000, ref: ObjectRef = REF, part: str = "data") -> bytes:
    chunks = [plain[i : i + chunk] for i in range(0, len(plain), chunk)]
    return b"".join(encrypt_stream(chunks, data_key=KEY, key_ref=KEY_REF, ref=ref, part=part))


def dec(ct: bytes, **kw: object) -> bytes:
    args: dict[str, object] = {"data_key": KEY, "key_ref": KEY_REF, "ref": REF, "part": "data"}
    args.update(kw)
    return b"".join(decrypt_stream(io.BytesIO(ct), **args))  # type: ignore[arg-type]


def segments(ct: bytes) -> tuple[bytes, list[bytes]]:
    body = ct[HEADER_LEN:]
    return ct[:HEADER_LEN], [body[i : i + CT_SEG] for i in range(0, len(body), CT_SEG)]


@pytest.mark.parametrize(
    "size",
    [0, 1, 100, SEGMENT_SIZE - 1, SEGMENT_SIZE, SEGMENT_SIZE + 1, 3 * SEGMENT_SIZE, 200_001],
)
@pytest.mark.parametrize("chunk", [1000, SEGMENT_SIZE, 3 * SEGMENT_SIZE + 7])
def test_round_trip_any_size_and_chunking(size: int, chunk: int) -> None:
    plain = os.urandom(size)
    ct = enc(plain, chunk=chunk)
    assert ct.startswith(MAGIC)
    assert len(ct) == HEADER_LEN + max(1, -(-size // SEGMENT_SIZE)) * TAG_SIZE + size
    assert dec(ct) == plain
    # Ciphertext arriving in odd chunk sizes decrypts the same.
    pieces = [ct[i : i + 777] for i in range(0, len(ct), 777)]
    assert b"".join(decrypt_stream(pieces, data_key=KEY, key_ref=KEY_REF, ref=REF)) == plain


def test_file_like_in_and_out() -> None:
    plain = os.urandom(5 * SEGMENT_SIZE + 3)
    ct = b"".join(encrypt_stream(io.BytesIO(plain), data_key=KEY, key_ref=KEY_REF, ref=REF))
    reader = io.BufferedReader(
        ChunkReader(decrypt_stream(io.BytesIO(ct), data_key=KEY, key_ref=KEY_REF, ref=REF))
    )
    assert reader.read(10) == plain[:10]
    assert reader.read() == plain[10:]


def test_reused_bytearray_chunks_are_copied() -> None:
    buf = bytearray(SEGMENT_SIZE)

    def producer() -> Iterator[bytes]:
        for value in (1, 2, 3):
            buf[:] = bytes([value]) * SEGMENT_SIZE
            yield buf  # type: ignore[misc]

    ct = b"".join(encrypt_stream(producer(), data_key=KEY, key_ref=KEY_REF, ref=REF))
    assert dec(ct) == b"\x01" * SEGMENT_SIZE + b"\x02" * SEGMENT_SIZE + b"\x03" * SEGMENT_SIZE


def test_one_shot_and_fresh_salt_every_time() -> None:
    a = seal(b"small secret", data_key=KEY, key_ref=KEY_REF, ref=REF)
    b = seal(b"small secret", data_key=KEY, key_ref=KEY_REF, ref=REF)
    assert a != b
    assert b"small secret" not in a
    assert KEY not in a
    assert unseal(a, data_key=KEY, key_ref=KEY_REF, ref=REF) == b"small secret"
    assert read_header_key_ref(a) == KEY_REF


def authentic_prefix_then_error(ct: bytes, plain: bytes) -> str:
    """Decrypt damaged ciphertext: it must raise, and whatever came out before is authentic."""
    got = bytearray()
    with pytest.raises(CiphertextIntegrityError) as info:
        for piece in decrypt_stream(io.BytesIO(ct), data_key=KEY, key_ref=KEY_REF, ref=REF):
            got += piece
    assert plain.startswith(bytes(got))
    return str(info.value)


PLAIN = os.urandom(3 * SEGMENT_SIZE + 1234)


def test_every_header_byte_is_authenticated() -> None:
    ct = enc(PLAIN)
    for pos in range(HEADER_LEN):
        damaged = bytearray(ct)
        damaged[pos] ^= 0x01
        message = authentic_prefix_then_error(bytes(damaged), PLAIN)
        assert message


Tamper = Callable[[bytes, list[bytes]], bytes]


def flip(data: bytes, pos: int) -> bytes:
    out = bytearray(data)
    out[pos] ^= 0x80
    return bytes(out)


TAMPERS: dict[str, tuple[Tamper, str]] = {
    "flip in segment body": (lambda h, s: h + s[0] + flip(s[1], 100) + s[2] + s[3], "segment 1"),
    "flip in tag": (lambda h, s: h + s[0] + flip(s[1], CT_SEG - 1) + s[2] + s[3], "segment 1"),
    "flip in last segment": (lambda h, s: h + s[0] + s[1] + s[2] + flip(s[3], 0), "segment 3"),
    "drop last segment": (lambda h, s: h + s[0] + s[1] + s[2], "truncated"),
    "drop middle segment": (lambda h, s: h + s[0] + s[2] + s[3], "segment 1"),
    "truncate mid segment": (lambda h, s: h + s[0] + s[1][:5000], "segment 1"),
    "truncate inside tag": (lambda h, s: h + s[0] + s[1] + s[2] + s[3][:10], "segment 3"),
    "header only": (lambda h, s: h, "no segments"),
    "half header": (lambda h, s: h[:30], "header"),
    "swap two segments": (lambda h, s: h + s[1] + s[0] + s[2] + s[3], "segment 0"),
    "duplicate a segment": (lambda h, s: h + s[0] + s[0] + s[1] + s[2] + s[3], "segment 1"),
    "append a copy of the last": (lambda h, s: h + s[0] + s[1] + s[2] + s[3] + s[3], "segment 3"),
    "trailing garbage": (lambda h, s: h + b"".join(s) + b"x", "segment 3"),
    "empty": (lambda h, s: b"", "header"),
}


@pytest.mark.parametrize("name", list(TAMPERS))
def test_tampering_is_detected(name: str) -> None:
    tamper, expected = TAMPERS[name]
    header, segs = segments(enc(PLAIN))
    assert len(segs) == 4
    message = authentic_prefix_then_error(tamper(header, segs), PLAIN)
    assert expected in message


def test_segment_from_another_stream_of_the_same_key_is_rejected() -> None:
    h1, s1 = segments(enc(PLAIN))
    _h2, s2 = segments(enc(PLAIN))
    authentic_prefix_then_error(h1 + s1[0] + s2[1] + s1[2] + s1[3], PLAIN)
    authentic_prefix_then_error(_h2 + s1[0] + s1[1] + s1[2] + s1[3], PLAIN)


@pytest.mark.parametrize(
    "kw",
    [
        {"ref": ObjectRef("dataset_version", "dsv_2", "prj_1")},
        {"ref": ObjectRef("model_artifact", "dsv_1", "prj_1")},
        {"ref": ObjectRef("dataset_version", "dsv_1", "prj_2")},
        {"part": "other"},
        {"data_key": bytes(32)},
        {"key_ref": "dk_someoneelse"},
    ],
    ids=["object", "kind", "project", "part", "key", "key-ref"],
)
def test_ciphertext_is_bound_to_object_kind_project_part_and_key(kw: dict[str, object]) -> None:
    ct = enc(b"bound to its object")
    assert dec(ct) == b"bound to its object"
    with pytest.raises(CiphertextIntegrityError):
        dec(ct, **kw)


def test_not_a_stream() -> None:
    with pytest.raises(CiphertextIntegrityError, match="magic"):
        dec(b"plain text that is long enough to look like a header, really quite long")


def test_streaming_memory_is_bounded() -> None:
    """32 MiB through encrypt -> decrypt with a few segments of Python heap at most."""
    total = 32 * 1024 * 1024
    block = os.urandom(SEGMENT_SIZE)

    def source() -> Iterator[bytes]:
        for _ in range(total // SEGMENT_SIZE):
            yield block

    tracemalloc.start()
    try:
        ct = encrypt_stream(source(), data_key=KEY, key_ref=KEY_REF, ref=REF)
        n = 0
        for piece in decrypt_stream(ct, data_key=KEY, key_ref=KEY_REF, ref=REF):
            n += len(piece)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert n == total
    assert peak < 8 * SEGMENT_SIZE, f"peak {peak} bytes"
