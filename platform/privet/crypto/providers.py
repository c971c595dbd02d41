"""Master-key (KEK) providers: wrap and unwrap data keys; the KEK never leaves its home.

A provider owns one master key id with numbered versions. New data keys are wrapped by the
newest active version; retiring a version destroys it, after which data keys still wrapped
by it can never be opened again (rotation rewraps them first).

Any KMS with wrap/unwrap (AWS/GCP/Azure KMS, Vault transit, another HSM) plugs in by
implementing `KeyProvider`; see docs/ENCRYPTION.md.
"""

from __future__ import annotations

import os
import re
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

from cryptography.hazmat.primitives.keywrap import (
    InvalidUnwrap,
    aes_key_unwrap_with_padding,
    aes_key_wrap_with_padding,
)

from privet.config import Settings
from privet.crypto.errors import KeyProviderError, KeyUnavailableError
from privet.crypto.settings import CryptoSettings, get_crypto_settings
from privet.kit.errors import ConflictError
from privet.kit.ids import utcnow
from privet.kit.secretfiles import ensure_private_dir, write_secret_file

KEK_SIZE = 32
KeyVersionState = Literal["active", "retired"]


@dataclass(frozen=True, slots=True)
class WrappedKey:
    """A data key encrypted under one master key version (safe to store anywhere)."""

    kek_id: str
    kek_version: int
    wrapped: bytes


@dataclass(frozen=True, slots=True)
class KekVersion:
    version: int
    state: KeyVersionState
    created_at: datetime | None = None
    retired_at: datetime | None = None


@runtime_checkable
class KeyProvider(Protocol):
    """What the envelope layer needs from a master key, wherever it lives."""

    @property
    def key_id(self) -> str:
        """Stable id of the master key (stored with each wrapped data key)."""
        ...

    def current_version(self) -> int:
        """The newest active version: the one that wraps new data keys."""
        ...

    def wrap(self, data_key: bytes, *, version: int | None = None) -> WrappedKey:
        """Encrypt a data key under `version` (default: the current one)."""
        ...

    def unwrap(self, wrapped: WrappedKey) -> bytes:
        """Decrypt a data key; `KeyUnavailableError` if its version is retired or unknown."""
        ...

    def create_version(self) -> int:
        """Create a new master key version, which becomes current; returns its number."""
        ...

    def list_versions(self) -> list[KekVersion]:
        """Every version known, oldest first, with its state."""
        ...

    def retire_version(self, version: int) -> None:
        """Destroy a version; refuses the current one (rotate first)."""
        ...


def _check_wrappable(data_key: bytes) -> None:
    if len(data_key) != 32:
        raise ValueError("data keys are 32 bytes")


def _pick_version(versions: list[KekVersion], version: int | None, key_id: str) -> int:
    active = [v.version for v in versions if v.state == "active"]
    if not active:
        raise KeyUnavailableError(f"master key {key_id!r} has no active version")
    if version is None:
        return max(active)
    if version not in active:
        raise KeyUnavailableError(
            f"master key {key_id!r} version {version} is retired or unknown",
            kek_id=key_id,
            kek_version=version,
        )
    return version


# --- local key files ----------------------------------------------------------------------

_LOCAL_FILE = re.compile(r"^v(\d+)\.(key|retired)$")


def _cannot_open(wrapped: WrappedKey) -> KeyUnavailableError:
    """The one refusal of both providers when the named master key version does not open a
    wrapped key (the wrong version, or modified bytes)."""
    return KeyUnavailableError(
        f"master key version {wrapped.kek_version} cannot open this wrapped key "
        "(wrong version or modified)",
        kek_id=wrapped.kek_id,
        kek_version=wrapped.kek_version,
    )


def local_kek_dir(settings: Settings) -> Path:
    """Where the local master key versions live (`v<n>.key`, 0600; `v<n>.retired`)."""
    return settings.secrets_dir / "kek"


