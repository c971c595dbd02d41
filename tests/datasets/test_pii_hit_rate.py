"""The PII scan's hit rate: under 1% of rows flagged on public corpora and on generated
financial text that holds no personal data, without missing generated personal data.

The figures are in docs/DATASETS.md ("How often the PII scan fires"); run with `-s` to see
them.
"""

from __future__ import annotations

import csv
import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from privet.datasets.pii import find_kinds, may_hold_pii

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
MAX_RATE = 0.01


def _flagged(texts: list[str]) -> list[str]:
    return [t for t in texts if may_hold_pii(t) and find_kinds(t)]


def _corpora() -> Iterator[tuple[str, list[str]]]:
    """The shared corpora's texts (read in place; see each folder's SOURCE.txt)."""
    sst2 = (SHARED / "sst2" / "train.tsv").read_text(encoding="utf-8").splitlines()[1:]
    yield "SST-2 train", [line.split("\t", 1)[1].rstrip("\r") for line in sst2]
    for name, file in (("TREC en", "train_5500.label"), ("TREC hi", "train_5500.hi.label")):
        lines = (SHARED / "trec" / file).read_text(encoding="utf-8").splitlines()
        yield name, [line.split(" ", 1)[1] for line in lines if line.strip()]
    with (SHARED / "waimai_10k" / "waimai_10k.csv").open(encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh)
        next(reader)
        yield "waimai_10k", [row[1] for row in reader]
    sms = (SHARED / "sms_spam" / "SMSSpamCollection").read_text(encoding="utf-8").splitlines()
    yield "SMS spam", [line.split("\t", 1)[1] for line in sms]


@pytest.mark.shared_data
def test_hit_rate_on_shared_corpora_is_below_one_percent() -> None:
    rates = {}
    for name, texts in _corpora():
        flagged = _flagged(texts)
        rates[name] = (len(flagged), len(texts))
        print(f"{name}: {len(flagged)} / {len(texts)} rows flagged")
    for name, (flagged_n, total) in rates.items():
        assert flagged_n / total < MAX_RATE, (name, flagged_n, total)


# --- generated financial text ----------------------------------------------------------

COMPANIES = ["Acme Holdings", "Nordbank AG", "Bluewater plc", "Sakura Trading KK", "Iberia SA"]
CURRENCIES = ["EUR", "USD", "GBP", "JPY", "CHF"]
FIRST = ["Jane", "Ahmed", "Maria", "Kenji", "Olga", "Peter"]
LAST = ["Roe", "Khan", "Garcia", "Sato", "Ivanova", "Smith"]
MONTHS = ["January", "March", "June", "September", "December"]


def _amount(rng: random.Random) -> str:
    value = rng.randint(1_000, 9_999_999_999)
    style = rng.randrange(4)
    if style == 0:
        return f"{value:,}"
    if style == 1:
        return f"{value:,}".replace(",", " ")
    if style == 2:
        return f"{value:,}".replace(",", ".")
    return f"{value / 1e6:.1f} million"


def _date(rng: random.Random) -> str:
    y, m, d = rng.randint(1995, 2025), rng.randint(1, 12), rng.randint(1, 28)
    return rng.choice(
        [
            f"{y}-{m:02d}-{d:02d}",
            f"{d:02d}.{m:02d}.{y}",
            f"{m:02d}/{d:02d}/{y}",
            f"{d} {MONTHS[m % 5]} {y}",
            f"{MONTHS[m % 5]} {d}, {y}",
        ]
    )


def _registration(rng: random.Random) -> str:
    n = rng.randint
    return rng.choice(
        [
            f"HRB {n(10000, 999999)}",
            f"Companies House no. {n(0, 99999999):08d}",
            f"SIREN {n(100, 999)} {n(100, 999)} {n(100, 999)}",
            f"KvK {n(10000000, 99999999)}",
            f"CIK {n(0, 9999999999):010d}",
            f"ABN {n(10, 99)} {n(100, 999)} {n(100, 999)} {n(100, 999)}",
            f"ACN {n(0, 999):03d} {n(0, 999):03d} {n(0, 999):03d}",
            f"EIN {n(10, 99)}-{n(1000000, 9999999)}",
            f"LEI 5493{n(10**15, 10**16 - 1)}",
            f"ISIN US{n(10**9, 10**10 - 1)}",
            f"VAT DE{n(100000000, 999999999)}",
        ]
    )


