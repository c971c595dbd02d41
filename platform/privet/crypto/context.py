"""What a domain function needs of the runtime to reach stored objects, as protocols.

Domain functions take one of these rather than ``privet.runtime.Runtime``: the runtime
stands on a floor above every domain (it wires them together), so naming it there would
be an import going up (docs/ARCHITECTURE.md). A ``Runtime``, a training worker's
``WorkerRuntime`` and the inference service each have all of it; a domain that needs
more of the runtime (the authorizer, the prediction observer) extends these where it
declares its own.
"""

from __future__ import annotations

from typing import Protocol

from sqlalchemy import Engine

from privet.config import Settings
from privet.crypto.blobs import BlobStore
from privet.crypto.providers import KeyProvider

__all__ = ["SealedStorage", "ServiceRuntime"]


class SealedStorage(Protocol):
    """The key provider that wraps data keys, and the store their ciphertext lives in."""

    @property
    def key_provider(self) -> KeyProvider: ...

    @property
    def blobs(self) -> BlobStore: ...


class ServiceRuntime(SealedStorage, Protocol):
    """Sealed storage, plus the settings and the database engine it was built from."""

    @property
    def settings(self) -> Settings: ...

    @property
    def engine(self) -> Engine: ...
