"""Errors of the crypto layer, each with a stable problem `type` slug.

A failed authentication is always an exception, never silently wrong plaintext, so every
reader of encrypted data can tell "tampered", "erased" and "key unavailable" apart.
"""

from __future__ import annotations

from privet.kit.errors import ConflictError, InvalidInputError, NotFoundError, PrivetError


class CiphertextIntegrityError(PrivetError):
    """Stored ciphertext failed authentication: modified, truncated, reordered or misplaced."""

    status = 500
    slug = "ciphertext-integrity"
    title = "Encrypted data failed its integrity check"


class KeyUnavailableError(PrivetError):
    """A master key (KEK) version needed to unwrap a data key is retired or unknown."""

    status = 500
    slug = "key-unavailable"
    title = "Master key version unavailable"


class DataKeyDestroyedError(PrivetError):
    """The object's data key was destroyed (crypto-shredded): its data is gone for good."""

    status = 410
    slug = "erased"
    title = "Object erased"


class DataKeyNotFoundError(NotFoundError):
    """No data key is registered for the object."""

    slug = "data-key-not-found"
    title = "Data key not found"


class DataKeyExistsError(ConflictError):
    """The object already has a data key; one object, one key."""

    slug = "data-key-exists"
    title = "Data key already exists"


class KeyVersionInUseError(ConflictError):
    """A master key version cannot be retired while data keys are still wrapped by it."""

    slug = "key-version-in-use"
    title = "Master key version still in use"


class BlobExistsError(ConflictError):
    """Blobs are immutable: a key is written once."""

    slug = "blob-exists"
    title = "Blob already exists"


class BlobNotFoundError(NotFoundError):
    slug = "blob-not-found"
    title = "Blob not found"


class InvalidBlobKeyError(InvalidInputError):
    slug = "invalid-blob-key"
    title = "Invalid blob key"


class KeyProviderError(PrivetError):
    """The key provider is misconfigured or unreachable (HSM down, wrong PIN, no module)."""

    status = 503
    slug = "key-provider-unavailable"
    title = "Key provider unavailable"
