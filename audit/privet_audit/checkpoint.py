"""C2SP signed notes and tlog-checkpoints with Ed25519 keys.

A checkpoint is the log's signed statement "my tree of N leaves has root R". Its text
is ``origin\\nsize\\nbase64(root)\\n`` (plus optional extension lines); the note adds
a blank line and ``— <key name> base64(key id || signature)`` lines
(c2sp.org/signed-note, c2sp.org/tlog-checkpoint, golang.org/x/mod/sumdb/note).

The signing key lives outside the database (a PEM file, 0600), so someone who can
rewrite the database still cannot produce a checkpoint that verifies.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from privet_audit.merkle import HASH_SIZE, ConsistencyError, verify_consistency

__all__ = [
    "ALG_ED25519",
    "Checkpoint",
    "CheckpointError",
    "NoteError",
    "Signature",
    "Signer",
    "Verifier",
    "check_consistency",
    "generate_signing_key",
    "key_id",
    "open_checkpoint",
    "open_note",
    "parse_checkpoint_text",
    "sign_checkpoint",
    "sign_note",
]

ALG_ED25519 = 0x01
EM_DASH = "\u2014"
MAX_SIGNATURES = 100
_NAME_RE = re.compile(r"[^\s+]+")
_SIZE_RE = re.compile(r"0|[1-9][0-9]*")


class NoteError(ValueError):
    """A signed note is malformed, or its signatures do not verify."""


class CheckpointError(NoteError):
    """A checkpoint is malformed, unsigned, or inconsistent with another."""


def key_id(name: str, public_key: bytes, alg: int = ALG_ED25519) -> int:
    """C2SP key ID: first 4 bytes (big-endian) of SHA-256(name || 0x0A || alg || key)."""
    digest = hashlib.sha256(name.encode("utf-8") + b"\n" + bytes([alg]) + public_key).digest()
    return int.from_bytes(digest[:4], "big")


def _check_name(name: str) -> None:
    if not _NAME_RE.fullmatch(name):
        raise NoteError(f"key name {name!r} must be non-empty, without spaces or '+'")


def _b64decode(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError) as exc:
        raise NoteError(f"{what} is not valid base64") from exc


def generate_signing_key() -> bytes:
    """A new Ed25519 private key as unencrypted PKCS#8 PEM (keep it in a 0600 file)."""
    key = Ed25519PrivateKey.generate()
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


@dataclass(frozen=True)
class Verifier:
    """A trusted Ed25519 note key: ``<name>+<hex key id>+<base64(0x01 || pubkey)>``."""

    name: str
    key_hash: int
    public_key: bytes

    @classmethod
    def from_public_key(cls, name: str, public_key: bytes | Ed25519PublicKey) -> Verifier:
        """Verifier for a raw 32-byte key or a ``cryptography`` public key."""
        raw = (
            public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
            if isinstance(public_key, Ed25519PublicKey)
            else bytes(public_key)
        )
        _check_name(name)
        if len(raw) != 32:
            raise NoteError(f"Ed25519 public key must be 32 bytes, got {len(raw)}")
        return cls(name=name, key_hash=key_id(name, raw), public_key=raw)

    @classmethod
    def parse(cls, vkey: str) -> Verifier:
        """Parse a verifier key string, checking the key id against the key."""
        parts = vkey.split("+", 2)
        if len(parts) != 3:
            raise NoteError("verifier key must be <name>+<hex key id>+<base64 key>")
        name, hex_id, b64 = parts
        _check_name(name)
        if not re.fullmatch(r"[0-9a-f]{8}", hex_id):
            raise NoteError(f"verifier key id {hex_id!r} is not 8 lower-case hex digits")
        raw = _b64decode(b64, "verifier public key")
        if len(raw) != 33 or raw[0] != ALG_ED25519:
            raise NoteError("verifier key is not an Ed25519 key (0x01 || 32 bytes)")
        want = key_id(name, raw[1:])
        if int(hex_id, 16) != want:
            raise NoteError(
                f"verifier key id {hex_id} does not match its key (expected {want:08x})"
            )
        return cls(name=name, key_hash=want, public_key=raw[1:])

    def __str__(self) -> str:
        b64 = base64.b64encode(bytes([ALG_ED25519]) + self.public_key).decode("ascii")
        return f"{self.name}+{self.key_hash:08x}+{b64}"

    def verify(self, message: bytes, signature: bytes) -> bool:
        """True if ``signature`` is this key's Ed25519 signature of ``message``."""
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(signature, message)
        except InvalidSignature:
            return False
        return True


