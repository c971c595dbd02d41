"""What an encrypted object is: the identity every ciphertext is bound to."""

from __future__ import annotations

import re
from dataclasses import dataclass

from privet.kit.errors import InvalidInputError

_TOKEN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


@dataclass(frozen=True, slots=True)
class ObjectRef:
    """An object (dataset version, model artifact, export...) that owns one data key.

    `kind`, `object_id` and `project_id` go into the key derivation of every blob of the
    object, so a blob moved to another object, kind or project fails to decrypt.
    """

    kind: str
    object_id: str
    project_id: str

    def __post_init__(self) -> None:
        for name in ("kind", "object_id", "project_id"):
            value = getattr(self, name)
            if not isinstance(value, str) or not _TOKEN.match(value):
                raise InvalidInputError(
                    f"{name} must be 1-100 characters of letters, digits, '_', '.', '-'",
                    field=name,
                )


def check_part(part: str) -> str:
    """A blob part name (`data`, `weights`, `checkpoint-3`): same rules as ids."""
    if not _TOKEN.match(part):
        raise InvalidInputError("part must be 1-100 characters of letters, digits, '_.-'")
    return part
