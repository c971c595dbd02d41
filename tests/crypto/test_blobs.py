"""The local blob store: ciphertext only, atomic, immutable, crash-safe."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from privet import crypto
from privet.crypto.stream import encrypt_stream

REF = crypto.ObjectRef("dataset_version", "dsv_1", "prj_1")


def encrypted(data: bytes) -> crypto.EncryptedStream:
    return encrypt_stream([data], data_key=bytes(32), key_ref="dk_1", ref=REF)


def files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_put_read_list_delete(store: crypto.LocalBlobStore) -> None:
    info = store.put("prj_1/dataset_version/dsv_1/data", encrypted(b"x" * 200_000))
    assert info.size == store.size(info.key) > 200_000
    raw = b"".join(store.iter_chunks(info.key, chunk_size=4096))
    assert len(raw) == info.size and raw.startswith(crypto.stream.MAGIC)
    import hashlib

    assert hashlib.sha256(raw).hexdigest() == info.sha256
    assert store.exists(info.key) and list(store.list("prj_1/")) == [info.key]
    path = store.root / "prj_1" / "dataset_version" / "dsv_1" / "data"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    for parent in (path.parent, path.parent.parent, path.parent.parent.parent, store.root):
        assert stat.S_IMODE(parent.stat().st_mode) == 0o700, parent
    assert store.delete(info.key) and not store.delete(info.key)
    with pytest.raises(crypto.BlobNotFoundError):
        store.open(info.key)


def test_only_ciphertext_is_accepted(store: crypto.LocalBlobStore) -> None:
    with pytest.raises(TypeError):
        store.put("a/b", iter([b"plain text"]))  # type: ignore[arg-type]
    with pytest.raises(crypto.CiphertextIntegrityError):
        store.put("a/b", crypto.EncryptedStream(iter([b"plain text posing as ciphertext"])))
    assert files(store.root) == []


def test_blobs_are_immutable(store: crypto.LocalBlobStore) -> None:
    store.put("k", encrypted(b"one"))
    with pytest.raises(crypto.BlobExistsError):
        store.put("k", encrypted(b"two"))
    assert files(store.root) == ["k"]


@pytest.mark.parametrize(
    "key", ["", "../x", "a/../b", "/abs", "a//b", ".hidden", "a/./b", "a\\b", "a/b/", "x" * 200]
)
def test_keys_cannot_escape_the_root(store: crypto.LocalBlobStore, key: str) -> None:
    with pytest.raises(crypto.InvalidBlobKeyError):
        store.put(key, encrypted(b"x"))


def test_a_failing_writer_leaves_nothing(store: crypto.LocalBlobStore) -> None:
    def source() -> Iterator[bytes]:
        yield b"a" * 300_000
        raise RuntimeError("upload aborted")

    with pytest.raises(RuntimeError, match="upload aborted"):
        store.put(
            "prj/ds/obj/data",
            encrypt_stream(source(), data_key=bytes(32), key_ref="dk_1", ref=REF),
        )
    assert files(store.root) == []


def test_a_crash_mid_write_leaves_only_a_temp_file_that_is_cleaned_on_start(
    tmp_path: Path,
) -> None:
    root = tmp_path / "blobs"
    script = textwrap.dedent(
        f"""
        import os
        from pathlib import Path
        from privet import crypto
        from privet.crypto.stream import encrypt_stream

        def source():
            yield b"a" * 300_000
            os._exit(3)  # the process dies in the middle of the upload

        store = crypto.LocalBlobStore(Path({str(root)!r}))
        ref = crypto.ObjectRef("k", "o", "p")
        store.put("p/k/o/data", encrypt_stream(source(), data_key=bytes(32), key_ref="dk",
                                               ref=ref))
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=60)
    assert result.returncode == 3, result.stderr
    leftovers = files(root)
    assert len(leftovers) == 1 and ".tmp-" in leftovers[0]  # never a blob under the real name
    store = crypto.LocalBlobStore(root)
    assert files(root) == [] and not store.exists("p/k/o/data")


def test_temp_files_of_live_writers_are_kept(tmp_path: Path) -> None:
    root = tmp_path / "blobs"
    root.mkdir()
    mine = root / f".data.tmp-{os.getpid()}-{'0' * 16}"
    mine.write_bytes(b"in flight")
    store = crypto.LocalBlobStore(root)
    assert mine.exists()
    os.utime(mine, (0, 0))  # ...unless it is ancient
    assert store.clean_orphans() == 1
    assert not mine.exists()
