"""Signed notes and checkpoints, including golang.org/x/mod/sumdb/note test vectors."""

from __future__ import annotations

import base64

import pytest

from privet_audit.checkpoint import (
    Checkpoint,
    CheckpointError,
    NoteError,
    Signer,
    Verifier,
    check_consistency,
    generate_signing_key,
    key_id,
    open_checkpoint,
    open_note,
    parse_checkpoint_text,
    sign_checkpoint,
    sign_note,
)
from privet_audit.merkle import MemoryTree

# From golang.org/x/mod/sumdb/note/note_test.go.
PETER_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
PETER_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
ENOCH_VKEY = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
PETER_SIG = (
    "— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpR"
    "Zb6KE6RyyBwJnAM=\n"
)
ENOCH_SIG = (
    "— EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33"
    "WWd1RvMc+QQ=\n"
)


def peter() -> Signer:
    seed = base64.b64decode(PETER_SKEY.split("+", 4)[-1])[1:]
    return Signer.from_seed("PeterNeumann", seed)


def test_sumdb_sign_vector() -> None:
    signer = peter()
    assert str(signer.verifier) == PETER_VKEY
    assert sign_note(TEXT, [signer]) == TEXT + "\n" + PETER_SIG


def test_sumdb_open_vectors() -> None:
    pv, ev = Verifier.parse(PETER_VKEY), Verifier.parse(ENOCH_VKEY)
    n = open_note(TEXT + "\n" + PETER_SIG + ENOCH_SIG, [pv])
    assert n.text == TEXT and [s.name for s in n.verified] == ["PeterNeumann"]
    assert [s.name for s in n.unverified] == ["EnochRoot"]
    n = open_note(TEXT + "\n" + PETER_SIG + ENOCH_SIG, [pv, ev])
    assert [s.name for s in n.verified] == ["PeterNeumann", "EnochRoot"]
    with pytest.raises(NoteError, match="no signature from a trusted key"):
        open_note(TEXT + "\n" + PETER_SIG + ENOCH_SIG, [])
    with pytest.raises(NoteError, match="invalid signature for key PeterNeumann\\+c74f20a3"):
        open_note(TEXT + "\n" + PETER_SIG[:60] + "ABCD" + PETER_SIG[60:], [pv])
    with pytest.raises(NoteError, match="malformed"):
        open_note(TEXT + "\n" + PETER_SIG * 101, [pv])


@pytest.mark.parametrize(
    "msg",
    [
        TEXT,
        TEXT + "\n",
        TEXT + "\n" + PETER_SIG[:-1],
        "\x01" + TEXT + "\n" + PETER_SIG,
        TEXT + "\n" + "— Bad Name x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgK"
        "vqfqdngotpRZb6KE6RyyBwJnAM=\n",
        TEXT + "\n" + PETER_SIG + "Unexpected line.\n",
    ],
)
def test_sumdb_malformed_notes(msg: str) -> None:
    with pytest.raises(NoteError, match="malformed"):
        open_note(msg, [Verifier.parse(PETER_VKEY)])


def test_wrong_key_id_or_name_is_an_unknown_key() -> None:
    pv = Verifier.parse(PETER_VKEY)
    with pytest.raises(NoteError, match="no signature from a trusted key"):
        open_note(TEXT + "\n" + PETER_SIG.replace("PeterNeumann", "CarmenSandiego"), [pv])
    with pytest.raises(NoteError, match="no signature from a trusted key"):
        open_note(TEXT + "\n" + PETER_SIG.replace("x08g", "xxxx"), [pv])


def test_verifier_key_manglings_are_rejected() -> None:
    Verifier.parse(PETER_VKEY)
    b = PETER_VKEY
    for i in range(len(b)):
        for j in range(i + 1, len(b) + 1):
            if (i, j) != (0, len(b)):
                with pytest.raises(NoteError):
                    Verifier.parse(b[i:j])
    for i in range(len(b)):
        mangled = b[:i] + chr(ord(b[i]) + 1) + b[i + 1 :]
        with pytest.raises(NoteError):
            Verifier.parse(mangled)
    for bad in [
        "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==",
        "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
    ]:
        with pytest.raises(NoteError):
            Verifier.parse(bad)


def test_key_id_rule() -> None:
    v = Verifier.parse(PETER_VKEY)
    assert key_id("PeterNeumann", v.public_key) == 0xC74F20A3


def test_generated_pem_key_signs_checkpoints() -> None:
    signer = Signer.from_pem("example.com/log", generate_signing_key())
    tree = MemoryTree.from_entries([b"a", b"b", b"c"])
    cp = Checkpoint("example.com/log", 3, tree.root())
    note = sign_checkpoint(cp, signer)
    lines = note.split("\n")
    assert lines[0] == "example.com/log" and lines[1] == "3" and lines[3] == ""
    assert lines[4].startswith("— example.com/log ")
    assert open_checkpoint(note, signer.verifier, origin="example.com/log") == cp
    with pytest.raises(CheckpointError, match="origin"):
        open_checkpoint(note, signer.verifier, origin="other/log")
    other = Signer.from_pem("example.com/log", generate_signing_key())
    with pytest.raises(CheckpointError, match="no signature from a trusted key"):
        open_checkpoint(sign_checkpoint(cp, other), signer.verifier)
    # A forged signature under the right key id: the known key must verify it.
    forged = note.replace(
        note.split(" ")[-1],
        base64.b64encode(
            signer.verifier.key_hash.to_bytes(4, "big") + other.sign(cp.text().encode())
        ).decode()
        + "\n",
    )
    with pytest.raises(CheckpointError, match="invalid signature"):
        open_checkpoint(forged, signer.verifier)


@pytest.mark.parametrize(
    "text",
    [
        "origin\n01\n" + base64.b64encode(bytes(32)).decode() + "\n",
        "origin\n-1\n" + base64.b64encode(bytes(32)).decode() + "\n",
        "origin\n1\n" + base64.b64encode(bytes(31)).decode() + "\n",
        "origin\n1\nnot-base64!\n",
        "\n1\n" + base64.b64encode(bytes(32)).decode() + "\n",
        "origin\n1\n",
        "origin\n1\n" + base64.b64encode(bytes(32)).decode() + "\n\n",
    ],
)
def test_malformed_checkpoint_bodies(text: str) -> None:
    with pytest.raises(CheckpointError, match="malformed"):
        parse_checkpoint_text(text)


def test_extension_lines_round_trip() -> None:
    cp = Checkpoint("o", 5, bytes(32), ("ext one",))
    assert parse_checkpoint_text(cp.text()) == cp


def test_checkpoint_consistency() -> None:
    tree = MemoryTree.from_entries([bytes([i]) for i in range(7)])
    old, new = Checkpoint("o", 3, tree.root(3)), Checkpoint("o", 7, tree.root(7))
    check_consistency(old, new, tree.consistency_proof(3, 7))
    with pytest.raises(CheckpointError, match="rolled back"):
        check_consistency(new, old, tree.consistency_proof(3, 7))
    with pytest.raises(CheckpointError, match="inconsistent"):
        check_consistency(Checkpoint("o", 3, tree.root(2)), new, tree.consistency_proof(3, 7))
    with pytest.raises(CheckpointError, match="different logs"):
        check_consistency(Checkpoint("p", 3, tree.root(3)), new, tree.consistency_proof(3, 7))
