"""The PKCS#11 provider against a real SoftHSM2 token created by the test session."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from typing import Any

import pkcs11
import pytest
from sqlalchemy import Engine

from privet import crypto
from privet.config import Settings, clear_settings_caches
from privet.db import session_scope

SoftHsm = Any  # the conftest fixture type; conftest modules are not importable


@pytest.fixture
def hsm_provider(
    softhsm: SoftHsm, home_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> crypto.Pkcs11KeyProvider:
    """A provider from PRIVET_* env vars, with a key label of its own in the shared token."""
    monkeypatch.setenv("PRIVET_KEY_PROVIDER", "pkcs11")
    monkeypatch.setenv("PRIVET_PKCS11_MODULE", softhsm.module)
    monkeypatch.setenv("PRIVET_PKCS11_TOKEN", softhsm.token)
    monkeypatch.setenv("PRIVET_PKCS11_PIN", softhsm.pin)
    monkeypatch.setenv("PRIVET_PKCS11_KEY_LABEL", f"kek-{secrets.token_hex(4)}")
    clear_settings_caches()
    provider = crypto.key_provider_from_settings(home_settings)
    assert isinstance(provider, crypto.Pkcs11KeyProvider)
    return provider


def test_master_key_lives_in_the_token_and_is_not_extractable(
    hsm_provider: crypto.Pkcs11KeyProvider, softhsm: SoftHsm, home_settings: Settings
) -> None:
    assert [(v.version, v.state) for v in hsm_provider.list_versions()] == [(1, "active")]
    assert hsm_provider.key_id.startswith(f"pkcs11:{softhsm.token}/kek-")
    label = hsm_provider.key_id.rsplit("/", 1)[1]
    token = pkcs11.lib(softhsm.module).get_token(token_label=softhsm.token)
    with token.open(user_pin=softhsm.pin) as session:
        key = session.get_key(object_class=pkcs11.ObjectClass.SECRET_KEY, label=f"{label}.v1")
        assert key[pkcs11.Attribute.EXTRACTABLE] is False
        assert key[pkcs11.Attribute.SENSITIVE] is True
        with pytest.raises(pkcs11.exceptions.AttributeSensitive):
            key[pkcs11.Attribute.VALUE]
    # No local key files: the master key is only in the HSM.
    assert not (home_settings.secrets_dir / "kek").exists()


def test_wrap_unwrap_rotate_retire_in_the_hsm(hsm_provider: crypto.Pkcs11KeyProvider) -> None:
    data_key = os.urandom(32)
    w1 = hsm_provider.wrap(data_key)
    assert w1.kek_version == 1 and len(w1.wrapped) == 40 and data_key not in w1.wrapped
    assert hsm_provider.unwrap(w1) == data_key
    assert hsm_provider.create_version() == 2
    w2 = hsm_provider.wrap(data_key)
    assert w2.kek_version == 2
    with pytest.raises(crypto.KeyUnavailableError, match="cannot open"):
        hsm_provider.unwrap(crypto.WrappedKey(w1.kek_id, 2, w1.wrapped))
    hsm_provider.retire_version(1)
    assert [(v.version, v.state) for v in hsm_provider.list_versions()] == [
        (1, "retired"),
        (2, "active"),
    ]
    with pytest.raises(crypto.KeyUnavailableError):
        hsm_provider.unwrap(w1)
    assert hsm_provider.unwrap(w2) == data_key


def test_wrong_pin_is_a_clear_error(softhsm: SoftHsm) -> None:
    provider = crypto.Pkcs11KeyProvider(
        module=softhsm.module, token_label=softhsm.token, pin="wrong", key_label="kek-x"
    )
    with pytest.raises(crypto.KeyProviderError, match="log in"):
        provider.list_versions()


def test_unknown_token_is_a_clear_error(softhsm: SoftHsm) -> None:
    with pytest.raises(crypto.KeyProviderError, match="cannot open PKCS#11 token"):
        crypto.Pkcs11KeyProvider(
            module=softhsm.module, token_label="no-such-token", pin="1", key_label="k"
        )


def test_envelope_rotation_with_the_hsm(
    hsm_provider: crypto.Pkcs11KeyProvider,
    sqlite_engine: Engine,
    store: crypto.LocalBlobStore,
    make_ref: Callable[..., crypto.ObjectRef],
) -> None:
    refs = [make_ref() for _ in range(3)]
    payloads = {r: os.urandom(100_000) for r in refs}
    with session_scope(sqlite_engine) as session:
        for r, data in payloads.items():
            crypto.write_object_bytes(
                session=session, provider=hsm_provider, store=store, ref=r, data=data
            )
    with session_scope(sqlite_engine) as session:
        report = crypto.rotate(session=session, provider=hsm_provider)
        assert (report.to_version, report.rewrapped, report.failed) == (2, 3, [])
    with session_scope(sqlite_engine) as session:
        crypto.retire(session=session, provider=hsm_provider, version=1)
    with session_scope(sqlite_engine) as session:
        for r, data in payloads.items():
            got = crypto.read_object_bytes(
                session=session, provider=hsm_provider, store=store, ref=r
            )
            assert got == data