def ensure_local_master_key(settings: Settings) -> Path:
    """Create version 1 of the local master key if no version exists (idempotent).

    Called by `privet init` and `privet serve`. Safe when several processes start at once.
    """
    ensure_private_dir(settings.home)
    ensure_private_dir(settings.secrets_dir)
    directory = ensure_private_dir(local_kek_dir(settings))
    if not any(_LOCAL_FILE.match(p.name) for p in directory.iterdir()):
        write_secret_file(directory / "v1.key", os.urandom(KEK_SIZE))
    return directory


class LocalKeyProvider:
    """Master key versions in 0600 files: the embedded default, not for production.

    Wrapping is AES-256 key wrap with padding (RFC 5649), the same algorithm the PKCS#11
    provider asks the HSM for. Retiring deletes the key file and leaves a tombstone.
    """

    key_id = "local"

    def __init__(self, directory: Path) -> None:
        self._dir = directory

    @classmethod
    def from_settings(cls, settings: Settings) -> LocalKeyProvider:
        return cls(ensure_local_master_key(settings))

    def _scan(self) -> dict[int, KeyVersionState]:
        found: dict[int, KeyVersionState] = {}
        for path in self._dir.iterdir():
            match = _LOCAL_FILE.match(path.name)
            if match:
                version = int(match.group(1))
                if match.group(2) == "retired" or version not in found:
                    found[version] = "retired" if match.group(2) == "retired" else "active"
        return found

    def list_versions(self) -> list[KekVersion]:
        result = []
        for version, state in sorted(self._scan().items()):
            path = self._dir / f"v{version}.{'key' if state == 'active' else 'retired'}"
            try:
                stamp: datetime | None = datetime.fromtimestamp(path.stat().st_mtime, UTC)
            except FileNotFoundError:  # retired by another process just now
                stamp = None
            result.append(
                KekVersion(
                    version=version,
                    state=state,
                    created_at=stamp if state == "active" else None,
                    retired_at=stamp if state == "retired" else None,
                )
            )
        return result

    def current_version(self) -> int:
        return _pick_version(self.list_versions(), None, self.key_id)

    def _kek(self, version: int) -> bytes:
        _pick_version(self.list_versions(), version, self.key_id)
        try:
            kek = (self._dir / f"v{version}.key").read_bytes()
        except FileNotFoundError:
            raise KeyUnavailableError(
                f"master key version {version} was just retired",
                kek_id=self.key_id,
                kek_version=version,
            ) from None
        if len(kek) != KEK_SIZE:
            raise KeyProviderError(f"local master key file v{version}.key is corrupt")
        return kek

    def wrap(self, data_key: bytes, *, version: int | None = None) -> WrappedKey:
        _check_wrappable(data_key)
        chosen = _pick_version(self.list_versions(), version, self.key_id)
        return WrappedKey(
            self.key_id, chosen, aes_key_wrap_with_padding(self._kek(chosen), data_key)
        )

    def unwrap(self, wrapped: WrappedKey) -> bytes:
        if wrapped.kek_id != self.key_id:
            raise KeyUnavailableError(
                f"data key is wrapped by master key {wrapped.kek_id!r}, "
                f"this provider holds {self.key_id!r}",
                kek_id=wrapped.kek_id,
            )
        try:
            return aes_key_unwrap_with_padding(self._kek(wrapped.kek_version), wrapped.wrapped)
        except InvalidUnwrap:
            raise _cannot_open(wrapped) from None

    def create_version(self) -> int:
        ensure_private_dir(self._dir)
        while True:
            version = max(self._scan(), default=0) + 1
            if write_secret_file(self._dir / f"v{version}.key", os.urandom(KEK_SIZE)):
                return version

    def retire_version(self, version: int) -> None:
        states = self._scan()
        if states.get(version) == "retired":
            return
        if version not in states:
            raise KeyUnavailableError(f"master key version {version} does not exist")
        if version == self.current_version():
            raise ConflictError(
                f"version {version} is the current master key: rotate before retiring it"
            )
        write_secret_file(self._dir / f"v{version}.retired", utcnow().isoformat().encode())
        (self._dir / f"v{version}.key").unlink(missing_ok=True)


