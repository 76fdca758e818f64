"""Checksum and structure validators for identifiers (pure functions, no I/O).

A regex only finds candidates; these functions decide whether a candidate can be a real
identifier. They are what keeps accidental 10- and 16-digit numbers out of the report: the MST
checksum and Luhn each remove roughly nine in ten accidental hits on a mixed corpus.
"""

from __future__ import annotations

import base64
import binascii
import json

# Province (or birth-registration) codes of the 12-digit personal identification number.
# Numbers are for life: the 2025 merger of provinces did not change them.
VN_PROVINCE_CODES = frozenset(
    [
        "001",
        "002",
        "004",
        "006",
        "008",
        "010",
        "011",
        "012",
        "014",
        "015",
        "017",
        "019",
        "020",
        "022",
        "024",
        "025",
        "026",
        "027",
        "030",
        "031",
        "033",
        "034",
        "035",
        "036",
        "037",
        "038",
        "040",
        "042",
        "044",
        "045",
        "046",
        "048",
        "049",
        "051",
        "052",
        "054",
        "056",
        "058",
        "060",
        "062",
        "064",
        "066",
        "067",
        "068",
        "070",
        "072",
        "074",
        "075",
        "077",
        "079",
        "080",
        "082",
        "083",
        "084",
        "086",
        "087",
        "089",
        "091",
        "092",
        "093",
        "094",
        "095",
        "096",
    ]
)

# Mobile prefixes after the 2018 renumbering (Viettel, VinaPhone, MobiFone, Vietnamobile,
# Gmobile, Itelecom). Data, not logic: it changes when operators get new ranges.
VN_MOBILE_PREFIXES = frozenset(
    [
        "032",
        "033",
        "034",
        "035",
        "036",
        "037",
        "038",
        "039",
        "086",
        "096",
        "097",
        "098",
        "081",
        "082",
        "083",
        "084",
        "085",
        "088",
        "091",
        "094",
        "070",
        "076",
        "077",
        "078",
        "079",
        "089",
        "090",
        "093",
        "056",
        "058",
        "092",
        "052",
        "059",
        "099",
        "087",
    ]
)

_MST_WEIGHTS = (31, 29, 23, 19, 17, 13, 7, 5, 3)

# IBAN lengths of the countries a Vietnamese or German unit most often deals with.
IBAN_LENGTHS = {
    "AT": 20, "BE": 16, "CH": 21, "CZ": 24, "DE": 22, "DK": 18, "ES": 24, "FI": 18, "FR": 27,
    "GB": 22, "IE": 22, "IT": 27, "LU": 20, "NL": 18, "NO": 15, "PL": 28, "PT": 25, "SE": 24,
}  # fmt: skip


def digits(value: str) -> str:
    return "".join(c for c in value if c.isdigit())


def vn_personal_id(value: str, current_year: int) -> bool:
    """12-digit CCCD: province code, century/sex digit, plausible birth year. No check digit."""
    d = digits(value)
    if len(d) != 12 or d[:3] not in VN_PROVINCE_CODES:
        return False
    century = int(d[3])
    if century > 3:  # 2100s and later births cannot hold an ID card yet
        return False
    year = (1900 if century < 2 else 2000) + int(d[4:6])
    return year <= current_year


def vn_tax_code(value: str) -> bool:
    """MST: 10 digits (+ '-NNN' branch suffix); weighted mod-11 check digit."""
    main, _, branch = value.partition("-")
    d = digits(main)
    if len(d) != 10 or d[2:9] == "0000000":
        return False
    if branch and (len(branch) != 3 or not branch.isdigit() or branch == "000"):
        return False
    rest = sum(int(x) * w for x, w in zip(d[:9], _MST_WEIGHTS, strict=True)) % 11
    if rest == 0:  # check value 10 is never issued
        return False
    return 10 - rest == int(d[9])


def vn_mobile(value: str) -> bool:
    d = digits(value)
    if d.startswith("84") and len(d) == 11:
        d = "0" + d[2:]
    return len(d) == 10 and d[:3] in VN_MOBILE_PREFIXES


def luhn(value: str) -> bool:
    d = digits(value)
    if not 12 <= len(d) <= 19:
        return False
    total = 0
    for i, ch in enumerate(reversed(d)):
        n = int(ch)
        if i % 2:
            n *= 2
            if n > 9:
                n -= 9
        total += n
    return total % 10 == 0


def card_issuer(value: str) -> str:
    """Issuer from the IIN range; '' when the number belongs to no known card scheme."""
    d = digits(value)
    n = len(d)
    if d.startswith("9704") and n in (16, 19):
        return "napas"
    if d[0] == "4" and n in (13, 16, 19):
        return "visa"
    if (51 <= int(d[:2]) <= 55 or 2221 <= int(d[:4]) <= 2720) and n == 16:
        return "mastercard"
    if d[:2] in ("34", "37") and n == 15:
        return "amex"
    if 3528 <= int(d[:4]) <= 3589 and 16 <= n <= 19:
        return "jcb"
    if d[:2] == "62" and 16 <= n <= 19:
        return "unionpay"
    return ""


def iban(value: str) -> bool:
    """ISO 13616: known length per country, then mod 97 == 1 over the rearranged number."""
    v = value.replace(" ", "").upper()
    if len(v) < 15 or not v[:2].isalpha() or not v[2:4].isdigit():
        return False
    expected = IBAN_LENGTHS.get(v[:2])
    if expected is not None and len(v) != expected:
        return False
    if not v.isalnum():
        return False
    rearranged = v[4:] + v[:4]
    number = "".join(str(int(c, 36)) for c in rearranged)
    return int(number) % 97 == 1


def de_tax_id(value: str) -> bool:
    """Steuer-ID: 11 digits, first not 0, no digit more than three times in the first ten,
    ISO 7064 MOD 11,10 check digit."""
    d = digits(value)
    if len(d) != 11 or d[0] == "0":
        return False
    counts = [d[:10].count(c) for c in set(d[:10])]
    if max(counts) > 3 or max(counts) < 2:  # at least one digit repeats (old and new rule)
        return False
    product = 10
    for ch in d[:10]:
        s = (int(ch) + product) % 10 or 10
        product = (2 * s) % 11
    return (11 - product) % 10 == int(d[10])


def jwt(value: str) -> bool:
    """A JWT's header is base64url JSON naming an algorithm."""
    head = value.split(".", 1)[0]
    try:
        raw = base64.urlsafe_b64decode(head + "=" * (-len(head) % 4))
        obj = json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return False
    return isinstance(obj, dict) and "alg" in obj


_PLACEHOLDERS = frozenset(
    [
        "changeme",
        "password",
        "passwd",
        "secret",
        "xxx",
        "xxxx",
        "xxxxx",
        "none",
        "null",
        "nil",
        "empty",
        "example",
        "test",
        "dummy",
        "your_password",
        "yourpassword",
        "mypassword",
        "********",
        "true",
        "false",
        "yes",
        "no",
        "required",
    ]
)


def real_password(value: str) -> bool:
    """Drop placeholders, references to variables and templated values."""
    v = value.strip().strip("\"'").strip()
    if len(v) < 4:
        return False
    low = v.lower()
    if low in _PLACEHOLDERS or set(v) <= {"*", "x", "X", ".", "-", "_", "#"}:
        return False
    if v[0] in "$%<{[(" or v.startswith("ENC(") or "{{" in v or "${" in v:
        return False
    return not (v.isdigit() and len(v) < 6)
