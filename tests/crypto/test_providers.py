"""Local master key files and the provider factory."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from privet import crypto
from privet.config import Settings, clear_settings_caches
from privet.crypto.providers import local_kek_dir
from privet.kit.errors import ConflictError


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_local_master_key_is_created_once_with_private_permissions(
    home_settings: Settings,
) -> None:
    directory = crypto.ensure_local_master_key(home_settings)
    key_file = directory / "v1.key"
    first = key_file.read_bytes()
    assert len(first) == 32
    assert mode(key_file) == 0o600
    assert mode(directory) == 0o700
    assert mode(home_settings.secrets_dir) == 0o700
    crypto.ensure_local_master_key(home_settings)
    assert key_file.read_bytes() == first
    assert sorted(p.name for p in directory.iterdir()) == ["v1.key"]


def test_wrap_unwrap_and_versions(provider: crypto.LocalKeyProvider) -> None:
    data_key = os.urandom(32)
    w1 = provider.wrap(data_key)
    assert (w1.kek_id, w1.kek_version) == ("local", 1)
    assert data_key not in w1.wrapped and len(w1.wrapped) == 40
    assert provider.unwrap(w1) == data_key

    assert provider.create_version() == 2
    assert provider.current_version() == 2
    w2 = provider.wrap(data_key)
    assert w2.kek_version == 2 and w2.wrapped != w1.wrapped
    assert provider.unwrap(w1) == data_key == provider.unwrap(w2)
    assert provider.wrap(data_key, version=1).kek_version == 1

    with pytest.raises(ConflictError):
        provider.retire_version(2)
    provider.retire_version(1)
    provider.retire_version(1)  # idempotent
    assert [(v.version, v.state) for v in provider.list_versions()] == [
        (1, "retired"),
        (2, "active"),
    ]
    with pytest.raises(crypto.KeyUnavailableError, match="version 1"):
        provider.unwrap(w1)
    with pytest.raises(crypto.KeyUnavailableError):
        provider.wrap(data_key, version=1)
    assert provider.unwrap(w2) == data_key
    assert provider.create_version() == 3  # never reuses a retired number


def test_retired_key_material_is_gone(
    home_settings: Settings, provider: crypto.LocalKeyProvider
) -> None:
    v1 = (local_kek_dir(home_settings) / "v1.key").read_bytes()
    provider.create_version()
    provider.retire_version(1)
    for path in home_settings.home.rglob("*"):
        if path.is_file():
            assert v1 not in path.read_bytes(), path


def test_modified_or_foreign_wrapped_key_is_refused(provider: crypto.LocalKeyProvider) -> None:
    wrapped = provider.wrap(os.urandom(32))
    bad = crypto.WrappedKey(
        wrapped.kek_id, 1, bytes([wrapped.wrapped[0] ^ 1]) + wrapped.wrapped[1:]
    )
    with pytest.raises(crypto.KeyUnavailableError, match="cannot open"):
        provider.unwrap(bad)
    with pytest.raises(crypto.KeyUnavailableError, match="wrapped by master key"):
        provider.unwrap(crypto.WrappedKey("pkcs11:tok/kek", 1, wrapped.wrapped))
    with pytest.raises(crypto.KeyUnavailableError, match="retired or unknown"):
        provider.unwrap(crypto.WrappedKey("local", 9, wrapped.wrapped))


def test_factory_defaults_to_local(
    home_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PRIVET_KEY_PROVIDER", raising=False)
    clear_settings_caches()
    provider = crypto.key_provider_from_settings(home_settings)
    assert isinstance(provider, crypto.LocalKeyProvider)
    assert isinstance(provider, crypto.KeyProvider)
    assert (local_kek_dir(home_settings) / "v1.key").exists()


def test_factory_pkcs11_names_missing_settings(
    home_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PRIVET_KEY_PROVIDER", "pkcs11")
    monkeypatch.delenv("PRIVET_PKCS11_MODULE", raising=False)
    monkeypatch.setenv("PRIVET_PKCS11_TOKEN", "tok")
    monkeypatch.delenv("PRIVET_PKCS11_PIN", raising=False)
    clear_settings_caches()
    with pytest.raises(crypto.KeyProviderError) as info:
        crypto.key_provider_from_settings(home_settings)
    assert "PRIVET_PKCS11_MODULE" in info.value.detail
    assert "PRIVET_PKCS11_PIN" in info.value.detail
    assert not local_kek_dir(home_settings).exists()
