"""Envelope encryption of objects into a blob store: what domain services call.

One object (dataset version, model version, export...) has one data key and any number
of named parts (`data`, `weights`, `checkpoint-3`), each a blob at
`<project>/<kind>/<object id>/<part>`. Plaintext exists only in memory, a segment at a time.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from sqlmodel import Session

from privet.crypto.blobs import BlobInfo, BlobStore
from privet.crypto.datakeys import DataKeyHandle, create_data_key, shred, unwrap_data_key
from privet.crypto.errors import DataKeyNotFoundError
from privet.crypto.providers import KeyProvider
from privet.crypto.refs import ObjectRef, check_part
from privet.crypto.stream import SEGMENT_SIZE, ChunkReader, Source, decrypt_stream, encrypt_stream
from privet.crypto.tables import DataKey


@dataclass(frozen=True, slots=True)
class StoredPart:
    """Where a part went and what was stored (ciphertext size and digest)."""

    blob: BlobInfo
    data_key_id: str
    part: str


def blob_key(ref: ObjectRef, part: str = "data") -> str:
    """The blob key of an object's part."""
    return f"{ref.project_id}/{ref.kind}/{ref.object_id}/{check_part(part)}"


def _object_prefix(ref: ObjectRef) -> str:
    return f"{ref.project_id}/{ref.kind}/{ref.object_id}/"


def _key_for_write(
    session: Session, provider: KeyProvider, ref: ObjectRef
) -> tuple[DataKeyHandle, bool]:
    try:
        return unwrap_data_key(session=session, provider=provider, ref=ref), False
    except DataKeyNotFoundError:
        return create_data_key(session=session, provider=provider, ref=ref), True


def write_object(
    *,
    session: Session,
    provider: KeyProvider,
    store: BlobStore,
    ref: ObjectRef,
    source: Source,
    part: str = "data",
) -> StoredPart:
    """Encrypt a plaintext stream (chunks or a binary file) into the store for an object.

    The object's data key is created on its first part. The key row joins the caller's
    transaction: commit it together with the domain row that names the object. If that
    transaction rolls back, the blob is left unreadable and a retry replaces it.
    """
    handle, created = _key_for_write(session, provider, ref)
    key = blob_key(ref, part)
    if created and store.exists(key):
        # Left by an earlier attempt whose transaction rolled back: its data key never
        # existed, so the blob is undecryptable garbage and safe to replace.
        store.delete(key)
    stream = encrypt_stream(source, data_key=handle.key, key_ref=handle.key_id, ref=ref, part=part)
    info = store.put(key, stream)
    return StoredPart(blob=info, data_key_id=handle.key_id, part=part)


def write_object_bytes(
    *,
    session: Session,
    provider: KeyProvider,
    store: BlobStore,
    ref: ObjectRef,
    data: bytes,
    part: str = "data",
) -> StoredPart:
    """`write_object` for a small object held in memory."""
    return write_object(
        session=session, provider=provider, store=store, ref=ref, source=[data], part=part
    )


def read_object(
    *,
    session: Session,
    provider: KeyProvider,
    store: BlobStore,
    ref: ObjectRef,
    part: str = "data",
) -> Iterator[bytes]:
    """The plaintext of an object's part, segment by segment (bounded memory).

    The key and header are checked before this returns; a damaged segment raises
    `CiphertextIntegrityError` while iterating, after which the caller must discard
    what it received.
    """
    handle = unwrap_data_key(session=session, provider=provider, ref=ref)
    return decrypt_object(handle=handle, store=store, part=part)


def decrypt_object(
    *, handle: DataKeyHandle, store: BlobStore, part: str = "data"
) -> Iterator[bytes]:
    """`read_object` with the object's key already unwrapped (`handle.ref` names the
    object): for a caller that reads many objects' keys together (`data_keys_of`)."""
    ref = handle.ref
    blob = store.open(blob_key(ref, part))
    try:
        chunks = decrypt_stream(
            blob, data_key=handle.key, key_ref=handle.key_id, ref=ref, part=part
        )
    except BaseException:
        blob.close()
        raise

    def generate() -> Iterator[bytes]:
        with blob:
            yield from chunks

    return generate()


def open_object(
    *,
    session: Session,
    provider: KeyProvider,
    store: BlobStore,
    ref: ObjectRef,
    part: str = "data",
) -> BinaryIO:
    """A binary file-like reader over an object's plaintext (e.g. for safetensors, pyarrow)."""
    chunks = read_object(session=session, provider=provider, store=store, ref=ref, part=part)
    return io.BufferedReader(ChunkReader(chunks), buffer_size=SEGMENT_SIZE)


def read_object_bytes(
    *,
    session: Session,
    provider: KeyProvider,
    store: BlobStore,
    ref: ObjectRef,
    part: str = "data",
) -> bytes:
    """A small object's whole plaintext; nothing is returned unless all of it authenticated."""
    return b"".join(
        read_object(session=session, provider=provider, store=store, ref=ref, part=part)
    )


def erase_object(*, session: Session, store: BlobStore, ref: ObjectRef) -> DataKey:
    """Crypto-shred an object: destroy its data key, then delete its blobs.

    Destroying the key is what erases: any copy of the blobs (replica, backup, a file an
    operator kept) is undecryptable from then on. Deleting the blobs only frees space.
    """
    row = shred(session=session, ref=ref)
    for key in list(store.list(_object_prefix(ref))):
        store.delete(key)
    return row