def _account_ref(rng: random.Random) -> str:
    """IBAN-like references that are not IBANs (wrong check digits) or internal codes."""
    groups = " ".join(f"{rng.randint(0, 9999):04d}" for _ in range(4))
    return rng.choice(
        [
            f"settlement account DE00 {groups} {rng.randint(10, 99)}",
            f"GL {rng.randint(1000, 9999)}-{rng.randint(1000, 9999)}-{rng.randint(10, 99)}",
            f"ref. ACC-{rng.randint(2000, 2025)}-{rng.randint(0, 999999):06d}",
            f"nostro GB00 XXXX {groups}",
        ]
    )


def financial_sentence(rng: random.Random) -> str:
    c, cur = rng.choice(COMPANIES), rng.choice(CURRENCIES)
    y = rng.randint(2000, 2025)
    return rng.choice(
        [
            f"{c} reported revenue of {cur} {_amount(rng)} for the year ended {_date(rng)}, up "
            f"{rng.uniform(0, 30):.1f}% from {cur} {_amount(rng)}.",
            f"Guidance for {y}-{y + 1} is {rng.randint(1, 9)},{rng.randint(100, 999)}-"
            f"{rng.randint(1, 9)},{rng.randint(100, 999)} units and a margin of {rng.randint(2, 9)}.5-"  # noqa: E501
            f"{rng.randint(10, 19)}.0%.",
            f"{c} ({_registration(rng)}) paid {cur} {_amount(rng)} on {_date(rng)} from its "
            f"{_account_ref(rng)}.",
            f"Net debt was {cur} {_amount(rng)} as of {_date(rng)} (period {_date(rng)} - {_date(rng)}).",  # noqa: E501
            f"On the earnings call the CFO of {c} said orders of {_amount(rng)} tonnes were booked "
            f"between {_date(rng)} and {_date(rng)}.",
            f"The bond (coupon {rng.randint(1, 7)}.{rng.randint(0, 99):02d}%, maturity {_date(rng)}) "  # noqa: E501
            f"raised {cur} {_amount(rng)}; {_registration(rng)}.",
            f"Shares of {c} rose {rng.uniform(0, 9):.2f}% to {rng.randint(10, 999)}.{rng.randint(0, 99):02d} "  # noqa: E501
            f"{cur} on volume of {_amount(rng)} in Q{rng.randint(1, 4)} {y}.",
        ]
    )


def press_contact(rng: random.Random) -> str:
    """Personal data in a press release: what the scan must catch."""
    name = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
    n = rng.randint
    return rng.choice(
        [
            f"Media contact: {name}, tel. +49 69 {n(1000, 9999)} {n(1000, 9999)}",
            f"For further information please call {name} on 020 {n(1000, 9999)} {n(1000, 9999)}",
            f"Investor relations: {name}, phone (212) {n(200, 999)}-{n(1000, 9999)}",
            f"{name}, born {_date(rng)}, was appointed chief financial officer.",
            f"Contact {name} at {name.split()[0].lower()}.{name.split()[1].lower()}@acme-holdings.com",  # noqa: E501
            f"Press office: {name} +44 20 {n(1000, 9999)} {n(1000, 9999)}",
        ]
    )


def test_hit_rate_on_generated_financial_text_is_below_one_percent() -> None:
    rng = random.Random(18)
    texts = [financial_sentence(rng) for _ in range(5000)]
    flagged = _flagged(texts)
    print(f"generated financial text: {len(flagged)} / {len(texts)} rows flagged")
    assert len(flagged) / len(texts) < MAX_RATE, flagged[:10]


def test_generated_personal_contact_lines_are_all_found() -> None:
    rng = random.Random(81)
    texts = [press_contact(rng) for _ in range(600)]
    missed = [t for t in texts if not (may_hold_pii(t) and find_kinds(t))]
    assert not missed, missed[:10]
