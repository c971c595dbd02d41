# ruff: noqa: RUF001  (fullwidth and Arabic-Indic characters are what these tests are about)
"""The PII scan on the identifiers of the markets privet sells to (issue 21 item 4).

Every valid number here is either a published example or built by computing its check
character in this file, from the standard's definition, independently of
``privet.datasets.identifiers``. Each kind has false positives too: every single-character
change, the wrong length, and the number inside a longer run of digits.
"""

from __future__ import annotations

import random
import unicodedata

import pytest

from privet.datasets.pii import find_kinds, fold_digits, may_hold_pii
from privet.monitoring.stats import text_length

# --- independent check-character computations -------------------------------------------


def cn_id(body17: str) -> str:
    """GB 11643 / ISO 7064 MOD 11-2: weights 2^(17-i) mod 11, check (12 - s mod 11) mod 11."""
    s = sum(int(c) * pow(2, 17 - i, 11) for i, c in enumerate(body17))
    check = (12 - s % 11) % 11
    return body17 + ("X" if check == 10 else str(check))


USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"


def uscc(body17: str) -> str:
    """GB 32100-2015: weights 3^i mod 31, check 31 - (s mod 31), 31 written as 0."""
    s = sum(USCC_CHARS.index(c) * pow(3, i, 31) for i, c in enumerate(body17))
    return body17 + USCC_CHARS[(31 - s % 31) % 31]


def steuer_id(body10: str) -> str:
    """ISO 7064 MOD 11,10 (pure recursion as the BZSt describes it)."""
    p = 10
    for c in body10:
        s = (int(c) + p) % 10
        p = (10 if s == 0 else s) * 2 % 11
    return body10 + str((11 - p) % 10)


def luhn(body: str) -> str:
    """Append the Luhn digit: double every second digit from the right of the full number."""
    digits = [int(c) for c in body + "0"]
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return body + str((10 - total % 10) % 10)


def iban(country: str, bban: str) -> str:
    """ISO 13616: check digits 98 - (BBAN + country + 00 as a number, letters 10..35) mod 97."""
    numeric = "".join(str(int(c, 36)) for c in bban + country + "00")
    return f"{country}{98 - int(numeric) % 97:02d}{bban}"


def single_changes(value: str, alphabet: str = "0123456789") -> list[str]:
    """Every value that differs from `value` in exactly one character."""
    return [
        value[:i] + c + value[i + 1 :] for i in range(len(value)) for c in alphabet if c != value[i]
    ]


# --- valid numbers ----------------------------------------------------------------------

PUBLISHED_CN_IDS = ["11010519491231002X", "440524188001010014"]  # GB 11643 examples
RNG = random.Random(21)
BUILT_CN_IDS = [
    cn_id(f"{RNG.randint(110000, 659999)}{y}{m:02d}{d:02d}{RNG.randint(0, 999):03d}")
    for y, m, d in ((1950, 1, 31), (1984, 2, 29), (2000, 2, 29), (2003, 12, 1), (1999, 6, 30))
]
PUBLISHED_USCC = ["91350100M000100Y43"]  # the example of GB 32100-2015
BUILT_USCC = [
    uscc(
        RNG.choice("159Y")
        + RNG.choice("123")
        + f"{RNG.randint(110000, 659999)}"
        + "".join(RNG.choice(USCC_CHARS) for _ in range(9))
    )
    for _ in range(6)
]
BUILT_STEUER_IDS = [steuer_id(b) for b in ("8609574271", "1234567891", "4703689281", "2576813141")]
CARDS = [
    luhn("62" + "".join(RNG.choice("0123456789") for _ in range(n - 3))) for n in range(13, 20)
]
PUBLISHED_IBANS = [
    "DE89370400440532013000",
    "GB82WEST12345698765432",
    "FR1420041010050500013M02606",
    "NO9386011117947",
    "MT84MALT011000012345MTLCAST001S",
]
BUILT_IBANS = [
    iban("DE", "370400440532013001"),
    iban("AT", "1904300234573201"),
    iban("CH", "00762011623852957"),
]


def test_the_independent_builders_agree_with_published_examples() -> None:
    assert cn_id("11010519491231002") == "11010519491231002X"
    assert uscc("91350100M000100Y4") == "91350100M000100Y43"
    assert steuer_id("8609574271") == "86095742719"  # the BZSt's example
    assert luhn("411111111111111") == "4111111111111111"
    assert iban("DE", "370400440532013000") == "DE89370400440532013000"


