"""A base model's licence: an SPDX licence id or expression, checked against the SPDX
License List that ``license-expression`` ships (ids, ``AND``/``OR``/``WITH`` and
exceptions), or free text marked as such (``licence_text``).

A model-risk team reads the licence before a model is fine-tuned on customer data: a
typo in an id ("Apache 2", "MIT-2.0") must not pass for a licence, so an id that the SPDX
list does not know is refused with rule ``spdx-licence``; a licence with no SPDX id (a
vendor's own terms, ``LicenseRef-…``) is given as its text instead.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from privet.kit.errors import InvalidInputError

SPDX_RULE = "spdx-licence"
ONE_OF_RULE = "licence-one-of"


@dataclass(frozen=True)
class Licence:
    """Exactly one of: the normalised SPDX expression, or the licence's own text."""

    spdx: str | None
    text: str | None


@lru_cache(maxsize=1)
def _licensing() -> Any:
    from license_expression import get_spdx_licensing

    return get_spdx_licensing()


def spdx_expression(value: str, *, field: str = "license") -> str:
    """``value`` as a normalised SPDX expression (``apache-2.0`` → ``Apache-2.0``), or
    InvalidInputError (rule ``spdx-licence``) naming what the SPDX list does not know."""
    info = _licensing().validate(value.strip(), strict=True)
    if info.errors or not info.normalized_expression:
        unknown = sorted({str(s) for s in info.invalid_symbols if str(s).strip()})
        why = f"unknown: {', '.join(unknown)}" if unknown else "; ".join(info.errors)
        raise InvalidInputError(
            f"{field} {value!r} is not an SPDX licence id or expression ({why}): give an id "
            "from the SPDX License List (e.g. Apache-2.0, MIT OR Apache-2.0), or give the "
            "licence's own words as licence_text",
            field=field,
            rule=SPDX_RULE,
            unknown=unknown,
        )
    return str(info.normalized_expression)


def licence_details(licence: Licence) -> dict[str, Any]:
    """How a ledger event names a licence: its kind, the SHA-256 of the recorded expression
    or text (which one was accepted, pinned), and an expression's SPDX ids (event details
    hold no spaces, so neither the expression itself nor the text)."""
    recorded = licence.spdx if licence.spdx is not None else (licence.text or "")
    details: dict[str, Any] = {
        "licence_kind": "spdx" if licence.spdx is not None else "text",
        "licence_sha256": hashlib.sha256(recorded.encode()).hexdigest(),
    }
    if licence.spdx is not None:
        details["license_ids"] = [str(k) for k in _licensing().license_keys(licence.spdx)]
    return details


def given_licence(spdx: str | None, text: str | None) -> Licence | None:
    """The licence the caller gave (None: read it from the folder); both at once is
    refused (rule ``licence-one-of``)."""
    if spdx is not None and text is not None:
        raise InvalidInputError(
            "give the licence either as an SPDX id or expression (license) or as free text "
            "(licence_text), not both",
            field="license",
            rule=ONE_OF_RULE,
        )
    if spdx is not None:
        return Licence(spdx=spdx_expression(spdx), text=None)
    if text is not None:
        if not text.strip():
            raise InvalidInputError(
                "licence_text is empty", field="licence_text", rule="licence-text"
            )
        return Licence(spdx=None, text=text.strip())
    return None