@dataclass(frozen=True)
class Signer:
    """An Ed25519 note signer: a key name and the private key."""

    name: str
    private_key: Ed25519PrivateKey = field(repr=False)

    @classmethod
    def from_pem(cls, name: str, pem: bytes) -> Signer:
        """Load a PKCS#8 PEM Ed25519 key (as written by ``generate_signing_key``)."""
        _check_name(name)
        key = serialization.load_pem_private_key(pem, password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise NoteError("signing key is not an Ed25519 private key")
        return cls(name=name, private_key=key)

    @classmethod
    def from_seed(cls, name: str, seed: bytes) -> Signer:
        """Signer from a raw 32-byte Ed25519 seed (used by the sumdb test vector)."""
        _check_name(name)
        return cls(name=name, private_key=Ed25519PrivateKey.from_private_bytes(seed))

    @property
    def verifier(self) -> Verifier:
        """The matching public verifier."""
        return Verifier.from_public_key(self.name, self.private_key.public_key())

    def sign(self, message: bytes) -> bytes:
        """Raw Ed25519 signature."""
        return self.private_key.sign(message)


@dataclass(frozen=True)
class Signature:
    """One signature line of a note."""

    name: str
    key_hash: int
    signature: bytes

    def line(self) -> str:
        """The signature line, newline included."""
        b64 = base64.b64encode(self.key_hash.to_bytes(4, "big") + self.signature).decode()
        return f"{EM_DASH} {self.name} {b64}\n"


def _check_text(text: str) -> None:
    if not text.endswith("\n"):
        raise NoteError("malformed note: text must end with a newline")
    for ch in text:
        if ch < " " and ch != "\n":
            raise NoteError(f"malformed note: control character U+{ord(ch):04X} in text")


def sign_note(text: str, signers: Sequence[Signer]) -> str:
    """Sign ``text`` (ending in a newline) with each signer; return the note."""
    _check_text(text)
    if not signers:
        raise NoteError("a note needs at least one signer")
    msg = text.encode("utf-8")
    lines = [Signature(s.name, s.verifier.key_hash, s.sign(msg)).line() for s in signers]
    return text + "\n" + "".join(lines)


@dataclass(frozen=True)
class Note:
    """An opened note: its text, the verified and the ignored (unknown-key) signatures."""

    text: str
    verified: tuple[Signature, ...]
    unverified: tuple[Signature, ...]


def _split_note(note: str) -> tuple[str, list[Signature]]:
    if len(note) > 1_000_000:
        raise NoteError("malformed note: larger than 1 MB")
    for ch in note:
        if ch < " " and ch != "\n":
            raise NoteError(f"malformed note: control character U+{ord(ch):04X}")
    if not note.endswith("\n"):
        raise NoteError("malformed note: must end with a newline")
    split = note.rfind("\n\n")
    if split < 0:
        raise NoteError("malformed note: no blank line before the signatures")
    text, sig_block = note[: split + 1], note[split + 2 :]
    sigs: list[Signature] = []
    for n, line in enumerate(sig_block.split("\n")[:-1], start=1):
        if not line.startswith(EM_DASH + " "):
            raise NoteError(f"malformed note: signature line {n} does not start with '— '")
        parts = line[2:].split(" ")
        if len(parts) != 2:
            raise NoteError(f"malformed note: signature line {n} is not '— <name> <base64>'")
        name, b64 = parts
        if not _NAME_RE.fullmatch(name):
            raise NoteError(f"malformed note: bad key name {name!r} on signature line {n}")
        raw = _b64decode(b64, f"signature line {n}")
        if len(raw) < 5:
            raise NoteError(f"malformed note: signature line {n} is too short")
        sigs.append(Signature(name, int.from_bytes(raw[:4], "big"), raw[4:]))
    if not sigs:
        raise NoteError("malformed note: no signature lines")
    if len(sigs) > MAX_SIGNATURES:
        raise NoteError(f"malformed note: more than {MAX_SIGNATURES} signatures")
    return text, sigs


def open_note(note: str, verifiers: Iterable[Verifier]) -> Note:
    """Parse ``note`` and verify it against trusted keys.

    Signatures from unknown keys (name and key id not both known) are ignored, as the
    spec requires; a known key whose signature fails rejects the whole note; at least
    one known key must have signed.
    """
    text, sigs = _split_note(note)
    known = {(v.name, v.key_hash): v for v in verifiers}
    msg = text.encode("utf-8")
    verified: list[Signature] = []
    unverified: list[Signature] = []
    for sig in sigs:
        v = known.get((sig.name, sig.key_hash))
        if v is None:
            unverified.append(sig)
            continue
        if not v.verify(msg, sig.signature):
            raise NoteError(f"invalid signature for key {sig.name}+{sig.key_hash:08x}")
        if sig not in verified:
            verified.append(sig)
    if not verified:
        seen = ", ".join(f"{s.name}+{s.key_hash:08x}" for s in sigs)
        want = ", ".join(f"{n}+{h:08x}" for n, h in known)
        raise NoteError(
            f"note has no signature from a trusted key (signed by {seen}; "
            f"trusted: {want or 'none'})"
        )
    return Note(text=text, verified=tuple(verified), unverified=tuple(unverified))


@dataclass(frozen=True)
class Checkpoint:
    """A tlog-checkpoint body: origin, tree size, root hash and extension lines."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def text(self) -> str:
        """The note text that gets signed."""
        if not self.origin or "\n" in self.origin:
            raise CheckpointError("checkpoint origin must be one non-empty line")
        if self.size < 0:
            raise CheckpointError("checkpoint size must be non-negative")
        if len(self.root) != HASH_SIZE:
            raise CheckpointError(f"checkpoint root must be {HASH_SIZE} bytes")
        for ext in self.extensions:
            if not ext or "\n" in ext:
                raise CheckpointError("extension lines must be non-empty single lines")
        root = base64.b64encode(self.root).decode("ascii")
        return "".join(
            f"{line}\n" for line in (self.origin, str(self.size), root, *self.extensions)
        )


def parse_checkpoint_text(text: str) -> Checkpoint:
    """Parse checkpoint note text (without signatures)."""
    if not text.endswith("\n"):
        raise CheckpointError("malformed checkpoint: text must end with a newline")
    lines = text[:-1].split("\n")
    if len(lines) < 3:
        raise CheckpointError("malformed checkpoint: needs origin, size and root hash lines")
    origin, size, root_b64, *ext = lines
    if not origin:
        raise CheckpointError("malformed checkpoint: empty origin line")
    if not _SIZE_RE.fullmatch(size):
        raise CheckpointError(f"malformed checkpoint: size {size!r} is not a decimal number")
    try:
        root = _b64decode(root_b64, "checkpoint root hash")
    except NoteError as exc:
        raise CheckpointError(f"malformed checkpoint: {exc}") from exc
    if len(root) != HASH_SIZE:
        raise CheckpointError(f"malformed checkpoint: root hash is {len(root)} bytes, not 32")
    if any(not line for line in ext):
        raise CheckpointError("malformed checkpoint: empty extension line")
    return Checkpoint(origin=origin, size=int(size), root=root, extensions=tuple(ext))


def sign_checkpoint(checkpoint: Checkpoint, signer: Signer) -> str:
    """Sign a checkpoint; the key name should equal the origin (C2SP recommends it)."""
    return sign_note(checkpoint.text(), [signer])


def open_checkpoint(
    note: str, verifiers: Verifier | Iterable[Verifier], *, origin: str | None = None
) -> Checkpoint:
    """Verify a signed checkpoint and return its body; check its origin if given."""
    vs = [verifiers] if isinstance(verifiers, Verifier) else list(verifiers)
    try:
        opened = open_note(note, vs)
    except NoteError as exc:
        raise CheckpointError(str(exc)) from exc
    cp = parse_checkpoint_text(opened.text)
    if origin is not None and cp.origin != origin:
        raise CheckpointError(f"checkpoint origin {cp.origin!r} is not the expected {origin!r}")
    return cp


def check_consistency(old: Checkpoint, new: Checkpoint, proof: Sequence[bytes]) -> None:
    """Raise ``CheckpointError`` unless ``new`` is an append-only extension of ``old``."""
    if old.origin != new.origin:
        raise CheckpointError(f"checkpoints of different logs: {old.origin!r} vs {new.origin!r}")
    if new.size < old.size:
        raise CheckpointError(
            f"checkpoint of size {new.size} is older than the one of size {old.size}: "
            "the log was rolled back or truncated"
        )
    try:
        verify_consistency(old.size, new.size, proof, old.root, new.root)
    except ConsistencyError as exc:
        raise CheckpointError(
            f"checkpoints {old.size} -> {new.size} are inconsistent: {exc}"
        ) from exc
