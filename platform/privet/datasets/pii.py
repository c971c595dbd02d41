"""A lightweight PII scan: emails, phone numbers, IBANs, payment cards, national ids,
birth dates.

It is a tripwire, not a classifier: it exists to catch a dataset declared as holding no
personal data that visibly holds some. Whether a hit blocks registration is decided by
policy (``data.pii-in-non-personal-dataset``) from the upload context. Findings record
counts and line numbers only, never the matched text.

Every pattern runs in time linear in the text: quantifiers are bounded (an e-mail's local
part is at most 64 characters, a domain label 63), and a run of local-part characters is
only tried from its start, so no input makes the engine backtrack over the whole text (the
unbounded e-mail pattern this replaces took ~19 s on a 60 kB cell). The text itself is
bounded by PRIVET_DATASETS_MAX_TEXT_CHARS. Digits are ASCII only (``re.ASCII``).

Precision matters as much as recall (a false hit refuses a non-personal upload): a digit
group is a phone number only with an international prefix, an area code in parentheses,
or a phone word just before it (``tel``, ``call``, ``mobile``...), and never when it holds
a calendar date; a payment card must be grouped like one; a date counts only as a birth
date, right after a birth word. docs/DATASETS.md gives the measured hit rates.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

KINDS = ("email", "phone", "iban", "card", "national_id", "birth_date")
_MAX_LINES_PER_KIND = 20
POLICY_ID = "data.pii-in-non-personal-dataset"
"""The policy that refuses a dataset declared non-personal in which the scan found some."""

_EMAIL = re.compile(
    r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]{1,64}"
    r"@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63}){0,8}\.[A-Za-z]{2,24}",
    re.ASCII,
)
_DIGIT = re.compile(r"\d", re.ASCII)


def may_hold_pii(text: str) -> bool:
    """Cheap pre-filter: text without an ASCII digit or an '@' cannot hold what we look
    for (eleven substring searches in C beat one character-class regex by 3x)."""
    return (
        "@" in text
        or "0" in text
        or "1" in text
        or "2" in text
        or "3" in text
        or "4" in text
        or "5" in text
        or "6" in text
        or "7" in text
        or "8" in text
        or "9" in text
    )


_A = re.ASCII
_CARD = re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])", _A)
_CARD_GROUPS = {(16,), (13,), (15,), (19,), (4, 4, 4, 4), (4, 4, 4, 4, 3), (4, 6, 5), (4, 6, 4)}
_PHONE = re.compile(r"(?<![\w+])(?:\+|00)?\(?\d[\d ().-]{6,18}\d(?![\w])", _A)
_PHONE_WORDS = re.compile(
    r"(?i)(?:\btel\b|\btel\.|phone|\bcall|mobile|\bcell\b|\bfax\b|contact|\bring\b|whatsapp|"
    r"\bsms\b|hotline|\bdial|\bmob\b|\bph\b|telefon|t[ée]l[ée]phone|tel[ée]fono|"
    r"电话|手机|電話|फ़ोन|फोन)"
)
_AMOUNT = re.compile(r"\d{1,3}(?:( |\.)\d{3})(?:\1\d{3})+", _A)  # 1 234 567, 1.234.567
_PHONE_CONTEXT = 40  # characters before a number searched for a phone word ("call Ann Poe on")
_DATE = (
    r"(?:(?:0?[1-9]|[12]\d|3[01])[./-](?:0?[1-9]|1[0-2])[./-](?:19|20)\d\d"
    r"|(?:0?[1-9]|1[0-2])[./-](?:0?[1-9]|[12]\d|3[01])[./-](?:19|20)\d\d"
    r"|(?:19|20)\d\d[./-](?:0?[1-9]|1[0-2])[./-](?:0?[1-9]|[12]\d|3[01]))"
)
_HAS_DATE = re.compile(_DATE, _A)
_MONTHS = r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]{0,6}\.?"
_BIRTH = re.compile(
    r"(?i)(?:\bborn\b|date of birth|\bd\.?o\.?b\b\.?|birth ?date|birthday|\bgeboren\b|"
    r"\bn[ée]e?\b le|nacid[oa])[^\n\d]{0,20}?"
    r"(?:" + _DATE + r"|\d{1,2}(?:st|nd|rd|th)? " + _MONTHS + r",? (?:19|20)\d\d"
    r"|" + _MONTHS + r" \d{1,2}(?:st|nd|rd|th)?,? (?:19|20)\d\d)",
    _A,
)
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b", _A)
_SSN = re.compile(r"\b(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}\b", _A)
_NINO = re.compile(r"\b[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?\d{2} ?\d{2} ?\d{2} ?[A-D]\b", _A)
_DNI = re.compile(r"\b(\d{8})-?([A-HJ-NP-TV-Z])\b", _A)
_NON_DIGIT = re.compile(r"\D", _A)
_GROUPS = re.compile(r"\d+", _A)
_DNI_LETTERS = "TRWAGMYFPDXBNJZSQVHLCKE"


def luhn_ok(digits: str) -> bool:
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
    compact = candidate.replace(" ", "")
    if not 15 <= len(compact) <= 34:
        return False
    if compact[2:4] in ("00", "01", "99"):  # never issued: the check is 98 - (n mod 97)
        return False
    moved = compact[4:] + compact[:4]
    try:
        number = int("".join(str(int(c, 36)) for c in moved))
    except ValueError:
        return False
    return number % 97 == 1


def find_kinds(text: str) -> set[str]:
    """The kinds of personal identifiers that appear in `text`."""
    found: set[str] = set()
    if "@" in text and _EMAIL.search(text):
        found.add("email")
    if not _DIGIT.search(text):
        return found
    # Characters already identified as another kind (a mask, not a list of spans: the
    # overlap test stays O(match length), so many matches cannot make the scan quadratic).
    taken = bytearray(len(text))
    # IBAN-shaped references (valid or not) are account codes: no card or phone inside.
    account_like = bytearray(len(text))
    for m in _IBAN.finditer(text):
        account_like[m.start() : m.end()] = b"\x01" * (m.end() - m.start())
        if iban_ok(m.group()):
            found.add("iban")
    taken[:] = account_like
    for m in _CARD.finditer(text):
        digits = _NON_DIGIT.sub("", m.group())
        groups = tuple(len(g) for g in _GROUPS.findall(m.group()))
        if (
            13 <= len(digits) <= 19
            and groups in _CARD_GROUPS
            and not any(account_like[m.start() : m.end()])
            and luhn_ok(digits)
        ):
            found.add("card")
            taken[m.start() : m.end()] = b"\x01" * (m.end() - m.start())
    for pattern in (_SSN, _NINO):
        for m in pattern.finditer(text):
            found.add("national_id")
            taken[m.start() : m.end()] = b"\x01" * (m.end() - m.start())
    for m in _DNI.finditer(text):
        if _DNI_LETTERS[int(m.group(1)) % 23] == m.group(2):
            found.add("national_id")
            taken[m.start() : m.end()] = b"\x01" * (m.end() - m.start())
    for m in _PHONE.finditer(text):
        if any(taken[m.start() : m.end()]):
            continue
        raw = m.group()
        n_digits = sum(c.isdigit() for c in raw)
        if not 9 <= n_digits <= 15 or _SSN.fullmatch(raw) or _HAS_DATE.search(raw):
            continue
        separators = sum(c in " ().-" for c in raw)
        # "00" is an international prefix only before a full number (00 + 9 or more digits);
        # "003 963 754" is a company number
        international = raw.startswith("+") or (raw.startswith("00") and n_digits >= 11)
        area_code = raw.startswith("(") and separators >= 2
        spoken = (
            separators >= 1
            and not _AMOUNT.fullmatch(raw)
            and bool(_PHONE_WORDS.search(text, max(0, m.start() - _PHONE_CONTEXT), m.start()))
        )
        if international or area_code or spoken:
            found.add("phone")
            break
    if _BIRTH.search(text):
        found.add("birth_date")
    return found


@dataclass
class PiiScan:
    """Running totals of a scan: rows with a hit per kind, and their first line numbers."""

    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    lines: dict[str, list[int]] = field(default_factory=lambda: {k: [] for k in KINDS})

    def scan(self, text: str, line: int) -> None:
        if not may_hold_pii(text):
            return
        for kind in find_kinds(text):
            self.counts[kind] += 1
            if len(self.lines[kind]) < _MAX_LINES_PER_KIND:
                self.lines[kind].append(line)

    @property
    def suspected(self) -> bool:
        return any(self.counts.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "suspected": self.suspected,
            "counts": {k: v for k, v in self.counts.items() if v},
            "first_lines": {k: v for k, v in self.lines.items() if v},
        }

    def warning(self) -> str | None:
        if not self.suspected:
            return None
        parts = ", ".join(f"{k} in {v} row(s)" for k, v in self.counts.items() if v)
        return f"the PII scan found what looks like personal data: {parts}"


def findings(scan: dict[str, Any]) -> list[dict[str, Any]]:
    """Per kind found: how many rows and their first line numbers (``as_dict()`` input).
    Never the values."""
    counts: dict[str, int] = scan.get("counts", {})
    lines: dict[str, list[int]] = scan.get("first_lines", {})
    return [
        {"kind": kind, "rows": counts[kind], "lines": list(lines.get(kind, []))}
        for kind in KINDS
        if counts.get(kind)
    ]


def describe(scan: dict[str, Any]) -> str:
    """One sentence for a refusal: kinds, row counts, line numbers (capped), what to do."""
    parts = []
    for f in findings(scan):
        shown = ", ".join(map(str, f["lines"]))
        more = ", ..." if f["rows"] > len(f["lines"]) else ""
        word = "line" if len(f["lines"]) == 1 and not more else "lines"
        parts.append(f"{f['kind']} in {f['rows']} row(s) ({word} {shown}{more})")
    return (
        "The PII scan found " + "; ".join(parts) + " (values are not shown): remove or mask "
        "them in those rows, or declare contains_personal_data: true if the data is personal"
    )