@pytest.mark.parametrize("value", PUBLISHED_CN_IDS + BUILT_CN_IDS + BUILT_STEUER_IDS)
def test_national_ids_are_found(value: str) -> None:
    assert find_kinds(f"身份证号 {value}") == {"national_id"}
    assert find_kinds(value) == {"national_id"}
    assert find_kinds(f"ID:{value}。") == {"national_id"}


def test_lowercase_x_check_character_counts() -> None:
    assert find_kinds("11010519491231002x") == {"national_id"}


@pytest.mark.parametrize("value", PUBLISHED_USCC + BUILT_USCC)
def test_unified_social_credit_codes_are_found(value: str) -> None:
    assert "business_id" in find_kinds(f"统一社会信用代码：{value}")


@pytest.mark.parametrize("value", CARDS)
def test_bank_cards_of_every_length_are_found(value: str) -> None:
    assert find_kinds(f"卡号 {value}") == {"card"}
    if len(value) >= 17:
        grouped = " ".join(value[i : i + 4] for i in range(0, len(value), 4))
        assert find_kinds(grouped) == {"card"}


@pytest.mark.parametrize("value", PUBLISHED_IBANS + BUILT_IBANS)
def test_ibans_are_found(value: str) -> None:
    assert find_kinds(f"pay to {value} today") == {"iban"}
    spaced = " ".join(value[i : i + 4] for i in range(0, len(value), 4))
    assert find_kinds(spaced) == {"iban"}


@pytest.mark.parametrize(
    "text",
    [
        "13812345678",
        "手机13912345678联系",
        "+8613812345678",
        "+86 138 1234 5678",
        "0086-199-1234-5678",
        "call 159-1234-5678",
    ],
)
def test_chinese_mobile_numbers_are_found(text: str) -> None:
    assert find_kinds(text) == {"phone"}


# --- false positives ---------------------------------------------------------------------


@pytest.mark.parametrize("value", PUBLISHED_CN_IDS + BUILT_CN_IDS[:2])
def test_a_changed_chinese_id_is_no_id(value: str) -> None:
    for variant in single_changes(value, "0123456789X"):
        if variant[:17].isdigit():
            assert "national_id" not in find_kinds(variant), variant


def test_chinese_id_birth_date_must_be_a_real_past_date() -> None:
    for body in (
        "11010519490230002",
        "11010519491331002",
        "11010517991231002",
        "11010530001231002",
    ):
        assert "national_id" not in find_kinds(cn_id(body)), body


@pytest.mark.parametrize("value", PUBLISHED_USCC + BUILT_USCC[:2])
def test_a_changed_credit_code_is_no_code(value: str) -> None:
    for variant in single_changes(value, USCC_CHARS):
        assert "business_id" not in find_kinds(variant), variant


@pytest.mark.parametrize("value", BUILT_STEUER_IDS)
def test_a_changed_tax_id_is_no_tax_id(value: str) -> None:
    for variant in single_changes(value):
        assert "national_id" not in find_kinds(variant), variant


def test_tax_id_repetition_rule() -> None:
    assert "national_id" not in find_kinds(steuer_id("1234567890"))  # no digit repeats
    assert "national_id" not in find_kinds(steuer_id("1123456788"))  # two digits repeat
    assert "national_id" not in find_kinds(steuer_id("1112345678"))  # three in a row
    assert "national_id" not in find_kinds(steuer_id("1111234567"))  # four times
    assert find_kinds(steuer_id("1121345678")) == {"national_id"}  # thrice, not in a row
    assert "national_id" not in find_kinds(steuer_id("0123456781"))  # leading zero


@pytest.mark.parametrize("value", CARDS)
def test_a_changed_card_is_no_card(value: str) -> None:
    for variant in single_changes(value):
        assert "card" not in find_kinds(variant), variant


@pytest.mark.parametrize("value", PUBLISHED_IBANS[:3] + BUILT_IBANS)
def test_a_changed_iban_is_no_iban(value: str) -> None:
    """Mod 97 catches every change of a digit for a digit or a letter for a letter (a digit
    turned letter becomes two digits: that one passes one time in 97)."""
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    for variant in single_changes(value) + single_changes(value, letters):
        if all(a.isdigit() == b.isdigit() for a, b in zip(value, variant, strict=True)):
            assert "iban" not in find_kinds(variant), variant


