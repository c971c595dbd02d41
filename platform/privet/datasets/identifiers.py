"""Check digits of the identifiers the PII scan looks for: the scan's regular expressions
find candidates, these functions decide whether a candidate is a real identifier.

A random string of the right shape passes a mod-10 check one time in ten, a mod-97 check
one time in 97: the checks are what keeps a tripwire over business text quiet. Every
function takes ASCII (the scan folds other digits first) and runs in time linear in its
input, which the scan bounds to a few dozen characters.
"""

from __future__ import annotations

import datetime as dt

# ISO 13616 (the SWIFT IBAN registry): the length of an IBAN in each country that issues
# them. A candidate from a country not listed, or of another length, is no IBAN.
IBAN_LENGTHS: dict[str, int] = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22,
    "BH": 22, "BI": 27, "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24,
    "DE": 22, "DJ": 27, "DK": 18, "DO": 28, "EE": 20, "EG": 29, "ES": 24, "FI": 18,
    "FK": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27,
    "GT": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27,
    "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20,
    "LV": 21, "LY": 25, "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MN": 20, "MR": 27,
    "MT": 31, "MU": 30, "NI": 28, "NL": 18, "NO": 15, "OM": 23, "PK": 24, "PL": 28,
    "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "RU": 33, "SA": 24, "SC": 31,
    "SD": 18, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "SO": 23, "ST": 25, "SV": 28,
    "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20, "YE": 30,
}  # fmt: skip


def luhn_ok(digits: str) -> bool:
    """The Luhn (mod 10) check of payment and bank card numbers (ISO/IEC 7812)."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def iban_ok(candidate: str) -> bool:
    """ISO 13616: the country's length, then mod 97 of the rearranged number equals 1."""
    compact = candidate.replace(" ", "")
    if IBAN_LENGTHS.get(compact[:2]) != len(compact):
        return False
    if compact[2:4] in ("00", "01", "99"):  # never issued: the check is 98 - (n mod 97)
        return False
    moved = compact[4:] + compact[:4]
    try:
        number = int("".join(str(int(c, 36)) for c in moved))
    except ValueError:
        return False
    return number % 97 == 1


_CN_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)  # 2^(17-i) mod 11
_CN_ID_CHECK = "10X98765432"


def cn_resident_id_ok(candidate: str, *, today: dt.date | None = None) -> bool:
    """GB 11643: 17 digits (region, birth date YYYYMMDD, sequence) and an ISO 7064
    MOD 11-2 check character (0-9 or X); the birth date must be a real date, after
    1800 (the standard's own example was born in 1880) and not in the future."""
    if len(candidate) != 18 or not candidate[:17].isdigit():
        return False
    try:
        born = dt.date(int(candidate[6:10]), int(candidate[10:12]), int(candidate[12:14]))
    except ValueError:
        return False
    if born.year < 1800 or born > (today or dt.date.today()):
        return False
    total = sum(int(c) * w for c, w in zip(candidate, _CN_ID_WEIGHTS, strict=False))
    return _CN_ID_CHECK[total % 11] == candidate[17].upper()


USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
"""The 31 characters of a Unified Social Credit Code (no I, O, S, V, Z)."""
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)  # 3^i mod 31


def uscc_ok(candidate: str) -> bool:
    """GB 32100-2015: 17 characters of the 31-letter alphabet and a check character
    31 - (sum of value_i * 3^i mod 31) mod 31."""
    if len(candidate) != 18:
        return False
    values = [USCC_ALPHABET.find(c) for c in candidate]
    if min(values) < 0:
        return False
    total = sum(v * w for v, w in zip(values, _USCC_WEIGHTS, strict=False))
    return values[17] == (31 - total % 31) % 31


def steuer_id_ok(candidate: str) -> bool:
    """The German tax id (Steuerliche Identifikationsnummer, § 139b AO): 11 digits, no
    leading 0; in the first ten exactly one digit occurs twice or three times (three
    never all in a row) and every other at most once; ISO 7064 MOD 11,10 check digit."""
    if len(candidate) != 11 or not candidate.isdigit() or candidate[0] == "0":
        return False
    body = candidate[:10]
    counts = sorted((body.count(d) for d in set(body)), reverse=True)
    if counts[0] not in (2, 3) or (len(counts) > 1 and counts[1] > 1):
        return False
    if counts[0] == 3 and any(body[i] == body[i + 1] == body[i + 2] for i in range(8)):
        return False
    product = 10
    for ch in body:
        total = (int(ch) + product) % 10 or 10
        product = total * 2 % 11
    return (11 - product) % 10 == int(candidate[10])