# --- PKCS#11 ------------------------------------------------------------------------------


class Pkcs11KeyProvider:
    """Master key versions as non-extractable AES-256 keys inside a PKCS#11 token (HSM).

    Each version is a token object labelled `<label>.v<n>`; data keys are wrapped by the
    token with CKM_AES_KEY_WRAP_PAD (RFC 5649), so the KEK never exists outside the HSM.
    Retiring destroys the key object and stores a `<label>.v<n>.retired` data object.
    """

    def __init__(self, *, module: str, token_label: str, pin: str, key_label: str) -> None:
        try:
            import pkcs11
        except ImportError as exc:  # pragma: no cover - dependency is pinned
            raise KeyProviderError("python-pkcs11 is not installed") from exc
        self._pkcs11 = pkcs11
        try:
            self._token = pkcs11.lib(module).get_token(token_label=token_label)
        except Exception as exc:
            raise KeyProviderError(
                f"cannot open PKCS#11 token {token_label!r} with module {module}: {exc!r}"
            ) from exc
        self._pin = pin
        self._label = key_label
        self._token_label = token_label
        self._lock = threading.Lock()
        self._label_re = re.compile(rf"^{re.escape(key_label)}\.v(\d+)(\.retired)?$")

    @property
    def key_id(self) -> str:
        return f"pkcs11:{self._token_label}/{self._label}"

    def _session(self) -> Any:
        try:
            return self._token.open(rw=True, user_pin=self._pin)
        except self._pkcs11.exceptions.UserAlreadyLoggedIn:
            return self._token.open(rw=True)
        except self._pkcs11.exceptions.PKCS11Error as exc:
            raise KeyProviderError(f"cannot log in to PKCS#11 token: {exc!r}") from exc

    def _scan(self, session: Any) -> dict[int, KeyVersionState]:
        attr = self._pkcs11.Attribute
        found: dict[int, KeyVersionState] = {}
        for obj in session.get_objects({}):
            try:
                label = obj[attr.LABEL]
            except self._pkcs11.exceptions.PKCS11Error:
                continue
            match = self._label_re.match(label or "")
            if match:
                version = int(match.group(1))
                if match.group(2) or version not in found:
                    found[version] = "retired" if match.group(2) else "active"
        return found

    def _key(self, session: Any, version: int) -> Any:
        p = self._pkcs11
        try:
            return session.get_key(
                object_class=p.ObjectClass.SECRET_KEY, label=f"{self._label}.v{version}"
            )
        except p.exceptions.NoSuchKey:
            raise KeyUnavailableError(
                f"master key version {version} is retired or not in the token",
                kek_id=self.key_id,
                kek_version=version,
            ) from None

    def list_versions(self) -> list[KekVersion]:
        with self._lock, self._session() as session:
            return [KekVersion(version=v, state=s) for v, s in sorted(self._scan(session).items())]

    def current_version(self) -> int:
        return _pick_version(self.list_versions(), None, self.key_id)

    def create_version(self) -> int:
        p = self._pkcs11
        with self._lock, self._session() as session:
            version = max(self._scan(session), default=0) + 1
            session.generate_key(
                p.KeyType.AES,
                256,
                label=f"{self._label}.v{version}",
                id=f"{self._label}.v{version}".encode(),
                store=True,
                capabilities=p.MechanismFlag.WRAP | p.MechanismFlag.UNWRAP,
                template={p.Attribute.SENSITIVE: True, p.Attribute.EXTRACTABLE: False},
            )
            return version

    def wrap(self, data_key: bytes, *, version: int | None = None) -> WrappedKey:
        _check_wrappable(data_key)
        p = self._pkcs11
        with self._lock, self._session() as session:
            chosen = _pick_version(
                [KekVersion(v, s) for v, s in self._scan(session).items()], version, self.key_id
            )
            kek = self._key(session, chosen)
            temp = session.create_object(
                {
                    p.Attribute.CLASS: p.ObjectClass.SECRET_KEY,
                    p.Attribute.KEY_TYPE: p.KeyType.AES,
                    p.Attribute.VALUE: data_key,
                    p.Attribute.TOKEN: False,
                    p.Attribute.EXTRACTABLE: True,
                    p.Attribute.SENSITIVE: False,
                }
            )
            try:
                wrapped = kek.wrap_key(temp, mechanism=p.Mechanism.AES_KEY_WRAP_PAD)
            finally:
                temp.destroy()
            return WrappedKey(self.key_id, chosen, bytes(wrapped))

    def unwrap(self, wrapped: WrappedKey) -> bytes:
        p = self._pkcs11
        if wrapped.kek_id != self.key_id:
            raise KeyUnavailableError(
                f"data key is wrapped by master key {wrapped.kek_id!r}, "
                f"this provider holds {self.key_id!r}",
                kek_id=wrapped.kek_id,
            )
        with self._lock, self._session() as session:
            kek = self._key(session, wrapped.kek_version)
            try:
                temp = kek.unwrap_key(
                    p.ObjectClass.SECRET_KEY,
                    p.KeyType.AES,
                    wrapped.wrapped,
                    mechanism=p.Mechanism.AES_KEY_WRAP_PAD,
                    store=False,
                    capabilities=p.MechanismFlag(0),
                    template={p.Attribute.SENSITIVE: False, p.Attribute.EXTRACTABLE: True},
                )
            except p.exceptions.PKCS11Error:
                raise _cannot_open(wrapped) from None
            try:
                return bytes(temp[p.Attribute.VALUE])
            finally:
                temp.destroy()

    def retire_version(self, version: int) -> None:
        p = self._pkcs11
        with self._lock, self._session() as session:
            states = self._scan(session)
            if states.get(version) == "retired":
                return
            if version not in states:
                raise KeyUnavailableError(f"master key version {version} does not exist")
            if version == max(v for v, s in states.items() if s == "active"):
                raise ConflictError(
                    f"version {version} is the current master key: rotate before retiring it"
                )
            session.create_object(
                {
                    p.Attribute.CLASS: p.ObjectClass.DATA,
                    p.Attribute.TOKEN: True,
                    p.Attribute.PRIVATE: True,
                    p.Attribute.LABEL: f"{self._label}.v{version}.retired",
                    p.Attribute.VALUE: utcnow().isoformat().encode(),
                }
            )
            self._key(session, version).destroy()