def test_iban_needs_its_country_length() -> None:
    assert find_kinds(iban("DE", "37040044053201300")) == set()  # DE has 22, not 21
    assert find_kinds(iban("GB", "WEST123456987654321")) == set()  # GB has 22, not 23
    assert find_kinds(iban("ZZ", "370400440532013000")) == set()  # no such country


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        *((v, "national_id") for v in PUBLISHED_CN_IDS + BUILT_STEUER_IDS),
        ("13812345678", "phone"),
        (CARDS[3], "card"),
        (PUBLISHED_USCC[0], "business_id"),
    ],
)
def test_identifiers_inside_longer_runs_or_cut_short_are_not_found(value: str, kind: str) -> None:
    for text in (f"9{value}", f"{value}7", f"12{value}34", value[1:], value[:-1]):
        assert kind not in find_kinds(text), text
    if kind != "card":  # a card after a letter still counts (as before issue 21)
        assert kind not in find_kinds(f"A{value}")


@pytest.mark.parametrize("text", ["12812345678", "1381234567", "138123456789", "8613812345678"])
def test_numbers_that_are_not_chinese_mobiles(text: str) -> None:
    assert "phone" not in find_kinds(text)


# --- digits of other scripts: folded, deliberately ---------------------------------------


def _script(value: str, zero: str) -> str:
    """`value` with its ASCII digits written in the script whose zero is `zero`."""
    return "".join(chr(ord(zero) + int(c)) if c.isdigit() else c for c in value)


@pytest.mark.parametrize(
    ("zero", "name"),
    [
        ("０", "FULLWIDTH"),
        ("٠", "ARABIC-INDIC"),
        ("۰", "EXTENDED ARABIC-INDIC"),
        ("०", "DEVANAGARI"),
    ],
)
def test_digits_of_every_script_are_digits(zero: str, name: str) -> None:
    assert name in unicodedata.name(zero)
    assert find_kinds(_script("手机 13812345678", zero)) == {"phone"}
    assert find_kinds(_script("ID 11010519491231002X", zero)) == {"national_id"}
    assert find_kinds(_script("card 4111 1111 1111 1111", zero)) == {"card"}
    assert may_hold_pii(_script("86095742719", zero))
    assert find_kinds(_script("86095742719", zero)) == {"national_id"}


def test_fullwidth_letters_and_mixed_scripts() -> None:
    assert find_kinds("身份证：１１０１０５１９４９１２３１００２Ｘ") == {"national_id"}
    assert find_kinds("ＤＥ８９３７０４００４４０５３２０１３０００") == {"iban"}
    assert find_kinds("邮箱ａｎｎ＠ｅｘａｍｐｌｅ．ｃｏｍ") == {"email"}
    assert find_kinds("138١٢٣٤٥٦٧٨") == {"phone"}  # a digit is a digit, whatever its script
    # Folding keeps positions: one character for one.
    assert len(fold_digits("１３８ab٣")) == 6 and fold_digits("１３８ab٣") == "138ab3"


def test_number_signs_that_are_not_decimal_digits_stay_out() -> None:
    # Superscripts, circled numbers and CJK numerals are not decimal digits (category No /
    # Lo): nobody writes an account number with them, and folding them would invent hits.
    for text in ("¹³⁸¹²³⁴⁵⁶⁷⁸", "①③⑧①②③④⑤⑥⑦⑧", "一三八一二三四五六七八"):
        assert not may_hold_pii(text)
        assert find_kinds(text) == set()


# --- text statistics count characters -----------------------------------------------------


def test_text_length_counts_characters_of_chinese_text() -> None:
    text = "这家外卖送得很快，味道也不错。"
    assert text_length(text) == 15
    assert len(text.encode("utf-8")) == 45 and len(text.split()) == 1
    assert text_length("外卖 很快 good") == 10
    decomposed = unicodedata.normalize("NFD", "한국어 café")
    assert len(decomposed) > 8 and text_length(decomposed) == 8
    assert text_length("😀 ok") == 4


def test_every_decimal_digit_of_unicode_folds_to_its_value() -> None:
    digits = [chr(c) for c in range(0x80, 0x110000) if unicodedata.category(chr(c)) == "Nd"]
    assert len(digits) > 600
    for ch in digits:
        assert fold_digits(f"a{ch}") == f"a{unicodedata.decimal(ch)}", hex(ord(ch))
