"""Pure rules of customer data: code check digits and phone formats (no DB, no clock)."""

from __future__ import annotations

import re

# GB 32100-2015 unified social credit code: 18 characters from this alphabet, the last one a
# check character over the first 17 with these weights.
CREDIT_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
CREDIT_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
CREDIT_RE = re.compile(r"^[0-9A-HJ-NPQRTUWXY]{2}\d{6}[0-9A-HJ-NPQRTUWXY]{10}$")


def credit_check_char(first17: str) -> str:
    total = sum(CREDIT_ALPHABET.index(c) * w for c, w in zip(first17, CREDIT_WEIGHTS, strict=True))
    return CREDIT_ALPHABET[(31 - total % 31) % 31]


def credit_code_ok(code: str) -> bool:
    return bool(CREDIT_RE.match(code)) and credit_check_char(code[:17]) == code[17]


MOBILE_RE = re.compile(r"^(?:\+?86[- ]?)?1[3-9]\d{9}$")
LANDLINE_RE = re.compile(r"^(?:\+?86[- ]?)?0\d{2,3}-?[2-9]\d{6,7}(?:-\d{1,6})?$")


def normalise_phone(raw: str) -> str | None:
    """The phone in a canonical form, or None when it is no Chinese mobile or landline."""
    value = re.sub(r"[\s()（）]", "", raw)
    if MOBILE_RE.match(value.replace("-", "")):
        return value.replace("-", "")[-11:]
    if LANDLINE_RE.match(value):
        return re.sub(r"^\+?86-?", "", value)
    return None


# First two digits of GB/T 2260 codes: the provinces, autonomous regions and municipalities,
# Taiwan, Hong Kong and Macao.
PROVINCE_PREFIXES = frozenset(
    [
        "11",
        "12",
        "13",
        "14",
        "15",
        "21",
        "22",
        "23",
        "31",
        "32",
        "33",
        "34",
        "35",
        "36",
        "37",
        "41",
        "42",
        "43",
        "44",
        "45",
        "46",
        "50",
        "51",
        "52",
        "53",
        "54",
        "61",
        "62",
        "63",
        "64",
        "65",
        "71",
        "81",
        "82",
    ]
)


def region_code_ok(code: str) -> bool:
    """A plausible administrative division code: 6, 9 or 12 digits of a real province."""
    return len(code) in (6, 9, 12) and code.isdigit() and code[:2] in PROVINCE_PREFIXES
