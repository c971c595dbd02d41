"""A lightweight PII scan: e-mails, phone numbers, IBANs, payment and bank cards, national
ids (US SSN, UK NINO, Spanish DNI, Chinese resident id, German tax id), Chinese business
codes (Unified Social Credit Code) and birth dates.

It is a tripwire, not a classifier: it exists to catch a dataset declared as holding no
personal data that visibly holds some. Whether a hit blocks registration is decided by
policy (``data.pii-in-non-personal-dataset``) from the upload context. Findings record
counts and line numbers only, never the matched text.

Every pattern runs in time linear in the text: quantifiers are bounded (an e-mail's local
part is at most 64 characters, a domain label 63), fixed-length identifiers are tried only
where a run of digits or letters starts, and a run of local-part characters is only tried
from its start, so no input makes the engine backtrack over the whole text (the unbounded
e-mail pattern this replaces took ~19 s on a 60 kB cell). The text itself is bounded by
PRIVET_DATASETS_MAX_TEXT_CHARS.

Digits of every script count: the text is first folded (``fold_digits``) so that fullwidth
digits (U+FF10-FF19, as Chinese input methods type them) or Arabic-Indic ones (U+0660-0669)
are the digits they are; the patterns then match ASCII only (``re.ASCII``). A phone
number in fullwidth digits is still a phone number: a dataset cannot hide one by changing
script.

Precision matters as much as recall (a false hit refuses a non-personal upload): a digit
group is a phone number only with an international prefix, an area code in parentheses,
or a phone word just before it (``tel``, ``call``, ``mobile``...), and never when it holds
a calendar date, except a Chinese mobile number (11 digits, ``1[3-9]``), which is one by
its shape; an identifier with a check character counts only when the check holds
(``privet.datasets.identifiers``); a payment card must be grouped like one; a date counts
only as a birth date, right after a birth word. docs/DATASETS.md gives the measured hit
rates.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any

from privet.datasets.identifiers import (
    cn_resident_id_ok,
    iban_ok,
    luhn_ok,
    steuer_id_ok,
    uscc_ok,
)

KINDS = ("email", "phone", "iban", "card", "national_id", "business_id", "birth_date")
_MAX_LINES_PER_KIND = 20
POLICY_ID = "data.pii-in-non-personal-dataset"
"""The policy that refuses a dataset declared non-personal in which the scan found some."""

_EMAIL = re.compile(
    r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]{1,64}"
    r"@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63}){0,8}\.[A-Za-z]{2,24}",
    re.ASCII,
)
_DIGIT = re.compile(r"\d", re.ASCII)
_FOREIGN_DIGIT = re.compile(r"[^\x00-\x7f\D]")
_FOREIGN = re.compile(r"[\uff01-\uff5e]|[^\x00-\x7f\D]")
"""A fullwidth ASCII form, or a decimal digit (any script) that is not ASCII."""


def may_hold_pii(text: str) -> bool:
    """Cheap pre-filter: text without a digit (of any script) or an '@' cannot hold what
    we look for (eleven substring searches in C beat one character-class regex by 3x; the
    regex runs only on text that is not ASCII)."""
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
        or (not text.isascii() and _FOREIGN.search(text) is not None)
    )


_A = re.ASCII
_CARD = re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])", _A)
# Bank cards (UnionPay among them) run 13 to 19 digits: written in one run, or in fours.
_CARD_GROUPS = {
    *((n,) for n in range(13, 20)),
    *((4, 4, 4, 4, n) for n in (1, 2, 3)),
    (4, 4, 4, 4),
    (4, 6, 5),
    (4, 6, 4),
}
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
# Identifiers of fixed length, never part of a longer run of letters or digits, found in
# one pass: 18 characters (Chinese resident id, else Unified Social Credit Code), 11 digits
# (German tax id, else a Chinese mobile number), or a mobile number with +86 or separators.
_FIXED = re.compile(
    r"(?<![0-9A-Za-z+])(?:(?P<c18>[0-9A-Z]{18}|[0-9]{17}[Xx])|(?P<d11>[0-9]{11})"
    r"|(?P<mobile>(?:(?:\+|00)86[ -]?)?1[3-9][0-9]"
    r"(?:[0-9]{8}|(?P<sep>[ -])[0-9]{4}(?P=sep)[0-9]{4})))"
    r"(?![0-9A-Za-z])",
    _A,
)
_FIXED_GATE = re.compile(r"[0-9A-Z]{11}|[0-9]{3}[ -][0-9]{4}", _A)
"""What every ``_FIXED`` match holds: a cheap test (a scan for a character class) that
spares most cells the lookbehind tried at every position."""
_CN_ID = re.compile(r"[1-9][0-9]{16}[0-9Xx]", _A)
_USCC = re.compile(r"[0-9A-HJ-NPQRTUWXY]{2}[0-9]{6}[0-9A-HJ-NPQRTUWXY]{10}", _A)
_CN_MOBILE = re.compile(r"1[3-9][0-9]{9}", _A)
_NON_DIGIT = re.compile(r"\D", _A)
_GROUPS = re.compile(r"\d+", _A)
_DNI_LETTERS = "TRWAGMYFPDXBNJZSQVHLCKE"


@functools.cache
def _fold_table() -> dict[int, int]:
    """Every non-ASCII decimal digit (category Nd, ~700 of them) to its ASCII digit, and
    the fullwidth ASCII forms (U+FF01-FF5E) to ASCII: built once, on first need. Every Nd
    character lies below U+20000 (the last block, U+1FBF0, is Unicode 13's)."""
    everything = "".join(map(chr, range(0x80, 0xD800))) + "".join(map(chr, range(0xE000, 0x20000)))
    table = {ord(ch): 48 + unicodedata.decimal(ch) for ch in _FOREIGN_DIGIT.findall(everything)}
    table.update({cp: cp - 0xFEE0 for cp in range(0xFF01, 0xFF5F)})
    return table


def fold_digits(text: str) -> str:
    """`text` with every decimal digit of any script (Unicode category Nd: Arabic-Indic,
    Devanagari, fullwidth...)
    written as its ASCII digit and the fullwidth ASCII forms as ASCII, one character for
    one, so positions do not move. Other number-like signs (², ①, 十) stay as they are."""
    if text.isascii() or _FOREIGN.search(text) is None:
        return text
    return text.translate(_fold_table())


def _mark(mask: bytearray, m: re.Match[str]) -> None:
    mask[m.start() : m.end()] = b"\x01" * (m.end() - m.start())


def _accounts(text: str, found: set[str]) -> bytearray:
    """IBANs; the mask of IBAN-shaped references (valid or not: account codes, with no
    card or phone inside)."""
    account_like = bytearray(len(text))
    for m in _IBAN.finditer(text):
        _mark(account_like, m)
        if iban_ok(m.group()):
            found.add("iban")
    return account_like


def _checked_ids(text: str, taken: bytearray, found: set[str]) -> None:
    """The identifiers with a check character: Chinese resident ids, Unified Social
    Credit Codes, German tax ids; and Chinese mobile numbers (by their shape)."""
    if not _FIXED_GATE.search(text):
        return
    for m in _FIXED.finditer(text):
        if any(taken[m.start() : m.end()]):
            continue
        value, kind = m.group(), None
        if m.group("c18"):
            if _CN_ID.fullmatch(value) and cn_resident_id_ok(value):
                kind = "national_id"
            elif _USCC.fullmatch(value) and uscc_ok(value):
                kind = "business_id"
        elif m.group("d11"):
            if steuer_id_ok(value):
                kind = "national_id"
            elif _CN_MOBILE.fullmatch(value):
                kind = "phone"
        else:
            kind = "phone"
        if kind is not None:
            found.add(kind)
            _mark(taken, m)


def _cards(text: str, taken: bytearray, account_like: bytearray, found: set[str]) -> None:
    for m in _CARD.finditer(text):
        digits = _NON_DIGIT.sub("", m.group())
        groups = tuple(len(g) for g in _GROUPS.findall(m.group()))
        if (
            13 <= len(digits) <= 19
            and groups in _CARD_GROUPS
            and not any(account_like[m.start() : m.end()])
            and not any(taken[m.start() : m.end()])
            and luhn_ok(digits)
        ):
            found.add("card")
            _mark(taken, m)


def _national_ids(text: str, taken: bytearray, found: set[str]) -> None:
    for pattern in (_SSN, _NINO):
        for m in pattern.finditer(text):
            found.add("national_id")
            _mark(taken, m)
    for m in _DNI.finditer(text):
        if _DNI_LETTERS[int(m.group(1)) % 23] == m.group(2):
            found.add("national_id")
            _mark(taken, m)


def _has_phone(text: str, taken: bytearray) -> bool:
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
            return True
    return False


def find_kinds(text: str) -> set[str]:
    """The kinds of personal identifiers that appear in `text` (digits of any script)."""
    text = fold_digits(text)
    found: set[str] = set()
    if "@" in text and _EMAIL.search(text):
        found.add("email")
    if not _DIGIT.search(text):
        return found
    # Characters already identified as another kind (a mask, not a list of spans: the
    # overlap test stays O(match length), so many matches cannot make the scan quadratic).
    account_like = _accounts(text, found)
    taken = bytearray(account_like)
    _checked_ids(text, taken, found)
    _cards(text, taken, account_like, found)
    _national_ids(text, taken, found)
    if _has_phone(text, taken):
        found.add("phone")
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