# --- factory ------------------------------------------------------------------------------


def key_provider_from_settings(
    settings: Settings, crypto: CryptoSettings | None = None
) -> KeyProvider:
    """The provider the environment asks for (PRIVET_KEY_PROVIDER, PRIVET_PKCS11_*).

    A PKCS#11 token with no master key yet gets version 1, as `privet init` does locally.
    """
    crypto = crypto or get_crypto_settings()
    if crypto.key_provider == "local":
        return LocalKeyProvider.from_settings(settings)
    missing = [
        name
        for name, value in (
            ("PRIVET_PKCS11_MODULE", crypto.pkcs11_module),
            ("PRIVET_PKCS11_TOKEN", crypto.pkcs11_token),
            ("PRIVET_PKCS11_PIN", crypto.pkcs11_pin),
        )
        if not value
    ]
    if missing:
        raise KeyProviderError(f"PRIVET_KEY_PROVIDER=pkcs11 needs {', '.join(missing)}")
    assert crypto.pkcs11_module and crypto.pkcs11_token and crypto.pkcs11_pin
    provider = Pkcs11KeyProvider(
        module=crypto.pkcs11_module,
        token_label=crypto.pkcs11_token,
        pin=crypto.pkcs11_pin.get_secret_value(),
        key_label=crypto.pkcs11_key_label,
    )
    if not provider.list_versions():
        provider.create_version()
    return provider
