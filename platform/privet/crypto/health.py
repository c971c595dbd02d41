"""Master-key health: which provider holds the master key, its versions and dates, and
whether it answers right now. What an operator or auditor may see without a shell on the
server (the API, the CLI and the console's Administration page show it); never key material.

"Reachable" is proved, not assumed: a throwaway random data key is wrapped by the current
version and unwrapped again. A provider that lists its versions but cannot wrap (an HSM
whose session died, a key file made unreadable) is reported unreachable with the reason.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime

from privet.crypto.providers import KekVersion, KeyProvider, LocalKeyProvider, Pkcs11KeyProvider

#: the provider kinds as PRIVET_KEY_PROVIDER names them; anything else plugged in is "custom"
PROVIDER_KINDS: dict[type, str] = {LocalKeyProvider: "local", Pkcs11KeyProvider: "pkcs11"}
_PROBE_SIZE = 32


@dataclass(frozen=True, slots=True)
class MasterKeyHealth:
    """The master key as an administrator may see it (no key material, no data-key ids)."""

    provider: str
    key_id: str
    current_version: int | None
    created_at: datetime | None
    rotated_at: datetime | None
    reachable: bool
    problem: str | None = None
    versions: list[KekVersion] = field(default_factory=list)


def master_key_health(provider: KeyProvider) -> MasterKeyHealth:
    """The provider's kind, key id, versions with their dates, and a wrap/unwrap probe.

    ``created_at`` is version 1's creation, ``rotated_at`` the current version's when it is
    not version 1 (None where the provider does not record dates, as PKCS#11 tokens here)."""
    kind = PROVIDER_KINDS.get(type(provider), "custom")
    try:
        versions = provider.list_versions()
        current = max((v.version for v in versions if v.state == "active"), default=None)
        probe = os.urandom(_PROBE_SIZE)
        if provider.unwrap(provider.wrap(probe)) != probe:
            raise ValueError("the key unwrapped to other bytes than it wrapped")
    except Exception as exc:  # any provider failure is the answer, not an error of this call
        return MasterKeyHealth(
            provider=kind,
            key_id=provider.key_id,
            current_version=None,
            created_at=None,
            rotated_at=None,
            reachable=False,
            problem=f"{type(exc).__name__}: {exc}"[:500],
        )
    by_number = {v.version: v for v in versions}
    first = by_number.get(min(by_number)) if by_number else None
    latest = by_number.get(current) if current is not None else None
    return MasterKeyHealth(
        provider=kind,
        key_id=provider.key_id,
        current_version=current,
        created_at=first.created_at if first else None,
        rotated_at=latest.created_at if latest and latest is not first else None,
        reachable=True,
        versions=versions,
    )
